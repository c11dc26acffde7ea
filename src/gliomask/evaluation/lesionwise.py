"""Lesion-wise scores as the BraTS 2023 lesion-wise metrics code computes them (``BraTS-GLI`` settings).

Per region: ground-truth lesions are 26-connected components (connected-components-3d, as the
official code labels). The ground truth is dilated 3 times with ``generate_binary_structure(3, 2)``
(18-connectivity) and lesions whose dilations meet are merged into one. Predicted 26-connected
components that touch a lesion's dilation are its true positives and are scored together against it:
Dice and HD95 (DeepMind surface-distance). A lesion with none is a false negative (Dice 0, HD95 374).
Lesions of at most 50 mm3 (voxel count x voxel volume) are left out of the scores and counts, and
predicted components that touch only such lesions are not false positives. A predicted component
touching no lesion is a false positive (Dice 0, HD95 374). Case score = sum over scored lesions /
(scored lesions + false positives); 1 and 0 when there is nothing to score.

Everything runs inside the box around prediction and ground truth, widened beyond the dilation's
reach, so that labelling and dilation cost little and give the same numbers as on the whole volume.
"""

from __future__ import annotations

import math

import cc3d
import numpy as np
from scipy import ndimage

from gliomask.evaluation.metrics import dice, hd95
from gliomask.utils import bounding_box

LESION_MISS_HD95 = 374.0
DILATION_ITERATIONS = 3
DILATION_STRUCTURE = ndimage.generate_binary_structure(3, 2)  # 18-connectivity, as the official code
MIN_GT_MM3 = 50.0  # ground-truth lesions of this volume or less are ignored


def lesionwise(pred: np.ndarray, ref: np.ndarray, spacing=(1.0, 1.0, 1.0), *, whole_hd95: float | None = None,
               with_hd95: bool = True, min_mm3: float = MIN_GT_MM3, lesions: np.ndarray | None = None,
               pred_lesions: np.ndarray | None = None, miss_hd95: float = LESION_MISS_HD95,
               reach: int = DILATION_ITERATIONS) -> dict[str, float]:
    """Lesion-wise Dice, HD95 (mm) and TP/FP/FN counts of Bool [X, Y, Z] prediction and reference.

    ``min_mm3``: reference lesions of this volume or less are left out (BraTS 2023: 50; 2024: 20 or 10 by
    region). ``lesions``: Int [X, Y, Z] reference lesion ids (0 outside ``ref``) when the lesions are
    grouped otherwise than by the dilation (BraTS 2024 also joins lesions across tissues,
    `gliomask.evaluation.brats2024`); each id's own dilation then finds its predicted components.
    ``pred_lesions``: Int [X, Y, Z] predicted lesion ids (0 outside ``pred``) when predicted components are
    grouped too (BraTS 2024); ``miss_hd95``: the HD95 of a miss or a false positive (2023: 374; 2024: 337);
    ``reach``: how many dilations of a grouped lesion find its predicted lesions (2024: 5 for NETC and RC).

    ``with_hd95=False`` skips the surface distances (``lesion_hd95`` is then not meaningful): for a
    post-processing search that needs the lesion-wise Dice many times.

    ``whole_hd95``: the BraTS 2023 HD95 of the whole region, if already computed; a single lesion
    that every predicted component touches is the whole region, and its HD95 is not computed twice.
    """
    pred, ref = pred.astype(bool), ref.astype(bool)
    box = bounding_box(pred | ref, pad=DILATION_ITERATIONS * 2 + 1)
    if box is None:
        return {"lesion_dice": 1.0, "lesion_hd95": 0.0, "tp": 0, "fp": 0, "fn": 0}
    pred, ref = pred[box], ref[box]
    voxel_mm3 = float(np.prod(spacing))
    if pred_lesions is None:
        pred_cc, n_pred = cc3d.connected_components(pred, connectivity=26, return_N=True)
    else:  # consecutive ids 1..n for the grouped predicted lesions
        kept, pred_cc = np.unique(pred_lesions[box], return_inverse=True)
        pred_cc = pred_cc.reshape(pred.shape) + (0 if kept[0] == 0 else 1)
        n_pred = int(np.count_nonzero(kept))
    if lesions is None:
        dilated = ndimage.binary_dilation(ref, structure=DILATION_STRUCTURE, iterations=DILATION_ITERATIONS)
        groups, n_groups = cc3d.connected_components(dilated, connectivity=26, return_N=True)
        zones = ((ref & (groups == g), groups == g) for g in range(1, n_groups + 1))  # a merged lesion's dilation
    else:
        ids = lesions[box]
        found = [int(i) for i in np.unique(ids) if i]
        n_groups = len(found)
        zones = ((ids == i, ndimage.binary_dilation(ids == i, structure=DILATION_STRUCTURE, iterations=reach))
                 for i in found)
    touched: set[int] = set()
    scores, tp, fn = [], 0, 0
    for lesion, zone in zones:
        hits = np.flatnonzero(np.bincount(pred_cc[zone], minlength=n_pred + 1)[1:]) + 1
        touched.update(hits.tolist())
        if lesion.sum() * voxel_mm3 <= min_mm3:
            continue
        if hits.size:
            tp += 1
            if n_groups == 1 and hits.size == n_pred and whole_hd95 is not None:
                scores.append((dice(pred, ref), whole_hd95))  # the lesion is the whole region
                continue
            member = np.zeros(n_pred + 1, dtype=bool)
            member[hits] = True
            found = member[pred_cc]  # the touching components (a table beats np.isin)
            scores.append((dice(found, lesion), hd95(found, lesion, spacing, "brats2023") if with_hd95 else 0.0))
        else:
            fn += 1
            scores.append((0.0, miss_hd95))
    fp = n_pred - len(touched)
    n = len(scores) + fp
    if n == 0:
        return {"lesion_dice": 1.0, "lesion_hd95": 0.0, "tp": tp, "fp": fp, "fn": fn}
    hd_sum = sum(h if math.isfinite(h) else miss_hd95 for _, h in scores) + miss_hd95 * fp
    return {"lesion_dice": sum(d for d, _ in scores) / n, "lesion_hd95": hd_sum / n, "tp": tp, "fp": fp, "fn": fn}


def matched_counts(pred: np.ndarray, ref: np.ndarray) -> dict[str, int]:
    """TP/FP/FN as ``brats-evaluation`` (panoptica) counts lesions: 26-connected components of each side,
    matched one to one greedily by decreasing IoU, any overlap counting; no dilation, no size rule."""
    pred, ref = pred.astype(bool), ref.astype(bool)
    box = bounding_box(pred | ref)
    if box is None:
        return {"tp": 0, "fp": 0, "fn": 0}
    pred_cc, n_pred = cc3d.connected_components(pred[box], connectivity=26, return_N=True)
    ref_cc, n_ref = cc3d.connected_components(ref[box], connectivity=26, return_N=True)
    both = (pred_cc > 0) & (ref_cc > 0)
    pairs, inter = np.unique(np.stack([pred_cc[both], ref_cc[both]]), axis=1, return_counts=True)
    pred_size = np.bincount(pred_cc.ravel(), minlength=n_pred + 1)
    ref_size = np.bincount(ref_cc.ravel(), minlength=n_ref + 1)
    ious = [(i / (pred_size[a] + ref_size[b] - i), int(a), int(b)) for (a, b), i in zip(pairs.T, inter)]
    used_pred, used_ref = set(), set()
    for _, a, b in sorted(ious, reverse=True):
        if a not in used_pred and b not in used_ref:
            used_pred.add(a)
            used_ref.add(b)
    tp = len(used_pred)
    return {"tp": tp, "fp": int(n_pred) - tp, "fn": int(n_ref) - tp}
