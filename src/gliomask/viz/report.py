"""HTML reports: ``index.html`` of an evaluation, and ``<case>_report.html`` of one predicted case.

Both open offline. The case report is self-contained (its picture is embedded); the evaluation report
links its pictures and data files, which sit beside it.
"""

from __future__ import annotations

import base64
import html
import time
from pathlib import Path

from gliomask import __version__
from gliomask.io.atomic import atomic_path
from gliomask.io.lesion_table import FRAME_TEXT, lesion_frame

STYLE = """body{font-family:sans-serif;margin:24px;background:#fafafa;color:#222;max-width:1500px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#eee}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #ccc}
.case{margin:18px 0}.note{font-size:13px;color:#444;max-width:60em}.prov td{text-align:left}"""

NOTICE = ("Research use only. gliomask is not a medical device and its output is not a diagnosis: the label "
          "maps, volumes and scores come from an automatic model and have not been checked by a radiologist.")

STANDARDS = {
    "brats2023": "BraTS 2023 standard: the official lesion-wise metrics code (HD95 by DeepMind surface-distance, "
                 "374 for an empty region, lesion-wise rules of BraTS-GLI).",
    "brats2024": "BraTS 2024 post-treatment standard: the official code for that year (WT and TC without the "
                 "resection cavity, NETC, SNFH, ET and the cavity RC scored on their own; lesions of at most 20 mm3, "
                 "10 for ET and RC, left out; lesions of one label joined by the other labels they touch).",
    "legacy": "Legacy BraTS 2018-2021 standard, as brats-evaluation computes it (HD95 of pooled surface distances "
              "in voxels, 373.13 for an empty region).",
}


def _num(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _esc(value) -> str:
    return html.escape(str(value))


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{_esc(title)}</title><style>{STYLE}</style>"
            f"</head><body><h1>{_esc(title)}</h1>{body}</body></html>")


def _provenance_table(provenance: dict) -> str:
    items = {"gliomask": __version__, "written": time.strftime("%Y-%m-%d %H:%M:%S %Z"), **provenance}
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in items.items() if v not in (None, ""))
    return f"<h2>Provenance</h2><table class='prov' id='provenance'>{rows}</table>"


def _write(path: Path, page: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(page)
    return path


# Per-case metric columns of the evaluation table: (row key pattern, header, digits).
CASE_COLUMNS = [("dice_{}", "Dice {}", 3), ("hd95_{}", "HD95 {} (mm)", 2), ("lesion_dice_{}", "lesion-wise Dice {}", 3),
                ("volume_gt_ml_{}", "volume {} truth (mL)", 1), ("volume_pred_ml_{}", "volume {} predicted (mL)", 1)]


def write_report(out_dir: str | Path, rows: list[dict], summary: dict, *, overlays: dict[str, str],
                 boxplot: str | None, froc: str | None = None, title: str = "gliomask evaluation",
                 provenance: dict | None = None) -> Path:
    """``index.html`` in ``out_dir``: metrics per case with mean and median rows, lesion detection,
    pictures, provenance. ``overlays`` maps case id -> PNG path relative to ``out_dir``."""
    out_dir = Path(out_dir)
    # the regions the standard scored (WT, TC, ET; BraTS 2024 adds NETC, SNFH, RC), in the rows' order
    names = [k[len("tp_"):] for k in (rows[0] if rows else {}) if k.startswith("tp_")]
    keys = [(pattern.format(n), header.format(n), digits) for pattern, header, digits in CASE_COLUMNS
            for n in names if pattern.format(n) in (rows[0] if rows else {})]
    head = "".join(f"<th>{_esc(h)}</th>" for _, h, _ in keys) + "".join(f"<th>lesions {n} TP/FP/FN</th>" for n in names)
    body = []
    for row in rows:
        cells = "".join(f"<td>{_num(row[k], d)}</td>" for k, _, d in keys)
        cells += "".join(f"<td>{row[f'tp_{n}']}/{row[f'fp_{n}']}/{row[f'fn_{n}']}</td>" for n in names)
        body.append(f"<tr><td><a href='#{_esc(row['case'])}'>{_esc(row['case'])}</a></td>{cells}</tr>")
    for stat in ("mean", "median"):
        cells = "".join(f"<td>{_num(summary[k][stat], d)}</td>" for k, _, d in keys)
        cells += "".join(f"<td>{_num(summary[f'tp_{n}'][stat], 1)}/{_num(summary[f'fp_{n}'][stat], 1)}/"
                         f"{_num(summary[f'fn_{n}'][stat], 1)}</td>" for n in names)
        body.append(f"<tr class='{stat}'><th>{stat} of {summary['cases']}</th>{cells}</tr>")
    lesions = "".join(f"<tr><td>{n}</td><td>{_num(summary[f'lesion_sensitivity_{n}'])}</td>"
                      f"<td>{_num(summary[f'fp_per_case_{n}'], 2)}</td></tr>" for n in names)
    parts = [f"<p class='note'>{_esc(NOTICE)}</p>",
             f"<p id='standard'>{_esc(STANDARDS.get(summary.get('standard', 'brats2023'), ''))}</p>",
             "<p>Data: <a href='metrics.csv'>metrics.csv</a> (one row per case), "
             "<a href='summary.json'>summary.json</a> (mean, median, quartiles of every metric).</p>",
             f"<h2>Metrics per case</h2><table id='metrics'><tr><th>case</th>{head}</tr>{''.join(body)}</table>",
             "<p class='note'>The median is the figure to read for HD95: a missed or spurious region scores "
             "373-374 mm and dominates the mean.</p>",
             "<h2>Lesions</h2><table id='lesions'><tr><th>region</th><th>lesion sensitivity</th>"
             f"<th>false-positive lesions per case</th></tr>{lesions}</table>"]
    if boxplot:
        parts.append(f"<h2>Dice across cases</h2><img src='{_esc(boxplot)}' alt='Dice box plot'>")
    if froc:
        det = summary["detection"]
        cells = "".join(f"<tr><td>{n}</td><td>{_num(det[n]['ap_iou0.1'])}</td>"
                        + "".join(f"<td>{_num(v)}</td>" for v in det[n]["froc"].values()) + "</tr>" for n in det)
        rates = "".join(f"<th>sens @ {_esc(k)}{' FP/case' if k != 'mean' else ''}</th>" for k in det[next(iter(det))]["froc"])
        parts.append(f"<h2>Lesion detection</h2><p>From each predicted lesion's detection score; a hit is lesion IoU &ge; 0.1.</p>"
                     f"<table id='detection'><tr><th>region</th><th>AP@IoU0.1</th>{rates}</tr>{cells}</table>"
                     f"<img src='{_esc(froc)}' alt='FROC curve'>")
    pictures = "".join(f"<div class='case' id='{_esc(cid)}'><h3>{_esc(cid)}</h3>"
                       f"<img src='{_esc(png)}' alt='{_esc(cid)} overlay'></div>" for cid, png in overlays.items())
    parts.append("<h2>Overlays</h2><p>Radiological view (patient right on screen left). One row per lesion, "
                 "largest first. Ground truth as a filled tint, prediction as contours; WT sky blue, TC yellow, ET vermillion, resection cavity (BraTS 2024) blue; "
                 "last column: false positive reddish purple, false negative bluish green.</p>" + pictures)
    parts.append(_provenance_table(provenance or {}))
    return _write(out_dir / "index.html", _page(title, "".join(parts)))


def write_case_report(path: str | Path, *, case_id: str, lesions: list[dict], totals: dict,
                      overlay_png: str | Path | None, provenance: dict) -> Path:
    """``<case>_report.html``: one self-contained page (picture embedded) on one predicted case."""
    frame = lesion_frame(lesions)
    volumes = (f"<table id='volumes'><tr><th>region</th><th>volume (mL)</th></tr>"
               f"<tr><td>whole tumour (WT)</td><td>{totals['volume_ml']:.2f}</td></tr>"
               f"<tr><td>tumour core (TC)</td><td>{totals['tumour_core_ml']:.2f}</td></tr>"
               f"<tr><td>enhancing tumour (ET)</td><td>{totals['enhancing_ml']:.2f}</td></tr>"
               f"<tr><td>necrotic / non-enhancing core</td><td>{totals['necrotic_nonenhancing_core_ml']:.2f}</td></tr>"
               f"<tr><td>oedema</td><td>{totals['oedema_ml']:.2f}</td></tr></table>")
    head = ("<tr><th>lesion</th><th>volume (mL)</th><th>TC (mL)</th><th>ET (mL)</th>"
            f"<th>centre x, y, z ({frame.upper()} mm)</th><th>slices</th><th>max score</th><th>mean probability</th></tr>")
    rows = "".join(
        f"<tr><td>{les['id']}</td><td>{les['volume_ml']:.2f}</td><td>{les['tumour_core_ml']:.2f}</td>"
        f"<td>{les['enhancing_ml']:.2f}</td><td>{les[f'centroid_x_{frame}_mm']:.1f}, {les[f'centroid_y_{frame}_mm']:.1f}, "
        f"{les[f'centroid_z_{frame}_mm']:.1f}</td><td>{les['first_slice']}-{les['last_slice']}</td>"
        f"<td>{_num(les.get('max_score'), 2)}</td><td>{_num(les.get('mean_probability'), 2)}</td></tr>" for les in lesions)
    table = f"<table id='lesion-table'>{head}{rows}</table>" if lesions else "<p id='lesion-table'>No lesion found.</p>"
    picture = ""
    if overlay_png is not None and Path(overlay_png).is_file():
        data = base64.b64encode(Path(overlay_png).read_bytes()).decode("ascii")
        picture = (f"<h2>Key images</h2><p>Radiological view (patient right on screen left), one row per lesion at "
                   f"its centre, largest first; WT sky blue, TC yellow, ET vermillion.</p>"
                   f"<img src='data:image/png;base64,{data}' alt='{_esc(case_id)} key images'>")
    what = ("<h2>What these numbers are</h2><p class='note'>Volumes count the voxels of each region in the "
            "predicted label map times the voxel volume from the file's affine. A lesion is a 26-connected part of "
            "the whole tumour. The score is the highest detection confidence of the model's slice detector on the "
            "lesion (0-1), not a probability of malignancy; the mean probability is the dense head's whole-tumour "
            f"probability averaged over the lesion. Positions: {_esc(FRAME_TEXT[frame])}. They are not measured "
            "by a radiologist, not RANO measurements, and depend on the model's training data (see provenance).</p>")
    body = (f"<p class='note'>{_esc(NOTICE)}</p><h2>Volumes</h2>{volumes}<h2>Lesions ({len(lesions)})</h2>{table}"
            f"{picture}{what}{_provenance_table(provenance)}")
    return _write(Path(path), _page(f"gliomask case report: {case_id}", body))
