"""The visual report of an evaluation: overlays per case, a Dice box plot and index.html."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gliomask.evaluation.evaluate import find_prediction
from gliomask.io.brats import discover_cases, read_labels
from gliomask.io.nifti import read_nifti


def write_visual_report(pred_dir: str | Path, gt: str | Path, out_dir: str | Path, rows: list[dict], summary: dict,
                        *, title: str = "gliomask evaluation") -> Path:
    from gliomask.viz.overlay import save_boxplot, save_overlay
    from gliomask.viz.report import write_report

    out_dir = Path(out_dir)
    cases = {c.case_id: c for c in discover_cases(gt)}
    overlays = {}
    for row in rows:
        case = cases[row["case"]]
        pred_path = find_prediction(Path(pred_dir), case.case_id)
        reference, pred = read_labels(pred_path, case.convention)
        gt_labels = read_labels(Path(case.seg), case.convention)[1]
        # a ground-truth folder may hold segmentations only: then the overlay is drawn on the label map
        images = {m: read_nifti(Path(case.images[m]))[1] for m in ("flair", "t1ce") if m in case.images} \
            or {"labels": (gt_labels > 0).astype(np.float32) * 0.3}
        rel = f"overlays/{case.case_id}.png"
        if not gt_labels.any() and not pred.any():
            caption = f"{case.case_id}: no tumour in ground truth or prediction (a true negative)"
        else:
            caption = f"{case.case_id}: Dice WT {row['dice_WT']:.2f} TC {row['dice_TC']:.2f} ET {row['dice_ET']:.2f}"
        save_overlay(images, out_dir / rel, affine=reference.affine, pred=pred, gt=gt_labels, title=caption)
        overlays[case.case_id] = rel
    save_boxplot(rows, out_dir / "dice_boxplot.png")
    froc = None
    if "detection" in summary:
        from gliomask.viz.froc import save_froc

        save_froc(summary["detection"], out_dir / "froc.png")
        froc = "froc.png"
    provenance = {"predictions": str(Path(pred_dir).resolve()), "ground truth": str(Path(gt).resolve()),
                  "cases": len(rows), "checkpoint": _checkpoint_of(Path(pred_dir), [row["case"] for row in rows])}
    return write_report(out_dir, rows, summary, overlays=overlays, boxplot="dice_boxplot.png", froc=froc, title=title,
                        provenance=provenance)


def _checkpoint_of(pred_dir: Path, case_ids: list[str]) -> str:
    """The checkpoint(s) named in the predictions' lesion reports ("" when they do not say)."""
    import json

    names = set()
    for cid in case_ids:
        try:
            names.add(json.loads((pred_dir / f"{cid}_lesions.json").read_text()).get("checkpoint") or "")
        except (OSError, ValueError):
            continue
    return ", ".join(sorted(n for n in names if n))


REPORT_FILES = ("index.html", "dice_boxplot.png", "froc.png", "overlays")


def remove_report(out_dir: Path) -> list[str]:
    """Remove what `write_visual_report` writes into ``out_dir`` (an earlier run's report); returns the names."""
    import shutil

    removed = []
    for name in REPORT_FILES:
        path = Path(out_dir) / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        else:
            continue
        removed.append(name)
    return removed
