"""Volume-level validation through the prediction path, and per-class score thresholds chosen on it."""

from __future__ import annotations

import numpy as np

from gliomask.evaluation.metrics import dice
from gliomask.inference.core import compose_regions, detect_volume, score_volume
from gliomask.inference.regions import REGION_NAMES, class_score_region, postprocess, regions_from_labels

CANDIDATE_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)


CANDIDATE_ET_VOXELS = (0, 100, 250, 500, 1000)


def predict_regions(dets, shape, scheme: str, thresholds: list[float], infer_cfg,
                    min_case_et_voxels: int | None = None) -> np.ndarray:
    """Detections -> cleaned, nested Bool [3, S, H, W] regions, exactly as `predict` builds them."""
    pred = compose_regions(dets, shape, scheme, thresholds, infer_cfg.mask_threshold)
    scores = score_volume(dets, shape, thresholds, infer_cfg.mask_threshold)
    et_voxels = infer_cfg.min_case_et_voxels if min_case_et_voxels is None else min_case_et_voxels
    return postprocess(pred, scores, min_voxels=infer_cfg.min_component_voxels,
                       min_lesion_score=infer_cfg.min_lesion_score, min_case_et_voxels=et_voxels)


def choose_min_case_et_voxels(cases, scheme: str, thresholds: list[float], infer_cfg) -> int:
    """The case-level ET volume below which ET is relabelled core, maximising mean ET Dice."""
    regions = [(predict_regions(dets, ref.shape[1:], scheme, thresholds, infer_cfg, 0)[2], ref[2]) for dets, ref in cases]
    best, best_score = 0, -1.0
    for t in CANDIDATE_ET_VOXELS:
        score = float(np.mean([dice(et if et.sum() >= t else np.zeros_like(et), ref) for et, ref in regions]))
        if score > best_score + 1e-9:
            best, best_score = t, score
    return best


def choose_thresholds(cases, scheme: str, num_classes: int, infer_cfg) -> list[float]:
    """Per class, the score cut-off that maximises the mean Dice of the smallest region holding it.

    Classes are tuned from the most specific (ET) to the broadest (WT), each given the ones already
    chosen, because a detection of a specific class also counts towards the broader regions.
    ``cases``: list of (detections, Bool[3, S, H, W] reference regions).
    """
    thresholds = [infer_cfg.default_score_threshold] * num_classes
    judged = class_score_region(scheme)
    for c in sorted(range(num_classes), key=lambda k: -judged[k]):
        best, best_score = thresholds[c], -1.0
        for t in CANDIDATE_THRESHOLDS:
            trial = list(thresholds)
            trial[c] = t
            scores = [dice(predict_regions(dets, ref.shape[1:], scheme, trial, infer_cfg)[judged[c]], ref[judged[c]])
                      for dets, ref in cases]
            score = float(np.mean(scores))
            if score > best_score + 1e-9:
                best, best_score = t, score
        thresholds[c] = best
    return thresholds


def validate(model, prepared, case_ids: list[str], *, infer_cfg, device, amp: bool = False,
             tune_thresholds: bool = True) -> dict:
    """Dice per region (WT, TC, ET) over whole validation volumes, as `predict` would produce them."""
    scheme = prepared.settings["scheme"]
    num_classes = len(prepared.classes)
    cases = []
    for cid in case_ids:
        volume, seg = prepared.arrays(cid)
        dets = detect_volume(model, volume, batch_size=infer_cfg.batch_size, device=device, amp=amp)
        cases.append((dets, regions_from_labels(np.asarray(seg))))
    if tune_thresholds:
        thresholds = choose_thresholds(cases, scheme, num_classes, infer_cfg)
        et_voxels = choose_min_case_et_voxels(cases, scheme, thresholds, infer_cfg)
    else:
        thresholds = infer_cfg.score_thresholds or [infer_cfg.default_score_threshold] * num_classes
        et_voxels = infer_cfg.min_case_et_voxels
    per_region = {name: [] for name in REGION_NAMES}
    for dets, ref in cases:
        pred = predict_regions(dets, ref.shape[1:], scheme, thresholds, infer_cfg, et_voxels)
        for r, name in enumerate(REGION_NAMES):
            per_region[name].append(dice(pred[r], ref[r]))
    result = {f"dice_{n}": float(np.mean(v)) for n, v in per_region.items()}
    result["dice_mean"] = float(np.mean([result[f"dice_{n}"] for n in REGION_NAMES]))
    result["thresholds"] = [float(t) for t in thresholds]
    result["min_case_et_voxels"] = int(et_voxels)
    return result
