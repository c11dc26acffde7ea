"""Inputs that are valid files but not what a model can read: flagged, not silently mispredicted.

A case can load without error and still be wrong for the model: not skull-stripped (non-zero
background), a blank or constant modality (a failed export), or one file under two modality names.
Each finding names the file; callers refuse the case, or warn and go on when the user says ``--force``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from gliomask.errors import GliomaskError
from gliomask.io.brats import Case, LoadedCase

BACKGROUND_TOLERANCE = 0.05  # share of the volume's outer faces that may be non-zero (skull-stripped: ~0)


def image_problems(data: np.ndarray) -> list[str]:
    """What is implausible about one 3-D image (empty list when nothing is)."""
    lo, hi = float(data.min()), float(data.max())
    if lo == hi:
        return [f"the image is constant (every voxel {lo:g}): a blank or failed export"]
    faces = np.concatenate([data[[0, -1]].ravel(), data[:, [0, -1]].ravel(), data[:, :, [0, -1]].ravel()])
    share = float(np.count_nonzero(faces)) / faces.size
    if share > BACKGROUND_TOLERANCE:
        return [f"the background is not zero ({share:.0%} of the volume's outer faces are non-zero): is it "
                "skull-stripped? gliomask expects skull-stripped images with background exactly 0"]
    return []


def case_problems(case: Case, loaded: LoadedCase) -> list[tuple[Path, str]]:
    """(file, problem) for a loaded case's modalities: per image, and files that hold the same voxels
    under two modality names."""
    images = {m: (Path(case.images[m]), loaded.images[i]) for i, m in enumerate(loaded.modalities)}
    found = [(path, text) for path, data in images.values() for text in image_problems(data)]
    names = list(images)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if np.array_equal(images[a][1], images[b][1]) and images[a][1].any():
                found.append((images[b][0], f"holds the same voxels as {Path(images[a][0]).name} ({a}): "
                                            f"the same image under two modality names ({a}, {b})"))
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
