"""BraTS 2024 post-treatment glioma scoring rules: the official ``metrics_GLI.py`` of
github.com/rachitsaluja/BraTS-2024-Metrics as it stood for the 2024 challenge (commit 9a0ab9c, 2024-07-17).

Regions, in the official order: WT (NETC + SNFH + ET), TC (NETC + ET), NETC, SNFH, ET and RC, the
resection cavity, which is in neither WT nor TC. Against the 2023 rules:

- lesions (reference and prediction alike) are components merged where their dilations meet: 3 times
  (18-connectivity) for WT, TC, SNFH and ET, 5 times for NETC and RC (the official code names SNFH
  "SFNH" in that test, so SNFH keeps 3);
- predicted lesions of at most 20 voxels (ET: 10) are removed before anything is scored, full-region
  Dice and HD95 included; reference lesions of at most 20 mm3 (ET: 10) are left out of the lesion-wise
  scores and counts (2023: 50 mm3);
- for the four single labels, lesions of one label that touch (one voxel, 18-connectivity) the same
  lesion of another label become one lesion: NETC by ET then RC; ET by NETC then RC; RC by ET then NETC;
  SNFH by ET, RC, then NETC, each step against the other label's merged lesions and applied only when
  it finds more than one touching pair; each lesion takes the number of the first lesion it touches;
- a miss or a false positive, and an HD95 with one side empty, count 337 mm (2023: 374).

Not reproduced: the official sensitivity and specificity compare lesion numbers rather than masks
(``result_array == 1`` on numbered maps); here they are the masks' own, as in 2023.
"""

from __future__ import annotations

import cc3d
import numpy as np
from scipy import ndimage

from gliomask.evaluation.lesionwise import DILATION_ITERATIONS, DILATION_STRUCTURE
from gliomask.labels import SCORED_REGIONS, label_mask

REGIONS = SCORED_REGIONS["brats2024"]
MIN_LESION = {"WT": 20.0, "TC": 20.0, "NETC": 20.0, "SNFH": 20.0, "ET": 10.0, "RC": 20.0}  # mm3 (truth), voxels (prediction)
DILATIONS = {"WT": 3, "TC": 3, "NETC": 5, "SNFH": 3, "ET": 3, "RC": 5}
MISS_HD95 = 337.0
# label -> the other labels whose touching components join its lesions, in the official order
JOINED_BY = {"NETC": ("ET", "RC"), "ET": ("NETC", "RC"), "RC": ("ET", "NETC"), "SNFH": ("ET", "RC", "NETC")}


def dilation_lesions(mask: np.ndarray, iterations: int = DILATION_ITERATIONS) -> np.ndarray:
    """Int32 like ``mask``: each voxel of ``mask`` numbered by the 26-connected component of the mask's
    ``iterations``-fold 18-connected dilation it lies in (lesions whose dilations meet share a number)."""
    dilated = ndimage.binary_dilation(mask, structure=DILATION_STRUCTURE, iterations=iterations)
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


def drop_small(ids: np.ndarray, max_voxels: float) -> np.ndarray:
    """``ids`` without the lesions of at most ``max_voxels`` voxels."""
    numbers, counts = np.unique(ids, return_counts=True)
    small = numbers[(counts <= max_voxels) & (numbers != 0)]
    return np.where(np.isin(ids, small), 0, ids) if small.size else ids


def tissue_lesions(labels: np.ndarray, prediction: bool = False) -> dict[str, np.ndarray]:
    """Internal label map (crop) -> {region: Int32 lesion ids} for the six regions, merged and joined as
    the module says; ``prediction``: small lesions removed first, as the official code does to predictions."""
    values = dict(REGIONS)
    base = {}
    for name, region in values.items():
        ids = dilation_lesions(label_mask(labels, region), DILATIONS[name])
        base[name] = drop_small(ids, MIN_LESION[name]) if prediction else ids
    out = {"WT": base["WT"], "TC": base["TC"]}
    for name, others in JOINED_BY.items():
        ids = base[name]
        for other in others:
            ids = join(ids, touching_pairs(ids, base[other]))
        out[name] = ids
    return out
