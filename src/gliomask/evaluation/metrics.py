"""Per-region BraTS metrics.

Empty rules (BraTS 2019 scoring as re-implemented by nnU-Net and the BraTS 2023 metrics code):
both empty: Dice 1, HD95 0; exactly one empty: Dice 0, HD95 373.13 mm (the diagonal of the
240 x 240 x 155 volume).

HD95 convention: the larger of the two directed 95th percentiles of surface distances (as MONAI
and DeepMind's surface-distance compute it), not medpy's percentile of the pooled distances.
Surfaces are the mask voxels with a 6-connected background neighbour; distances use the voxel
spacing, so they are in mm.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

EMPTY_HD95 = 373.13
_CROSS = ndimage.generate_binary_structure(3, 1)


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    pred, ref = pred.astype(bool), ref.astype(bool)
    total = int(pred.sum()) + int(ref.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(pred, ref).sum()) / total


def surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with at least one 6-connected neighbour outside it (the volume edge counts as outside)."""
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    eroded = ndimage.binary_erosion(mask, structure=structure, border_value=0)
    return mask & ~eroded


def _crop_pair(a: np.ndarray, b: np.ndarray, pad: int = 1):
    """Crop both masks to their joint bounding box (plus a margin) to keep distance transforms small."""
    both = a | b
    box = []
    for axis in range(a.ndim):
        other = tuple(i for i in range(a.ndim) if i != axis)
        idx = np.flatnonzero(both.any(axis=other))
        box.append(slice(max(idx[0] - pad, 0), idx[-1] + 1 + pad))
    box = tuple(box)
    return a[box], b[box]


def directed_surface_distances(a: np.ndarray, b: np.ndarray, spacing) -> np.ndarray:
    """Distances (mm) from each surface voxel of ``a`` to the nearest surface voxel of ``b``."""
    sa, sb = surface(a), surface(b)
    dist_to_b = ndimage.distance_transform_edt(~sb, sampling=spacing)
    return dist_to_b[sa]


def hd95(pred: np.ndarray, ref: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> float:
    pred, ref = pred.astype(bool), ref.astype(bool)
    if not pred.any() and not ref.any():
        return 0.0
    if not pred.any() or not ref.any():
        return EMPTY_HD95
    pred, ref = _crop_pair(pred, ref)
    d_pr = directed_surface_distances(pred, ref, spacing)
    d_rp = directed_surface_distances(ref, pred, spacing)
    return float(max(np.percentile(d_pr, 95), np.percentile(d_rp, 95)))


def sensitivity(pred: np.ndarray, ref: np.ndarray) -> float:
    ref_sum = int(ref.sum())
    if ref_sum == 0:
        return 1.0 if not pred.any() else 0.0  # nothing to find: perfect only if nothing was claimed
    return int(np.logical_and(pred, ref).sum()) / ref_sum


def specificity(pred: np.ndarray, ref: np.ndarray, within: np.ndarray | None = None) -> float:
    """True-negative rate; over ``within`` (e.g. the brain mask) when given, else over the whole volume."""
    neg = ~ref.astype(bool)
    if within is not None:
        neg &= within.astype(bool)
    n = int(neg.sum())
    if n == 0:
        return 1.0
    return int(np.logical_and(~pred.astype(bool), neg).sum()) / n


def region_metrics(pred_regions: np.ndarray, ref_regions: np.ndarray, spacing, names=("WT", "TC", "ET"),
                   brain: np.ndarray | None = None, with_hd95: bool = True) -> dict[str, float]:
    """Dice, HD95, sensitivity and specificity for each region of Bool [R, ...] arrays."""
    out = {}
    for name, p, r in zip(names, pred_regions, ref_regions):
        out[f"dice_{name}"] = dice(p, r)
        if with_hd95:
            out[f"hd95_{name}"] = hd95(p, r, spacing)
        out[f"sensitivity_{name}"] = sensitivity(p, r)
        out[f"specificity_{name}"] = specificity(p, r, brain)
    return out
