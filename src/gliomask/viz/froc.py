"""The FROC plot of an evaluation: lesion sensitivity against false positives per case, per region."""

from __future__ import annotations

from pathlib import Path

from gliomask.labels import REGION_NAMES
from gliomask.viz.figure import plt, save_figure
from gliomask.viz.palette import REGION_COLOURS as COLOURS


def save_froc(detection: dict, out_png: str | Path) -> Path:
    """``detection``: the evaluation summary's ``detection`` entry ({region: {"froc": {rate: sensitivity}}})."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for name in REGION_NAMES:
        froc = detection[name]["froc"]
        points = [(float(k), v) for k, v in froc.items() if k != "mean" and v is not None]
        if points:
            xs, ys = zip(*points)
            ap = detection[name]["ap_iou0.1"]
            ax.plot(xs, ys, marker="o", color=COLOURS[name],
                    label=f"{name} (AP@0.1 {'n/a' if ap is None else f'{ap:.2f}'})")
    ax.set_xscale("log", base=2)
    rates = sorted({float(k) for name in REGION_NAMES for k in detection[name]["froc"] if k != "mean"})
    ax.set_xticks(rates, [f"1/{round(1 / r)}" if r < 1 else f"{r:g}" for r in rates])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("false-positive lesions per case")
    ax.set_ylabel("lesion sensitivity")
    ax.set_title("FROC, lesion IoU >= 0.1", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return save_figure(fig, out_png, dpi=100)
