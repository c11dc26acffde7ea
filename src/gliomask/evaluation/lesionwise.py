"""Lesion-wise scores in the manner of the BraTS 2023 challenge.

Per region: ground-truth components (26-connected) are dilated by 3 iterations of a 3x3x3 structure
and merged where the dilations meet; predicted components touching a dilated GT lesion are its true
positives and are scored against it (Dice, HD95). A GT lesion without any is a false negative
(Dice 0, HD95 374); a predicted component touching no GT lesion is a false positive (Dice 0, HD95 374).
GT lesions of 50 voxels or fewer are ignored. Case score = sum over lesions / (GT lesions + FP).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from gliomask.evaluation.metrics import dice, hd95
from gliomask.inference.regions import STRUCTURE_3D

LESION_MISS_HD95 = 374.0
DILATION_ITERATIONS = 3
MIN_GT_VOXELS = 50  # GT lesions of this size or smaller are ignored


def lesionwise(pred: np.ndarray, ref: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> dict[str, float]:
    pred, ref = pred.astype(bool), ref.astype(bool)
    gt_comp, n_gt = ndimage.label(ref, structure=STRUCTURE_3D)
    dilated = ndimage.binary_dilation(ref, structure=STRUCTURE_3D, iterations=DILATION_ITERATIONS)
    groups, _ = ndimage.label(dilated, structure=STRUCTURE_3D)  # merged lesions
    pred_comp, n_pred = ndimage.label(pred, structure=STRUCTURE_3D)

    lesion_dice, lesion_hd = [], []
    tp = fn = 0
    matched_pred: set[int] = set()
    ignored_pred: set[int] = set()
    group_ids = np.unique(groups[ref])
    for g in group_ids:
        zone = groups == g
        gt_lesion = ref & zone
        touching = set(np.unique(pred_comp[zone & (pred_comp > 0)]).tolist())
        if int(gt_lesion.sum()) <= MIN_GT_VOXELS:
            ignored_pred |= touching
            continue
        if touching:
            matched_pred |= touching
            pred_lesion = np.isin(pred_comp, list(touching))
            lesion_dice.append(dice(pred_lesion, gt_lesion))
            lesion_hd.append(hd95(pred_lesion, gt_lesion, spacing))
            tp += 1
        else:
            lesion_dice.append(0.0)
            lesion_hd.append(LESION_MISS_HD95)
            fn += 1
    fp = len(set(range(1, n_pred + 1)) - matched_pred - ignored_pred)
    denominator = tp + fn + fp
    if denominator == 0:
        case_dice, case_hd = 1.0, 0.0
    else:
        case_dice = float(sum(lesion_dice)) / denominator
        case_hd = float(sum(lesion_hd) + LESION_MISS_HD95 * fp) / denominator
    return {"lesion_dice": case_dice, "lesion_hd95": case_hd, "tp": tp, "fp": fp, "fn": fn,
            "gt_lesions": tp + fn}
