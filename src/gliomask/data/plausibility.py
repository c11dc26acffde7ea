"""Inputs that are valid files but not what a model can read: flagged, not silently mispredicted.

A case can load without error and still be wrong for the model: not skull-stripped (non-zero
background), a blank or constant modality (a failed export), one file under two modality names, or
files whose contrast is another modality's (a T2 given as FLAIR). Each finding names the file; callers
refuse the case, or warn and go on when the user says ``--force``.

Swapped files are found from how the modalities vary together inside the brain: T2 is the one with
bright CSF, so it anti-correlates with T1 and T1ce; T1 and T1ce rise and fall together; FLAIR follows
T1 more than T2 does. A case is flagged when exchanging two of its files fits a reference correlation
matrix better than the files as named (by SWAP_MIN_GAIN): the training set's or, when the case fits it
better, that of real BraTS scans (REAL_SCAN_CORRELATIONS), since a model trained on synthetic brains
carries a synthetic reference that real scans do not match. One correlation (two modalities) cannot
tell a swap, so the check needs three or more; T1 and T1ce are too alike to be told apart, and are not.
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
# Flagged when exchanging two files (not T1 and T1ce) lowers the mismatch to the reference (mean absolute
# difference of the correlations over modality pairs) by at least SWAP_MIN_GAIN. Real BraTS 2021 scans,
# each against the median of the other four (python bench/real_swaps.py): as named, no exchange helps
# (gain <= 0.000); 29 of their 30 single swaps gain 0.053-0.282 and are undone by the right exchange.
SWAP_MIN_GAIN = 0.03
# ... and only when the files as named are at least this far from the reference: synthetic cases as named
# sit 0.03-0.17 from their training set's, and an exchange can then gain by chance (1 demo case in 30)
SWAP_MIN_MISMATCH = 0.2
UNTELLABLE = ({"t1", "t1ce"},)  # pairs a correlation cannot tell apart: never proposed as a swap
# Median in-brain correlations of five real BraTS 2021 patients (t1, t1ce, t2, flair; raw scanner
# intensities clipped to their 0.5-99.5th percentiles), from python bench/real_swaps.py.
REAL_SCAN_MODALITIES = ("t1", "t1ce", "t2", "flair")
ENHANCED_Z = 2.0  # T1ce brighter than T1 by this many standard deviations: contrast uptake
# T1ce is flagged when its enhancement share is below ENHANCEMENT_RATIO of the training cases' (and they
# had some: a training set without the contrast agent's signal, such as the geometric synthetic head,
# cannot tell): real scans 0.013-0.032, their T1 as T1ce 0.0000.
ENHANCEMENT_RATIO = 0.2
MIN_TRAINING_ENHANCEMENT = 0.003
MASK_LEVELS = 3  # an image with this few distinct values inside the brain is a mask or label map
REAL_SCAN_CORRELATIONS = ((1.000, 0.744, 0.000, 0.384),
                          (0.744, 1.000, -0.041, 0.224),
                          (0.000, -0.041, 1.000, 0.426),
                          (0.384, 0.224, 0.426, 1.000))


def image_problems(data: np.ndarray) -> list[str]:
    """What is implausible about one 3-D image (empty list when nothing is)."""
    lo, hi = float(data.min()), float(data.max())
    if lo == hi:
        return [f"the image is constant (every voxel {lo:g}): a blank or failed export"]
    inside = data[data != 0]
    if inside.size and len(np.unique(inside[::97])) <= MASK_LEVELS and len(np.unique(inside)) <= MASK_LEVELS:
        levels = ", ".join(f"{v:g}" for v in np.unique(inside))
        return [f"the image holds only {len(np.unique(inside)) + 1} distinct values (0, {levels}): a mask or label map, "
                "not a scan"]
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


def enhancement_share(loaded: LoadedCase) -> float | None:
    """Share of brain voxels at least ENHANCED_Z standard deviations brighter on T1ce than on T1 (each
    z-scored inside the brain): the contrast agent's vessels, choroid plexus and dura, and enhancing
    tumour. None without both modalities. Real BraTS 2021 scans: 0.013-0.032 outside the tumour; their
    T1 given as T1ce (2 % noise added): 0.0000 (bench/real_swaps.py)."""
    present = loaded.present
    if "t1" not in present or "t1ce" not in present:
        return None
    pair = loaded.images[[loaded.modalities.index("t1"), loaded.modalities.index("t1ce")]]
    values = pair[:, brain_mask(pair)][:, ::CORRELATION_STRIDE].astype(np.float64)  # as prediction normalises
    if values.shape[1] < 100:
        return None
    lo, hi = np.percentile(values, (0.5, 99.5), axis=1)
    values = np.clip(values, lo[:, None], hi[:, None])
    z = (values - values.mean(axis=1, keepdims=True)) / np.maximum(values.std(axis=1, keepdims=True), 1e-12)
    return round(float(np.mean(z[1] - z[0] > ENHANCED_Z)), 5)


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
    """({file's modality: the modality it looks like}, mismatch as named, after the exchange) when
    exchanging two files fits ``typical`` better by SWAP_MIN_GAIN or more; else None."""
    if corr is None or typical is None or len(modalities) < 3:
        return None
    corr, typical = np.asarray(corr), np.asarray(typical)
    identity = tuple(range(len(modalities)))
    as_named = _mismatch(corr, typical, identity)
    exchanges = []
    for i, j in itertools.combinations(identity, 2):
        if {modalities[i], modalities[j]} in UNTELLABLE:
            continue
        order = list(identity)
        order[i], order[j] = j, i
        exchanges.append((_mismatch(corr, typical, order), i, j))
    if not exchanges:
        return None
    renamed, i, j = min(exchanges)
    if as_named < SWAP_MIN_MISMATCH or as_named - renamed < SWAP_MIN_GAIN:
        return None
    return {modalities[i]: modalities[j], modalities[j]: modalities[i]}, as_named, renamed


def swap_reference(corr, training, modalities, training_name: str) -> tuple[np.ndarray | None, str]:
    """The reference a case is checked against: the training set's matrix, or that of real BraTS scans
    when the case, under its best naming (as named or one exchange), fits the real one better. A model
    trained on synthetic brains carries a synthetic reference that real scans do not match (a real T2/FLAIR
    swap went unflagged), while synthetic cases do not match real scans (checked against real scans, one
    demo case in 30 looked swapped)."""
    real = real_scan_reference(modalities)
    if corr is None or real is None or training is None:
        return training, training_name
    corr = np.asarray(corr)

    def best_fit(reference) -> float:
        fits = [_mismatch(corr, reference, range(len(modalities)))]
        for i, j in itertools.combinations(range(len(modalities)), 2):
            order = list(range(len(modalities)))
            order[i], order[j] = j, i
            fits.append(_mismatch(corr, reference, order))
        return min(fits)

    return (real, "real BraTS scans") if best_fit(real) < best_fit(np.asarray(training)) else (training, training_name)


def real_scan_reference(modalities) -> np.ndarray | None:
    """REAL_SCAN_CORRELATIONS restricted to ``modalities`` (canonical names); None for another name."""
    if not all(m in REAL_SCAN_MODALITIES for m in modalities):
        return None
    index = [REAL_SCAN_MODALITIES.index(m) for m in modalities]
    return np.asarray(REAL_SCAN_CORRELATIONS)[np.ix_(index, index)]


def swap_problems(paths: dict[str, Path], found, beside: str) -> list[tuple[Path, str]]:
    """One (file, problem) per file that looks like another modality (``found`` from swapped_modalities)."""
    if not found:
        return []
    moved, as_named, renamed = found
    first, second = list(moved)[:2]
    return [(paths[first], f"its contrast against the other modalities is {second}'s, and {Path(paths[second]).name}'s "
                           f"is {first}'s: are the {first} and {second} files swapped? (correlations "
                           f"{as_named:.2f} from {beside} as named, {renamed:.2f} exchanged)")]


def case_problems(case: Case, loaded: LoadedCase, typical_corr=None, typical_enhancement=None) -> list[tuple[Path, str]]:
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
    if not found and len(present) >= 3 and typical_corr is not None:  # (a blank or duplicated file looks swapped too)
        corr = modality_correlations(loaded.images[present])
        training = np.asarray(typical_corr)[np.ix_(present, present)]
        reference, name = swap_reference(corr, training, list(images), "the training set")
        swaps = swapped_modalities(corr, reference, list(images))
        found += swap_problems({m: p for m, (p, _) in images.items()}, swaps, name)
    if not found and typical_enhancement and typical_enhancement >= MIN_TRAINING_ENHANCEMENT:
        share = enhancement_share(loaded)
        if share is not None and share < ENHANCEMENT_RATIO * typical_enhancement:
            found.append((images["t1ce"][0], f"shows almost no contrast enhancement against T1 ({share:.2%} of the "
                                             f"brain at least {ENHANCED_Z:g} SD brighter than on T1; training cases "
                                             f"{typical_enhancement:.2%}): is it a T1 image, not post-contrast T1?"))
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
