"""What `gliomask compare` writes: ``compare.json``, ``compare.csv`` (one row per lesion track and
timepoint), ``compare.html`` with every track side by side over time (same position, same field of
view) and, from three timepoints on, ``volumes.png`` (volume over time per track)."""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

import numpy as np

from gliomask.io.atomic import atomic_output_dir
from gliomask.labels import CAVITY_REGION, REGIONS, RESECTION_CAVITY, label_mask
from gliomask.viz.palette import REGION_COLOURS, REGION_WIDTHS

CSV_FIELDS = ("track", "timepoint", "name", "present", "wt_ml", "tc_ml", "et_ml", "necrosis_ml", "oedema_ml",
              "product_mm2", "measurable", "wt_change_from_baseline_ml", "wt_change_from_baseline_pct",
              "wt_change_from_nadir_ml", "wt_change_from_nadir_pct")
CONTOURS = dict([*REGIONS, CAVITY_REGION])  # name -> labels; drawn in the palette of every gliomask picture


def write_outputs(out: Path, report: dict, labels: list[np.ndarray], scans: list[np.ndarray | None],
                  affine: np.ndarray, components: list[np.ndarray]) -> Path:
    """Write every output into ``out`` (a new folder, written atomically); the arguments are what
    `gliomask.followup.compare.compare` returned, and the first grid's affine."""
    names = [tp["name"] for tp in report["timepoints"]]
    with atomic_output_dir(Path(out)) as tmp:
        (tmp / "compare.json").write_text(json.dumps(report, indent=1))
        with open(tmp / "compare.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            for track, rows in report["tracks"].items():
                for row in rows:
                    writer.writerow({"track": track, "name": names[row["timepoint"]], **row})
        pictures = {track: _track_picture(tmp / f"lesion_{track.replace('+', '_')}.png", track, report, labels, scans,
                                          affine, names, components) for track in report["tracks"]}
        plot = _volume_plot(tmp / "volumes.png", report, names) if len(names) >= 3 else None
        (tmp / "compare.html").write_text(_page(report, pictures, plot, names))
    return Path(out)


def _track_mask(report: dict, labels: list[np.ndarray], track: str, t: int, components: list[np.ndarray]) -> np.ndarray:
    ids = [les["component"] for les in report["timepoints"][t]["lesions"] if les["track"] == track]
    return np.isin(components[t], ids) if ids else np.zeros(labels[t].shape, bool)


def _track_picture(path: Path, track: str, report: dict, labels, scans, affine, names, components) -> str:
    """One row of panels: the track's axial slice of largest extent, one window, every timepoint."""
    from gliomask.viz.figure import plt, save_figure
    from gliomask.viz.orientation import RasVolume, plane_image

    masks = [_track_mask(report, labels, track, t, components) for t in range(len(labels))]
    ras = RasVolume(affine, labels[0].shape)
    union = ras(np.logical_or.reduce(masks))
    z = int(np.argmax(union.sum(axis=(0, 1))))
    rows, cols = np.nonzero(plane_image(union, "axial", z))
    margin = 20
    r0, r1 = max(rows.min() - margin, 0), rows.max() + margin + 1
    c0, c1 = max(cols.min() - margin, 0), cols.max() + margin + 1
    fig, axes = plt.subplots(1, len(labels), figsize=(3.2 * len(labels), 3.5), squeeze=False)
    for t, ax in enumerate(axes[0]):
        lab = plane_image(ras(labels[t]), "axial", z)[r0:r1, c0:c1]
        if scans[t] is not None:
            img = plane_image(ras(scans[t]), "axial", z)[r0:r1, c0:c1]
            inside = img[img > 0]
            lo, hi = np.percentile(inside, [1, 99]) if inside.size else (0, 1)
            ax.imshow(img, cmap="gray", vmin=lo, vmax=max(hi, lo + 1e-6), interpolation="nearest")
        else:
            ax.imshow(np.zeros(lab.shape), cmap="gray", vmin=0, vmax=1)
        for name, values in CONTOURS.items():
            region = label_mask(lab, values)
            if region.any():
                ax.contour(region.astype(float), levels=[0.5], colors=[REGION_COLOURS[name]], linewidths=REGION_WIDTHS[name] * 0.6)
        rows_t = [r for r in report["tracks"][track] if r["timepoint"] == t][0]
        ax.set_title(f"{names[t]}\n{track}: WT {rows_t['wt_ml']:.1f} mL, ET {rows_t['et_ml']:.1f} mL", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"lesion {track}: axial slice {z} (RAS), same field of view at every timepoint; contours WT sky "
                 "blue, TC yellow, ET vermillion" + (", resection cavity blue" if any(np.any(lab == RESECTION_CAVITY)
                                                                                     for lab in labels) else ""), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.93))  # room for the title above the panels' own
    save_figure(fig, path, dpi=110)
    return path.name


def _volume_plot(path: Path, report: dict, names: list[str]) -> str:
    from gliomask.viz.figure import plt, save_figure

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    x = np.arange(len(names))
    for track, rows in report["tracks"].items():
        first = min(r["timepoint"] for r in rows if r["present"])  # before it appears a lesion has no volume to draw
        a.plot(x, [r["wt_ml"] if r["timepoint"] >= first else np.nan for r in rows], marker="o", label=track)
        b.plot(x, [r["et_ml"] if r["timepoint"] >= first else np.nan for r in rows], marker="o", label=track)
    for ax, title in ((a, "whole tumour (mL)"), (b, "enhancing tumour (mL)")):
        ax.set_xticks(x, [f"t{i}" for i in x])
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    a.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path.name


def _page(report: dict, pictures: dict[str, str], plot: str | None, names: list[str]) -> str:
    e = html.escape
    out = io.StringIO()
    out.write("<!doctype html><meta charset=utf-8><title>gliomask compare</title><style>body{font-family:sans-serif;"
              "margin:24px;max-width:1400px}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
              "padding:3px 8px}th{background:#eee}.note{color:#444;font-size:13px;max-width:60em}</style>")
    out.write(f"<h1>Follow-up: {e(', '.join(names))}</h1>")
    out.write(f"<p class=note>Response: {e(report['response_is'])}. Research use only; not a diagnosis.</p>")
    out.write("<h2>Response per follow-up</h2><table><tr><th>follow-up</th><th>new</th><th>resolved</th>"
              "<th>bidimensional (RANO 2.0)</th><th>volumetric</th></tr>")
    for f in report["followups"]:
        cells = [f["name"], ", ".join(f["new"]) or "-", ", ".join(f["resolved"]) or "-"]
        cells += [f"{f[k]['category']}: {f[k]['because']}" for k in ("bidimensional", "volumetric")]
        out.write("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
    out.write("</table><h2>Alignment</h2><ul>")
    for a in report["alignment"]:
        extra = (f": rotation {a['rotation_deg']} degrees, translation {a['translation_mm_lps']} mm (LPS), correlation "
                 f"{a['correlation_headers_only']} from the headers, {a['correlation_registered']} registered"
                 if a["how"] == "registered" else "")
        out.write(f"<li>{e(a['timepoint'])}: {e(a['how'])}{e(extra)}</li>")
    out.write("</ul>")
    if plot:
        out.write(f"<h2>Volumes over time</h2><img src='{e(plot)}'>")
    out.write("<h2>Lesions</h2>")
    for track, rows in report["tracks"].items():
        out.write(f"<h3>{e(track)}</h3><img src='{e(pictures[track])}'><table><tr>"
                  + "".join(f"<th>{e(c)}</th>" for c in CSV_FIELDS[1:]) + "</tr>")
        for r in rows:
            out.write("<tr>" + "".join(f"<td>{e(str(names[r['timepoint']] if c == 'name' else r.get(c, '')))}</td>"
                                       for c in CSV_FIELDS[1:]) + "</tr>")
        out.write("</table>")
    return out.getvalue()

