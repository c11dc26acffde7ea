"""Overlay pictures: FLAIR and T1ce with ground-truth and predicted region contours in three planes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from gliomask.labels import REGION_NAMES, regions_from_labels  # noqa: E402
from gliomask.viz.figure import save_figure  # noqa: E402

COLOURS = {"WT": "#2ecc40", "TC": "#ffdc00", "ET": "#ff4136"}
PLANES = (("axial", 2), ("coronal", 1), ("sagittal", 0))


def _best_index(labels: np.ndarray, axis: int) -> int:
    """The slice along ``axis`` with the most tumour (the middle one when there is none)."""
    other = tuple(a for a in range(3) if a != axis)
    counts = (labels > 0).sum(axis=other)
    return int(np.argmax(counts)) if counts.any() else labels.shape[axis] // 2


def _plane(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    # rot90 puts the first remaining axis horizontally, the second vertically, as radiology viewers do.
    return np.rot90(np.take(volume, index, axis=axis))


def save_overlay(images: dict[str, np.ndarray], out_png: str | Path, *, pred: np.ndarray | None = None,
                 gt: np.ndarray | None = None, title: str = "") -> Path:
    """Write a 2 x 3 grid (FLAIR, T1ce rows; axial, coronal, sagittal columns) with contours:
    ground truth solid, prediction dashed; WT green, TC yellow, ET red. Slices are those with the
    most tumour (ground truth first, else prediction). ``images`` Float [X, Y, Z] per modality."""
    focus = gt if gt is not None and gt.any() else (pred if pred is not None else next(iter(images.values())) * 0)
    rows = [m for m in ("flair", "t1ce") if m in images] or list(images)[:2]
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 3.2 * len(rows)), squeeze=False)
    for r, mod in enumerate(rows):
        vol = images[mod]
        lo, hi = np.percentile(vol[vol != 0], (1, 99)) if np.any(vol != 0) else (0, 1)
        for c, (plane, axis) in enumerate(PLANES):
            index = _best_index(focus, axis)
            ax = axes[r][c]
            ax.imshow(_plane(vol, axis, index), cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            for labels, style in ((gt, "solid"), (pred, "dashed")):
                if labels is None:
                    continue
                for name, region in zip(REGION_NAMES, regions_from_labels(labels)):
                    sl = _plane(region, axis, index)
                    if sl.any():
                        ax.contour(sl.astype(float), levels=[0.5], colors=COLOURS[name], linestyles=style, linewidths=1.0)
            ax.set_title(f"{mod.upper()} {plane} {index}", fontsize=8, color="white")
            ax.axis("off")
    handles = [Line2D([], [], color=COLOURS[n], label=n) for n in REGION_NAMES]
    if gt is not None:
        handles.append(Line2D([], [], color="white", linestyle="solid", label="ground truth"))
    if pred is not None:
        handles.append(Line2D([], [], color="white", linestyle="dashed", label="prediction"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, facecolor="#333", labelcolor="white")
    fig.suptitle(title, fontsize=10, color="white")
    fig.patch.set_facecolor("black")
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    return save_figure(fig, out_png, dpi=90, facecolor=fig.get_facecolor())


def save_boxplot(rows: list[dict], out_png: str | Path) -> Path:
    """Box plot of Dice per region across cases."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    data = [[row[f"dice_{n}"] for row in rows] for n in REGION_NAMES]
    ax.boxplot(data, tick_labels=list(REGION_NAMES))
    for i, values in enumerate(data, start=1):
        ax.scatter(np.full(len(values), i) + np.linspace(-0.08, 0.08, len(values)), values, s=10,
                   color=COLOURS[REGION_NAMES[i - 1]], zorder=3)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("Dice")
    ax.set_title("Dice per region across cases", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out_png, dpi=100)
