"""Lesion detection figures from each predicted 3-D lesion's score: FROC and AP at lesion IoU 0.1.

No BraTS tool reports these; detection benchmarks do (LUNA16's FROC, nnDetection's AP at IoU 0.1).
Per case and region, predicted lesions (26-connected components) are matched one to one to
ground-truth lesions greedily by decreasing score: a prediction is a hit when its IoU with a still
unmatched ground-truth lesion is at least 0.1 (the best such lesion is taken). Unmatched predictions
are false positives. Every ground-truth lesion counts, whatever its size.

- FROC: over all cases, sensitivity (hit ground-truth lesions / all) at 1/8 to 8 (powers of two)
  false positives per case: the highest sensitivity reached by any score cut-off whose false
  positives per case do not exceed the rate (a step curve, no interpolation).
- AP: the area under the precision-recall curve with the precision envelope (all-point, as
  PASCAL VOC 2010+ and COCO per threshold compute it); None when there is no ground-truth lesion.
"""

from __future__ import annotations

import cc3d
import numpy as np
from scipy import ndimage

IOU_THRESHOLD = 0.1
FP_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def match_lesions(pred: np.ndarray, ref: np.ndarray, scores: np.ndarray) -> dict:
    """One case, one region.

    Args:
        pred, ref: Bool [X, Y, Z] predicted and reference region.
        scores: Float [X, Y, Z], each voxel's lesion score; a predicted component's score is its maximum.
    Returns:
        ``{"candidates": [(score, hit), ...], "gt": number of ground-truth lesions}``.
    """
    pred_cc, n_pred = cc3d.connected_components(pred.astype(bool), connectivity=26, return_N=True)
    ref_cc, n_ref = cc3d.connected_components(ref.astype(bool), connectivity=26, return_N=True)
    if n_pred == 0:
        return {"candidates": [], "gt": int(n_ref)}
    comp_scores = ndimage.maximum(scores, labels=pred_cc, index=np.arange(1, n_pred + 1))
    pred_size = np.bincount(pred_cc.ravel(), minlength=n_pred + 1)
    ref_size = np.bincount(ref_cc.ravel(), minlength=n_ref + 1)
    both = (pred_cc > 0) & (ref_cc > 0)
    overlaps: dict[int, list[tuple[float, int]]] = {}
    if both.any():
        pairs, inter = np.unique(np.stack([pred_cc[both], ref_cc[both]]), axis=1, return_counts=True)
        for (a, b), i in zip(pairs.T, inter):
            overlaps.setdefault(int(a), []).append((i / (pred_size[a] + ref_size[b] - i), int(b)))
    matched: set[int] = set()
    candidates = []
    for a in sorted(range(1, n_pred + 1), key=lambda k: -comp_scores[k - 1]):
        options = [(iou, b) for iou, b in overlaps.get(a, []) if iou >= IOU_THRESHOLD and b not in matched]
        hit = bool(options)
        if hit:
            matched.add(max(options)[1])
        candidates.append((float(comp_scores[a - 1]), hit))
    return {"candidates": candidates, "gt": int(n_ref)}


def _curve(cases: list[dict]):
    cands = sorted((c for case in cases for c in case["candidates"]), key=lambda c: -c[0])
    hits = np.cumsum([c[1] for c in cands]) if cands else np.zeros(0)
    fps = np.cumsum([not c[1] for c in cands]) if cands else np.zeros(0)
    return hits, fps, sum(case["gt"] for case in cases)


def froc(cases: list[dict], rates=FP_RATES) -> dict[str, float | None]:
    """Sensitivity at each false-positive rate per case (keys ``"0.125"`` ... ``"8"``) and their mean."""
    hits, fps, n_gt = _curve(cases)
    out: dict[str, float | None] = {}
    for r in rates:
        if n_gt == 0:
            out[f"{r:g}"] = None
            continue
        ok = fps / max(len(cases), 1) <= r
        out[f"{r:g}"] = float(hits[ok].max() / n_gt) if ok.any() else 0.0
    values = [v for v in out.values() if v is not None]
    out["mean"] = float(np.mean(values)) if values else None
    return out


def average_precision(cases: list[dict]) -> float | None:
    hits, fps, n_gt = _curve(cases)
    if n_gt == 0:
        return None
    if len(hits) == 0:
        return 0.0
    recall = np.concatenate([[0.0], hits / n_gt, [hits[-1] / n_gt]])
    precision = np.concatenate([[1.0], hits / (hits + fps), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope
    return float(np.sum((recall[1:] - recall[:-1]) * precision[1:]))


def froc_points(cases: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(false positives per case, sensitivity) at every score cut-off, for plotting."""
    hits, fps, n_gt = _curve(cases)
    return fps / max(len(cases), 1), hits / max(n_gt, 1)


def median_true_lesion_score(cases: list[dict]) -> float | None:
    """The median score of predicted lesions that hit a ground-truth lesion (None without any)."""
    scores = [score for case in cases for score, hit in case["candidates"] if hit]
    return float(np.median(scores)) if scores else None
