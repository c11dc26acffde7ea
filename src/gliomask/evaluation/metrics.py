"""Per-region BraTS metrics under two standards.

``brats2023`` (default, what the BraTS 2023+ leaderboards report; the BraTS 2023 lesion-wise metrics
code): Dice; HD95 from DeepMind's ``surface-distance`` (``compute_robust_hausdorff(..., 95)`` on
``compute_surface_distances``: surface elements weighted by area, the larger of the two directed
percentiles); sensitivity and specificity over the whole volume. Empty rules: both empty -> Dice 1,
HD95 0; exactly one empty -> Dice 0, HD95 374.

``legacy`` (BraTS 2018-2021 as ``brats-evaluation`` and nnU-Net's BraTS scripts compute it, medpy's
``hd95``): the 95th percentile of both directions' voxel-surface distances pooled together; surfaces
are mask voxels with a 6-connected background neighbour. Like ``brats-evaluation``, distances are in
voxel units (mm on BraTS's 1 mm grid; use ``brats2023`` for anisotropic data). Empty rules as BraTS
2019-2021 scored them (nnU-Net): both empty -> HD95 0; one empty -> 373.13, the diagonal of the
240 x 240 x 155 volume.

Every function takes Bool arrays; ``spacing`` is the voxel size in mm along the array axes.
"""

from __future__ import annotations

import functools

import numpy as np
import surface_distance.lookup_tables
from scipy import ndimage
from surface_distance import compute_robust_hausdorff, compute_surface_distances

from gliomask.utils import bounding_box

# surface-distance rebuilds its 256-entry surfel-area table on every call (~8 ms); the table depends on
# the spacing only, so it is built once per spacing. Same numbers, fewer seconds per case.
surface_distance.lookup_tables.create_table_neighbour_code_to_surface_area = functools.lru_cache(maxsize=16)(
    surface_distance.lookup_tables.create_table_neighbour_code_to_surface_area)

STANDARDS = ("brats2023", "legacy")
EMPTY_HD95 = {"brats2023": 374.0, "legacy": 373.13}


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


def directed_surface_distances(a: np.ndarray, b: np.ndarray, spacing) -> np.ndarray:
    """Distances (mm) from each surface voxel of ``a`` to the nearest surface voxel of ``b`` (medpy's way)."""
    dist_to_b = ndimage.distance_transform_edt(~surface(b), sampling=spacing)
    return dist_to_b[surface(a)]


def hd95(pred: np.ndarray, ref: np.ndarray, spacing=(1.0, 1.0, 1.0), standard: str = "brats2023") -> float:
    """HD95 in mm under ``standard`` (see the module docstring), empty rules included."""
    pred, ref = pred.astype(bool), ref.astype(bool)
    if not pred.any() and not ref.any():
        return 0.0
    if not pred.any() or not ref.any():
        return EMPTY_HD95[standard]
    box = bounding_box(pred | ref)
    pred, ref = pred[box], ref[box]
    if standard == "brats2023":
        return float(compute_robust_hausdorff(compute_surface_distances(ref, pred, tuple(spacing)), 95))
    if standard == "legacy":
        unit = (1.0,) * pred.ndim  # brats-evaluation measures in voxels
        pooled = np.concatenate([directed_surface_distances(pred, ref, unit), directed_surface_distances(ref, pred, unit)])
        return float(np.percentile(pooled, 95))
    raise ValueError(f"unknown standard {standard!r}; choose from {', '.join(STANDARDS)}")


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
                   brain: np.ndarray | None = None, with_hd95: bool = True, standard: str = "brats2023",
                   volume_voxels: int | None = None) -> dict[str, float]:
    """Dice, HD95, sensitivity and specificity for each region of Bool [R, ...] arrays.

    ``volume_voxels``: the whole volume's voxel count when the arrays are a crop of it holding every
    tumour voxel (specificity counts the volume's negatives); default the arrays' own size.

    Same numbers as `dice`, `hd95`, `sensitivity` and `specificity`, from voxel counts taken inside the
    box around prediction and reference (outside it both are empty, so every voxel there is a true
    negative): a few passes over a small box instead of a dozen over the whole volume.
    """
    brain_voxels = None if brain is None else int(np.count_nonzero(brain))
    out = {}
    for name, p, r in zip(names, pred_regions, ref_regions):
        box = bounding_box(np.logical_or(p, r))
        if box is None:
            p_in, r_in, b_in = np.zeros(1, bool), np.zeros(1, bool), None
        else:
            p_in, r_in = p[box].astype(bool, copy=False), r[box].astype(bool, copy=False)
            b_in = None if brain is None else brain[box].astype(bool, copy=False)
        tp = int(np.count_nonzero(p_in & r_in))
        n_pred, n_ref = int(np.count_nonzero(p_in)), int(np.count_nonzero(r_in))
        fp = n_pred - tp
        out[f"dice_{name}"] = 1.0 if n_pred + n_ref == 0 else 2.0 * tp / (n_pred + n_ref)
        if with_hd95:
            out[f"hd95_{name}"] = hd95(p_in, r_in, spacing, standard) if box is not None else 0.0
        out[f"sensitivity_{name}"] = (tp / n_ref) if n_ref else (1.0 if n_pred == 0 else 0.0)
        if brain is None:  # negatives: every voxel of the volume outside the reference
            negatives, false_pos = (volume_voxels or p.size) - n_ref, fp
        else:  # negatives inside the brain mask only
            inside_ref = int(np.count_nonzero(r_in & b_in)) if b_in is not None else 0
            negatives = brain_voxels - inside_ref
            false_pos = int(np.count_nonzero(p_in & ~r_in & b_in)) if b_in is not None else 0
        out[f"specificity_{name}"] = 1.0 if negatives == 0 else (negatives - false_pos) / negatives
    return out
