"""An index.html per run: the metrics table, the Dice box plot and each case's overlay."""

from __future__ import annotations

import html
from pathlib import Path

from gliomask.labels import REGION_NAMES
from gliomask.io.atomic import atomic_path

STYLE = """body{font-family:sans-serif;margin:24px;background:#fafafa;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#eee}td:first-child{text-align:left}img{max-width:100%;border:1px solid #ccc}
.case{margin:18px 0}"""


STANDARDS = {
    "brats2023": "BraTS 2023 standard: the official lesion-wise metrics code (HD95 by DeepMind surface-distance, "
                 "374 for an empty region, lesion-wise rules of BraTS-GLI).",
    "legacy": "Legacy BraTS 2018-2021 standard, as brats-evaluation computes it (HD95 of pooled surface distances "
              "in voxels, 373.13 for an empty region).",
}


def write_report(out_dir: str | Path, rows: list[dict], summary: dict, *, overlays: dict[str, str],
                 boxplot: str | None, froc: str | None = None, title: str = "gliomask evaluation") -> Path:
    """``overlays`` maps case id -> PNG path relative to ``out_dir``."""
    out_dir = Path(out_dir)
    head = "".join(f"<th>Dice {n}</th>" for n in REGION_NAMES) + "".join(f"<th>HD95 {n} (mm)</th>" for n in REGION_NAMES)
    head += "".join(f"<th>lesions {n} TP/FP/FN</th>" for n in REGION_NAMES)
    body = []
    for row in rows:
        cells = "".join(f"<td>{row[f'dice_{n}']:.3f}</td>" for n in REGION_NAMES)
        cells += "".join(f"<td>{row[f'hd95_{n}']:.2f}</td>" for n in REGION_NAMES)
        cells += "".join(f"<td>{row[f'tp_{n}']}/{row[f'fp_{n}']}/{row[f'fn_{n}']}</td>" for n in REGION_NAMES)
        body.append(f"<tr><td><a href='#{html.escape(row['case'])}'>{html.escape(row['case'])}</a></td>{cells}</tr>")
    means = "".join(f"<td>{summary[f'dice_{n}']['mean']:.3f}</td>" for n in REGION_NAMES)
    means += "".join(f"<td>{summary[f'hd95_{n}']['mean']:.2f}</td>" for n in REGION_NAMES)
    means += "".join(f"<td>sens {summary[f'lesion_sensitivity_{n}']:.2f}</td>" for n in REGION_NAMES)
    body.append(f"<tr><th>mean of {summary['cases']}</th>{means}</tr>")
    pictures = "".join(
        f"<div class='case' id='{html.escape(cid)}'><h3>{html.escape(cid)}</h3><img src='{html.escape(png)}' alt='{html.escape(cid)} overlay'></div>"
        for cid, png in overlays.items())
    box = f"<h2>Dice across cases</h2><img src='{html.escape(boxplot)}' alt='Dice box plot'>" if boxplot else ""
    if froc:
        det = summary["detection"]
        cells = "".join(f"<tr><td>{n}</td><td>{_num(det[n]['ap_iou0.1'])}</td>"
                        + "".join(f"<td>{_num(v)}</td>" for v in det[n]["froc"].values()) + "</tr>" for n in REGION_NAMES)
        rates = "".join(f"<th>sens @ {html.escape(k)}{' FP/case' if k != 'mean' else ''}</th>" for k in det[REGION_NAMES[0]]["froc"])
        box += (f"<h2>Lesion detection</h2><p>From each predicted lesion's detection score; a hit is lesion IoU &ge; 0.1.</p>"
                f"<table id='detection'><tr><th>region</th><th>AP@IoU0.1</th>{rates}</tr>{cells}</table>"
                f"<img src='{html.escape(froc)}' alt='FROC curve'>")
    standard = STANDARDS.get(summary.get("standard", "brats2023"), "")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body><h1>{html.escape(title)}</h1><p id='standard'>{html.escape(standard)}</p><h2>Metrics per case</h2><table id='metrics'><tr><th>case</th>{head}</tr>"
            f"{''.join(body)}</table>{box}<h2>Overlays</h2><p>Ground truth solid, prediction dashed; WT green, TC yellow, ET red.</p>"
            f"{pictures}</body></html>")
    path = out_dir / "index.html"
    with atomic_path(path) as tmp:
        tmp.write_text(page)
    return path


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
