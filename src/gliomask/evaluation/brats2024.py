"""BraTS 2024 post-treatment glioma scoring rules (the official ``metrics_GLI.py`` for that year).

Regions, in the official order: WT (NETC + SNFH + ET), TC (NETC + ET), NETC, SNFH, ET and RC, the
resection cavity, which is in neither WT nor TC. Full-region Dice, HD95, sensitivity and specificity
are the 2023 ones. Lesion-wise scoring differs from 2023 in two ways:

- reference lesions of at most 20 mm3 (WT, TC, NETC, SNFH) or 10 mm3 (ET, RC) are left out (2023: 50);
- for the four single labels, reference lesions are first merged by their dilation as in 2023 and then
  across tissues: the components of one label that touch (18-connectivity, one voxel) the same
  component of another label become one lesion. The official code joins NETC by ET then RC; ET by NETC
  then RC; RC by ET then NETC; SNFH by ET, RC, then NETC, each step against the other label's
  dilation-merged components, and applies a step only when it finds more than one touching pair. Each
  component takes the lesion of the first (lowest-numbered) component it touches. These rules are
  reproduced here, quirks included, so that the figures are the leaderboard's.
"""

from __future__ import annotations

import cc3d
import numpy as np
from scipy import ndimage

from gliomask.evaluation.lesionwise import DILATION_ITERATIONS, DILATION_STRUCTURE
from gliomask.labels import SCORED_REGIONS, label_mask

REGIONS = SCORED_REGIONS["brats2024"]
REGION_NAMES = tuple(name for name, _ in REGIONS)
MIN_LESION_MM3 = {"WT": 20.0, "TC": 20.0, "NETC": 20.0, "SNFH": 20.0, "ET": 10.0, "RC": 10.0}
# label -> the other labels whose touching components join its lesions, in the official order
JOINED_BY = {"NETC": ("ET", "RC"), "ET": ("NETC", "RC"), "RC": ("ET", "NETC"), "SNFH": ("ET", "RC", "NETC")}


def dilation_lesions(mask: np.ndarray) -> np.ndarray:
    """Int32 like ``mask``: each voxel of ``mask`` numbered by the 26-connected component of the mask's
    3-fold 18-connected dilation it lies in (lesions whose dilations meet share a number)."""
    dilated = ndimage.binary_dilation(mask, structure=DILATION_STRUCTURE, iterations=DILATION_ITERATIONS)
    groups = cc3d.connected_components(dilated, connectivity=26).astype(np.int32)
    return np.where(mask, groups, 0)


def touching_pairs(a: np.ndarray, b: np.ndarray) -> set[tuple[int, int]]:
    """{(i, j)}: component i of ``a`` lies within one voxel (18-connectivity) of component j of ``b``."""
    pairs = set()
    for i, box in enumerate(ndimage.find_objects(a), start=1):
        if box is None:
            continue
        wide = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        grown = ndimage.binary_dilation(a[wide] == i, structure=DILATION_STRUCTURE)
        pairs.update((i, int(j)) for j in np.unique(b[wide][grown]) if j)
    return pairs


def join(a: np.ndarray, pairs: set[tuple[int, int]]) -> np.ndarray:
    """``a`` with the components that touch one component of the other label given one new number (the
    official ``relabel_nifti_image``; a single touching pair changes nothing there, nor here)."""
    if len(pairs) <= 1:
        return a
    start = int(a.max()) + 1
    new_of_other: dict[int, int] = {}
    for _, j in sorted(pairs):
        new_of_other.setdefault(j, start + len(new_of_other))
    mapping: dict[int, int] = {}
    for i, j in sorted(pairs):
        mapping.setdefault(i, new_of_other[j])
    out = a.copy()
    for i, new in mapping.items():
        out[a == i] = new
    return out


def tissue_lesions(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Internal label map (crop) -> {NETC, SNFH, ET, RC: Int32 reference lesion ids}, joined as the module says."""
    values = dict(REGIONS)
    base = {name: dilation_lesions(label_mask(labels, values[name])) for name in JOINED_BY}
    out = {}
    for name, others in JOINED_BY.items():
        ids = base[name]
        for other in others:
            ids = join(ids, touching_pairs(ids, base[other]))
        out[name] = ids
    return out
