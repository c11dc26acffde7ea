"""`gliomask evaluate`: BraTS metrics of predicted label maps against ground truth, per case and region."""

from __future__ import annotations

import sys

import csv
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from scipy import ndimage

from gliomask.errors import GliomaskError

from gliomask.evaluation.detection import average_precision, froc, match_lesions, median_true_lesion_score
from gliomask.evaluation.lesionwise import DILATION_ITERATIONS, LESION_MISS_HD95, MIN_GT_MM3, lesionwise, matched_counts
from gliomask.evaluation.metrics import region_metrics
from gliomask.io.atomic import atomic_path
from gliomask.io.brats import (Case, check_output_folder, check_same_grid, convert_labels, discover_cases, read_labels,
                               select_cases)
from gliomask.io.nifti import read_nifti
from gliomask.labels import RESECTION_CAVITY, SCORED_REGIONS, regions_from_labels
from gliomask.utils import bounding_box, progress_bar, write_json

CROP_PAD = DILATION_ITERATIONS * 2 + 2  # beyond lesionwise's own box padding (and BraTS 2024's 5-fold dilation)
METRICS = ("dice", "hd95", "sensitivity", "specificity", "lesion_dice", "lesion_hd95", "tp", "fp", "fn")
STANDARDS = ("auto", "brats2023", "brats2024", "legacy")


def region_names(standard: str) -> tuple[str, ...]:
    """The regions ``standard`` scores: WT, TC, ET; BraTS 2024 adds NETC, SNFH and the cavity RC."""
    return tuple(name for name, _ in SCORED_REGIONS[standard])


class CavityFound(Exception):
    """Raised by `evaluate_case` under ``standard="auto"``: this reference holds BraTS 2024's resection
    cavity, so the whole set is scored by the 2024 rules (`evaluate_folders` starts again with them)."""


AUTO_2023 = "no resection cavity (label 4 with 2023-style names) in any reference"


def auto_2024(case_id: str) -> str:
    return f"BraTS 2024 post-treatment labels: a resection cavity (label 4) in the reference of {case_id}"


def find_prediction(pred_dir: Path, case_id: str) -> Path:
    for name in (f"{case_id}_seg.nii.gz", f"{case_id}-seg.nii.gz", f"{case_id}.nii.gz", f"{case_id}_seg.nii", f"{case_id}.nii"):
        if (pred_dir / name).is_file():
            return pred_dir / name
    raise GliomaskError(f"no prediction for case {case_id} (expected {case_id}_seg.nii.gz)", pred_dir)


def evaluate_case(pred_path: Path, case: Case, standard: str = "brats2023") -> dict:
    """All metrics of one case under ``standard`` (see `gliomask.evaluation.metrics`; ``brats2024``:
    `gliomask.evaluation.brats2024`). The prediction uses the same label convention as its ground truth.

    Lesion-wise Dice and HD95 follow the BraTS 2023 rules in ``brats2023`` and ``legacy``, and the 2024
    ones (lesion size limits, lesions joined across tissues) in ``brats2024``; TP/FP/FN follow those
    rules, or ``brats-evaluation``'s one-to-one matching (``legacy``). ``auto``: ``brats2023``, or
    `CavityFound` when the reference holds a resection cavity."""
    ref_img, ref = read_labels(Path(case.seg), case.convention)
    if standard == "auto":  # the 2023 rules unless a reference says post-treatment: each is read once either way
        if np.any(ref == RESECTION_CAVITY):
            raise CavityFound(case.case_id)
        standard = "brats2023"
    pred_img, pred = read_nifti(pred_path)
    check_same_grid(pred_img, pred.shape, ref_img, pred_path, Path(case.seg), f"ground truth {Path(case.seg).name}")
    pred = convert_labels(pred, case.convention, pred_path)
    spacing = tuple(float(s) for s in ref_img.header.get_zooms()[:3])
    # Every metric looks only at tumour voxels and their surroundings: work in the box around both
    # label maps, widened past the lesion-wise dilation's reach (the same numbers as on the volume).
    box = bounding_box((pred != 0) | (ref != 0), pad=CROP_PAD) or tuple(slice(0, 1) for _ in pred.shape)
    regions, names = SCORED_REGIONS[standard], region_names(standard)
    r = regions_from_labels(ref[box], regions)
    lesion_ids, pred_ids, min_mm3, miss = {}, {}, dict.fromkeys(names, MIN_GT_MM3), LESION_MISS_HD95
    if standard == "brats2024":  # lesions grouped on both sides; small predicted lesions gone before any figure
        from gliomask.evaluation.brats2024 import DILATIONS, MIN_LESION, MISS_HD95, tissue_lesions

        lesion_ids, pred_ids = tissue_lesions(ref[box]), tissue_lesions(pred[box], prediction=True)
        p = np.stack([pred_ids[n] > 0 for n in names])
        min_mm3, miss = MIN_LESION, MISS_HD95
    else:
        p = regions_from_labels(pred[box], regions)
    row = {"case": case.case_id}
    row.update(region_metrics(p, r, spacing, names=names, standard="legacy" if standard == "legacy" else "brats2023",
                              volume_voxels=pred.size))
    if standard == "brats2024":
        for name, pr, rr in zip(names, p, r):
            if pr.any() != rr.any():
                row[f"hd95_{name}"] = miss
    voxel_ml = float(np.prod(spacing)) / 1000.0
    for name, pr, rr in zip(names, p, r):
        row[f"volume_gt_ml_{name}"] = round(int(rr.sum()) * voxel_ml, 4)
        row[f"volume_pred_ml_{name}"] = round(int(pr.sum()) * voxel_ml, 4)
    for name, pr, rr in zip(names, p, r):
        scores = lesionwise(pr, rr, spacing, whole_hd95=row[f"hd95_{name}"] if standard != "legacy" else None,
                            min_mm3=min_mm3[name], lesions=lesion_ids.get(name), pred_lesions=pred_ids.get(name),
                            miss_hd95=miss, reach=DILATIONS[name] if standard == "brats2024" else DILATION_ITERATIONS)
        if standard == "legacy":
            scores.update(matched_counts(pr, rr))
        for k, v in scores.items():
            row[f"{k}_{name}"] = v
    lesion_scores = lesion_score_map(pred_path, p[0], offset=tuple(s.start for s in box))
    if lesion_scores is not None:
        row["_detection"] = {name: match_lesions(pr, rr, lesion_scores) for name, pr, rr in zip(names, p, r)}
    return row


def lesion_score_map(pred_path: Path, wt: np.ndarray, offset=(0, 0, 0)) -> np.ndarray | None:
    """Float32 like ``wt``: each predicted whole-tumour lesion's ``max_score`` from the ``<case>_lesions.json``
    that `gliomask predict` wrote beside the label map (lesions found by their voxel box and count;
    ``wt`` may be a crop of the volume starting at voxel ``offset``); None when there is no such file
    or it does not describe this label map."""
    import json

    import cc3d

    from gliomask.io.lesion_table import lesion_box

    name = pred_path.name
    for suffix in ("_seg.nii.gz", "-seg.nii.gz", ".nii.gz", "_seg.nii", ".nii"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    path = pred_path.parent / f"{name}_lesions.json"
    if not path.is_file():
        return None
    try:
        lesions = json.loads(path.read_text()).get("lesions", [])
        by_key = {(*lesion_box(les), int(les["voxels"])): float(les["max_score"]) for les in lesions}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    components, count = cc3d.connected_components(wt, connectivity=26, return_N=True)
    scores = np.zeros(count + 1, dtype=np.float32)
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    for index, box in enumerate(ndimage.find_objects(components), start=1):
        key = (tuple(s.start + o for s, o in zip(box, offset)), tuple(s.stop - 1 + o for s, o in zip(box, offset)),
               int(sizes[index]))
        if key not in by_key:
            return None
        scores[index] = by_key[key]
    return scores[components]


def refuse_trained_cases(pred_dir: Path, case_ids: list[str]) -> None:
    """Predictions record the patients their checkpoint was trained on (``<case>_lesions.json``,
    ``trained_on``); scoring a model on one of them would report a training figure as a result."""
    import json

    for cid in case_ids:
        path = pred_dir / f"{cid}_lesions.json"
        if not path.is_file():
            continue
        try:
            trained = set(json.loads(path.read_text()).get("trained_on") or [])
        except (OSError, ValueError):
            continue
        overlap = sorted(trained & set(case_ids))
        if overlap:
            raise GliomaskError(f"the model behind these predictions was trained on {len(overlap)} of the evaluated "
                                f"cases ({', '.join(overlap[:3])}{' ...' if len(overlap) > 3 else ''}); "
                                "evaluate on patients it never saw", path)


def _evaluate_job(args):
    return evaluate_case(*args)


def _score(jobs: list[tuple], standard: str, workers: int, progress: bool) -> list[dict]:
    """`evaluate_case` of every (prediction, case) under ``standard``, in ``workers`` processes."""
    jobs = [(*job, standard) for job in jobs]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
            try:
                return list(progress_bar(pool.map(_evaluate_job, jobs), total=len(jobs), desc="evaluate",
                                         enabled=progress))
            except CavityFound:
                pool.shutdown(cancel_futures=True)  # the cases not started yet are scored again anyway
                raise
    return [_evaluate_job(j) for j in progress_bar(jobs, desc="evaluate", enabled=progress)]


def summarise(rows: list[dict]) -> dict:
    summary = {"cases": len(rows)}
    for key in rows[0]:
        if key == "standard":
            continue
        if key == "case":
            continue
        values = np.array([row[key] for row in rows], dtype=float)
        summary[key] = {"mean": float(values.mean()), "std": float(values.std()), "median": float(np.median(values)),
                        "q25": float(np.percentile(values, 25)), "q75": float(np.percentile(values, 75))}
    for name in [k[len("tp_"):] for k in rows[0] if k.startswith("tp_")]:
        tp = sum(r[f"tp_{name}"] for r in rows)
        fn = sum(r[f"fn_{name}"] for r in rows)
        fp = sum(r[f"fp_{name}"] for r in rows)
        summary[f"lesion_sensitivity_{name}"] = tp / (tp + fn) if tp + fn else 1.0
        summary[f"fp_per_case_{name}"] = fp / len(rows)
    return summary


def evaluate_folders(pred_dir: str | Path, gt: str | Path, out_dir: str | Path | None = None, *,
                     workers: int = 1, progress: bool = True, case_ids: list[str] | None = None,
                     standard: str = "auto") -> tuple[list[dict], dict]:
    """Score every ground-truth case under ``gt`` against ``pred_dir/<case>_seg.nii.gz``.

    Every case must have a prediction. Writes ``metrics.csv`` and ``summary.json`` to ``out_dir``.
    When the predictions carry lesion scores (``<case>_lesions.json`` from `gliomask predict`), the
    summary adds lesion detection figures: FROC and AP at lesion IoU 0.1 per region. ``standard="auto"``
    picks BraTS 2024's rules when a reference with 2023-style names holds label 4 (the 2024 resection
    cavity) and the BraTS 2023 official rules otherwise; the summary says which and why.
    """
    if standard not in STANDARDS:
        raise GliomaskError(f"unknown standard {standard!r}; choose from {', '.join(STANDARDS)}")
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise GliomaskError("prediction folder not found", pred_dir)
    cases = [c for c in select_cases(discover_cases(gt), case_ids, gt) if c.seg is not None]
    if not cases:
        raise GliomaskError("no ground-truth segmentations found", gt)
    jobs = [(find_prediction(pred_dir, c.case_id), c) for c in cases]  # every prediction exists before any work
    chosen = f"given (--standard {standard})" if standard != "auto" else AUTO_2023
    if case_ids is None:  # a prediction no ground truth matches is not scored: say so, do not drop it silently
        scored = {c.case_id for c in cases}
        unmatched = sorted(p.name[:-len("_seg.nii.gz")] for p in pred_dir.glob("*_seg.nii.gz")
                           if p.name[:-len("_seg.nii.gz")] not in scored)
        if unmatched:
            print(f"gliomask: warning: {pred_dir}: {len(unmatched)} prediction(s) without ground truth in {gt}, not "
                  f"scored: {', '.join(unmatched[:5])}{' ...' if len(unmatched) > 5 else ''}", file=sys.stderr, flush=True)
    if out_dir is not None:
        refuse_output_among_inputs(out_dir, pred_dir, gt, cases)
    refuse_trained_cases(pred_dir, [c.case_id for c in cases])
    try:
        rows = _score(jobs, standard, workers, progress)
    except CavityFound as found:  # only under auto: a post-treatment set, scored again by the 2024 rules
        standard, chosen = "brats2024", auto_2024(str(found))
        rows = _score(jobs, standard, workers, progress)
    if standard == "auto":
        standard = "brats2023"
    detection = [row.pop("_detection", None) for row in rows]
    summary = {"standard": standard, "standard_chosen": chosen, **summarise(rows)}
    if rows and all(d is not None for d in detection):
        summary["detection"] = {name: {"froc": froc([d[name] for d in detection]),
                                       "ap_iou0.1": average_precision([d[name] for d in detection]),
                                       "median_true_lesion_score": median_true_lesion_score([d[name] for d in detection])}
                                for name in region_names(standard)}
    if out_dir is not None:
        write_results(rows, summary, Path(out_dir))
    return rows, summary


def refuse_output_among_inputs(out_dir, pred_dir, gt, cases=None) -> None:
    """The report never lands among the inputs: not in (or under) the --gt or --pred folder, not an input file."""
    target = Path(out_dir).resolve()
    for inputs in (Path(gt).resolve(), Path(pred_dir).resolve()):
        if inputs.is_dir() and (target == inputs or inputs in target.parents):
            raise GliomaskError("the output folder is, or is inside, an input folder (--gt or --pred); "
                                "choose another -o", out_dir)
    check_output_folder(Path(out_dir), cases or [])


def write_results(rows: list[dict], summary: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "metrics.csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    write_json(out_dir / "summary.json", summary)


def format_table(summary: dict) -> str:
    """A plain-text table of the headline figures, and the standard they follow."""
    standard = summary.get("standard", "brats2023")
    chosen = summary.get("standard_chosen", "given")
    lines = [f"standard: {STANDARD_NAMES.get(standard)}" + ("" if chosen.startswith("given") else f" [auto: {chosen}]"),
             f"{'region':<8}{'Dice':>8}{'HD95 mm':>10}{'Sens':>8}{'Spec':>8}{'lesion Dice':>13}{'lesion sens':>13}{'FP/case':>9}"]
    for name in region_names(standard):
        lines.append(
            f"{name:<8}{summary[f'dice_{name}']['mean']:>8.3f}{summary[f'hd95_{name}']['mean']:>10.2f}"
            f"{summary[f'sensitivity_{name}']['mean']:>8.3f}{summary[f'specificity_{name}']['mean']:>8.4f}"
            f"{summary[f'lesion_dice_{name}']['mean']:>13.3f}{summary[f'lesion_sensitivity_{name}']:>13.3f}"
            f"{summary[f'fp_per_case_{name}']:>9.2f}")
    if "detection" in summary:
        det = summary["detection"]
        lines.append("lesion detection (scores from the lesion reports): " + ", ".join(
            f"{n} AP@IoU0.1 {_fmt(det[n]['ap_iou0.1'])} FROC mean {_fmt(det[n]['froc']['mean'])}" for n in det)
            + f"; median score of true lesions (WT) {_fmt(det['WT']['median_true_lesion_score'])}")
    return "\n".join(lines)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


STANDARD_NAMES = {
    "brats2023": "BraTS 2023 (official lesion-wise code: surface-distance HD95, empty region 374)",
    "brats2024": "BraTS 2024 post-treatment (official code: WT, TC, NETC, SNFH, ET and the resection cavity RC "
                 "on its own; lesions of at most 20 mm3, 10 for ET and RC, left out; lesions joined across tissues)",
    "legacy": "legacy BraTS 2018-2021 (brats-evaluation/nnU-Net: pooled HD95 in voxels, empty region 373.13)",
}
