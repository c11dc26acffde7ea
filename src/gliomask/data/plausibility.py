"""Inputs that are valid files but not what a model can read: flagged, not silently mispredicted.

A case can load without error and still be wrong for the model: not skull-stripped (non-zero
background), a blank or constant modality (a failed export), one file under two modality names, or
files whose contrast is another modality's (a T2 given as FLAIR). Each finding names the file; callers
refuse the case, or warn and go on when the user says ``--force``.

Swapped files are found from how the modalities vary together inside the brain: T2 is the one with
bright CSF, so it anti-correlates with T1 and T1ce; T1 and T1ce rise and fall together. A case whose
correlation matrix fits the training set's much better after renaming its files is flagged. One
correlation (two modalities) cannot tell a swap, so the check needs three or more; T1 and T1ce are
too alike to be told apart, and are not.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

from gliomask.data.normalize import brain_mask
from gliomask.errors import GliomaskError
from gliomask.io.brats import Case, LoadedCase

NEGATIVE_TOLERANCE = 0.9  # share of non-zero voxels that may be negative (magnitudes: none; z-scored: about half)
BACKGROUND_TOLERANCE = 0.05  # share of the volume's outer faces that may be non-zero (skull-stripped: ~0)
CORRELATION_STRIDE = 4  # every 4th brain voxel: the same correlations to ~1e-3, a quarter of the time
# Flagged when the files as named are at least SWAP_MIN_MISMATCH from the training correlations (mean
# absolute difference over modality pairs) and a renaming brings that to at most SWAP_RATIO of it.
# Synthetic cases measured (bench/modality_swaps.py): as named 0.04-0.17; with T2 and FLAIR or T1 and T2
# swapped 0.60-0.89, renamed back 0.04-0.17.
SWAP_MIN_MISMATCH = 0.3
SWAP_RATIO = 0.5


def image_problems(data: np.ndarray) -> list[str]:
    """What is implausible about one 3-D image (empty list when nothing is)."""
    lo, hi = float(data.min()), float(data.max())
    if lo == hi:
        return [f"the image is constant (every voxel {lo:g}): a blank or failed export"]
    inside = data[data != 0]
    negative = float(np.count_nonzero(inside < 0)) / max(inside.size, 1)
    if negative > NEGATIVE_TOLERANCE:
        return [f"{negative:.0%} of the brain's voxels are negative: an inverted or rescaled scan? gliomask expects "
                "MRI magnitudes, positive inside the brain and 0 outside"]
    faces = np.concatenate([data[[0, -1]].ravel(), data[:, [0, -1]].ravel(), data[:, :, [0, -1]].ravel()])
    share = float(np.count_nonzero(faces)) / faces.size
    if share > BACKGROUND_TOLERANCE:
        return [f"the background is not zero ({share:.0%} of the volume's outer faces are non-zero): is it "
                "skull-stripped? gliomask expects skull-stripped images with background exactly 0"]
    return []


def modality_correlations(images: np.ndarray) -> list[list[float]] | None:
    """Float32 [C, X, Y, Z] -> C x C Pearson correlations of the modalities inside the brain (any
    modality non-zero), each clipped to its 0.5-99.5th percentiles; None when one is constant there."""
    brain = brain_mask(images)
    values = images[:, brain][:, ::CORRELATION_STRIDE].astype(np.float64)
    if values.shape[1] < 100:
        return None
    lo, hi = np.percentile(values, (0.5, 99.5), axis=1)
    values = np.clip(values, lo[:, None], hi[:, None])
    if np.any(values.std(axis=1) == 0):
        return None
    return np.round(np.corrcoef(values), 4).tolist()


def typical_correlations(per_case: list) -> list[list[float]] | None:
    """The element-wise median of the cases' correlation matrices (what a training set looks like)."""
    rows = [c for c in per_case if c is not None]
    return np.round(np.median(np.asarray(rows), axis=0), 4).tolist() if rows else None


def _mismatch(corr: np.ndarray, typical: np.ndarray, order) -> float:
    order = list(order)
    upper = np.triu_indices(len(order), 1)
    return float(np.abs(corr[np.ix_(order, order)] - typical)[upper].mean())


def swapped_modalities(corr, typical, modalities) -> tuple[dict[str, str], float, float] | None:
    """({file's modality: the modality it looks like}, mismatch as named, after renaming) when renaming
    the files fits ``typical`` much better (see SWAP_MIN_MISMATCH, SWAP_RATIO); else None."""
    if corr is None or typical is None or len(modalities) < 3:
        return None
    corr, typical = np.asarray(corr), np.asarray(typical)
    identity = tuple(range(len(modalities)))
    as_named = _mismatch(corr, typical, identity)
    if as_named < SWAP_MIN_MISMATCH:
        return None
    best = min((p for p in itertools.permutations(identity) if p != identity), key=lambda p: _mismatch(corr, typical, p))
    renamed = _mismatch(corr, typical, best)
    if renamed > SWAP_RATIO * as_named:
        return None
    # file p[i] plays the part of modality i in the training set
    return {modalities[p]: modalities[i] for i, p in enumerate(best) if p != i}, as_named, renamed


def swap_problems(paths: dict[str, Path], found, beside: str) -> list[tuple[Path, str]]:
    """One (file, problem) per file that looks like another modality (``found`` from swapped_modalities)."""
    if not found:
        return []
    moved, as_named, renamed = found
    return [(paths[m], f"its contrast against the other modalities is {other}'s, not {m}'s: swapped files? "
                       f"(correlations {as_named:.2f} from {beside} as named, {renamed:.2f} renamed)")
            for m, other in moved.items()]


def case_problems(case: Case, loaded: LoadedCase, typical_corr=None) -> list[tuple[Path, str]]:
    """(file, problem) for a loaded case's modalities: per image, files that hold the same voxels
    under two modality names, and (given a training set's ``typical_corr``, in ``loaded.modalities``
    order) files that look swapped. Modalities the case lacks (``allow_missing``) are not looked at."""
    present = [i for i, m in enumerate(loaded.modalities) if m in loaded.present]
    images = {loaded.modalities[i]: (Path(case.images[loaded.modalities[i]]), loaded.images[i]) for i in present}
    found = [(path, text) for path, data in images.values() for text in image_problems(data)]
    names = list(images)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if np.array_equal(images[a][1], images[b][1]) and images[a][1].any():
                found.append((images[b][0], f"holds the same voxels as {Path(images[a][0]).name} ({a}): "
                                            f"the same image under two modality names ({a}, {b})"))
    if typical_corr is not None and not found:  # (a blank or duplicated file would also look swapped)
        typical = np.asarray(typical_corr)[np.ix_(present, present)]
        swaps = swapped_modalities(modality_correlations(loaded.images[present]), typical, list(images))
        found += swap_problems({m: p for m, (p, _) in images.items()}, swaps, "the training set")
    return found


def report(problems: list[tuple[Path, str]], force: bool) -> None:
    """Refuse on the first problem (one line naming the file), or with ``force`` print each as a warning."""
    if not problems:
        return
    if not force:
        path, text = problems[0]
        raise GliomaskError(f"{text} (--force to go on anyway)", path)
    for path, text in problems:
        print(f"gliomask: warning: {path}: {text}", file=sys.stderr, flush=True)
