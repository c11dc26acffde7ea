"""The visual report of an evaluation: overlays per case, a Dice box plot and index.html."""

from __future__ import annotations

from pathlib import Path

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
        images = {m: read_nifti(Path(case.images[m]))[1] for m in ("flair", "t1ce") if m in case.images}
        pred_path = find_prediction(Path(pred_dir), case.case_id)
        pred = read_labels(pred_path, case.convention)[1]
        gt_labels = read_labels(Path(case.seg), case.convention)[1]
        rel = f"overlays/{case.case_id}.png"
        save_overlay(images, out_dir / rel, pred=pred, gt=gt_labels,
                     title=f"{case.case_id}: Dice WT {row['dice_WT']:.2f} TC {row['dice_TC']:.2f} ET {row['dice_ET']:.2f}")
        overlays[case.case_id] = rel
    save_boxplot(rows, out_dir / "dice_boxplot.png")
    froc = None
    if "detection" in summary:
        from gliomask.viz.froc import save_froc

        save_froc(summary["detection"], out_dir / "froc.png")
        froc = "froc.png"
    return write_report(out_dir, rows, summary, overlays=overlays, boxplot="dice_boxplot.png", froc=froc, title=title)
