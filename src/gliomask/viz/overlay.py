"""Overlay pictures in radiological convention: one row per lesion, FLAIR and T1ce in three planes,
ground truth as a filled tint and prediction as contours, and (with both) an error view.

Every panel is cut from the volume reoriented by its affine (:mod:`gliomask.viz.orientation`): the
patient's right on the screen's left in axial and coronal panels, letters on all four sides, a 5 cm
scale bar, pixels drawn at their physical aspect. Colours and line styles from :mod:`gliomask.viz.palette`.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import numpy as np  # noqa: E402
from matplotlib import patheffects  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from scipy import ndimage  # noqa: E402

from gliomask.utils import bounding_box  # noqa: E402
from gliomask.labels import (CAVITY_REGION, REGION_LABELS, REGION_NAMES, REGIONS, RESECTION_CAVITY, STRUCTURE_3D,  # noqa: E402
                             label_mask, regions_from_labels)

DRAWN = (*REGIONS, CAVITY_REGION)  # tumour regions, and the resection cavity where a map has one
from gliomask.viz.figure import save_figure  # noqa: E402
from gliomask.viz.orientation import LETTERS, PLANES, RAS_AXIS, RasVolume, pixel_spacing, plane_image  # noqa: E402
from gliomask.viz.palette import (ERROR_COLOURS, GROUND_TRUTH_ALPHA, PREDICTION_STYLE, REGION_COLOURS,  # noqa: E402
                                  REGION_WIDTHS, SERIES)

PANEL_INCHES = 2.5
DPI = 100  # with 6-7 panels per row: 1500-1750 px wide
SCALE_BAR_MM = 50.0
_OUTLINE = [patheffects.withStroke(linewidth=2.5, foreground="black")]


def lesion_centres(mask: np.ndarray, max_lesions: int) -> list[tuple[np.ndarray, int]]:
    """(centre voxel [3], voxel count) of the largest 26-connected components of ``mask``, largest first."""
    components, count = ndimage.label(mask, structure=STRUCTURE_3D)
    if count == 0:
        return []
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    order = np.argsort(-sizes[1:])[:max_lesions] + 1
    centres = ndimage.center_of_mass(mask, components, order)
    return [(np.rint(c).astype(int), int(sizes[i])) for c, i in zip(centres, order)]


def overlay_figure(images: dict[str, np.ndarray], affine: np.ndarray, *, pred: np.ndarray | None = None,
                   gt: np.ndarray | None = None, title: str = "", max_lesions: int = 3):
    """Build the overlay figure; returns (figure, panels), panels a list of dicts with ``row``, ``plane``,
    ``modality``, ``axes`` and ``letters`` (left, right, top, bottom), for callers that check the layout.

    ``images`` {modality: [X, Y, Z]} and ``pred`` / ``gt`` internal label maps on the grid of ``affine``.
    Rows: the largest lesions of ground truth and prediction together (at most ``max_lesions``), each
    at its own centre; a case without tumour gets one row at the volume's centre.
    """
    shape = next(iter(images.values())).shape
    ras = RasVolume(affine, shape)
    mods = [m for m in ("flair", "t1ce") if m in images] or list(images)[:2]
    vols = {m: ras(images[m]) for m in mods}
    gt_r = ras(gt) if gt is not None else None
    pred_r = ras(pred) if pred is not None else None
    union = np.zeros(vols[mods[0]].shape, bool)
    for labels in (gt_r, pred_r):
        if labels is not None:
            union |= labels > 0
    # Crop to the head (and any label) with a small margin: the picture shows the brain, not the field of view.
    shown = union | np.any([v != 0 for v in vols.values()], axis=0)
    box = bounding_box(shown, pad=4) or tuple(slice(0, n) for n in shown.shape)
    vols = {m: v[box] for m, v in vols.items()}
    gt_r = gt_r[box] if gt_r is not None else None
    pred_r = pred_r[box] if pred_r is not None else None
    union = union[box]
    voxel_ml = float(np.prod(ras.spacing)) / 1000.0
    rows = lesion_centres(union, max_lesions) or [(np.array(union.shape) // 2, 0)]
    error_view = gt_r is not None and pred_r is not None
    columns = [(m, p) for m in mods for p in PLANES] + ([("errors", "axial")] if error_view else [])
    fig, axes = plt.subplots(len(rows), len(columns), squeeze=False,
                             figsize=(PANEL_INCHES * len(columns), PANEL_INCHES * 1.35 * len(rows) + 0.9))
    fig.patch.set_facecolor("black")
    windows = {m: (np.percentile(v[v != 0], (1, 99)) if np.any(v != 0) else (0.0, 1.0)) for m, v in vols.items()}
    panels = []
    for r, (centre, voxels) in enumerate(rows):
        for c, (mod, plane) in enumerate(columns):
            ax = axes[r][c]
            index = int(np.clip(centre[RAS_AXIS[plane]], 0, union.shape[RAS_AXIS[plane]] - 1))
            base = mods[0] if mod == "errors" else mod
            row_sp, col_sp = pixel_spacing(ras.spacing, plane)
            lo, hi = windows[base]
            ax.imshow(plane_image(vols[base], plane, index), cmap="gray", vmin=lo, vmax=hi,
                      interpolation="nearest", aspect=row_sp / col_sp)
            if mod == "errors":
                _draw_errors(ax, gt_r, pred_r, plane, index)
            else:
                if gt_r is not None:
                    _draw_tint(ax, gt_r, plane, index)
                if pred_r is not None:
                    _draw_contours(ax, pred_r, plane, index, PREDICTION_STYLE)
            letters = LETTERS[plane]
            _letters_and_scale(ax, letters, col_sp)
            name = "WT errors" if mod == "errors" else mod.upper()
            point = np.array([b.start for b in box]) + centre
            point[RAS_AXIS[plane]] = index + box[RAS_AXIS[plane]].start
            where = ras.world(point)[RAS_AXIS[plane]]
            ax.set_title(f"{name} {plane}, {'xyz'[RAS_AXIS[plane]]} = {where:.0f} mm", fontsize=8, color="white", pad=2)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            panels.append({"row": r, "plane": plane, "modality": mod, "axes": ax, "letters": letters})
        volume = voxels * voxel_ml
        label = (f"lesion {r + 1}\n{volume:.1f} mL" if volume >= 0.1 else f"lesion {r + 1}\n< 0.1 mL") if voxels \
            else "no tumour in\nground truth\nor prediction"
        axes[r][0].set_ylabel(label, color="white", fontsize=9)
    cavity = any(lab is not None and np.any(lab == RESECTION_CAVITY) for lab in (gt_r, pred_r))
    handles = [Line2D([], [], color=REGION_COLOURS[n], linewidth=REGION_WIDTHS[n], label=n)
               for n in (*REGION_NAMES, *(["RC"] if cavity else []))]
    if gt is not None:
        handles.append(Patch(facecolor="white", alpha=GROUND_TRUTH_ALPHA + 0.2, label="ground truth (tint)"))
    if pred is not None:
        handles.append(Line2D([], [], color="white", linestyle=PREDICTION_STYLE, linewidth=2, label="prediction (contour)"))
    if error_view:
        handles += [Patch(color=colour, label=name) for name, colour in ERROR_COLOURS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, facecolor="#222",
               labelcolor="white", edgecolor="#555")
    fig.suptitle(f"{title}  (radiological view: patient right on screen left)" if title else
                 "radiological view: patient right on screen left", fontsize=10, color="white")
    fig.tight_layout(rect=(0, 0.5 / fig.get_figheight(), 1, 1 - 0.35 / fig.get_figheight()))
    return fig, panels


def _draw_contours(ax, labels_ras, plane, index, style) -> None:
    for (name, _), region in zip(DRAWN, regions_from_labels(labels_ras, DRAWN)):
        sl = plane_image(region, plane, index)
        if sl.any():
            ax.contour(sl.astype(float), levels=[0.5], colors=REGION_COLOURS[name], linestyles=[style],
                       linewidths=REGION_WIDTHS[name])


def _draw_tint(ax, labels_ras, plane, index) -> None:
    """Each region filled in its colour, WT first: the nested TC and ET tint over it, darker where nested."""
    for (name, _), region in zip(DRAWN, regions_from_labels(labels_ras, DRAWN)):
        mask = plane_image(region, plane, index)
        if mask.any():
            rgba = np.zeros(mask.shape + (4,))
            rgba[..., :3] = matplotlib.colors.to_rgb(REGION_COLOURS[name])
            rgba[..., 3] = mask * GROUND_TRUTH_ALPHA
            ax.imshow(rgba, interpolation="nearest", aspect=ax.get_aspect())


def _draw_errors(ax, gt_ras, pred_ras, plane, index) -> None:
    gt_wt = plane_image(label_mask(gt_ras, REGION_LABELS["WT"]), plane, index)  # tumour errors: a cavity is not tumour
    pred_wt = plane_image(label_mask(pred_ras, REGION_LABELS["WT"]), plane, index)
    for mask, name in ((pred_wt & ~gt_wt, "false positive"), (gt_wt & ~pred_wt, "false negative")):
        if mask.any():
            rgba = np.zeros(mask.shape + (4,))
            rgba[..., :3] = matplotlib.colors.to_rgb(ERROR_COLOURS[name])
            rgba[..., 3] = mask * 0.75
            ax.imshow(rgba, interpolation="nearest", aspect=ax.get_aspect())


def _letters_and_scale(ax, letters, col_spacing_mm) -> None:
    left, right, top, bottom = letters
    style = dict(color="#ffe14d", fontsize=9, fontweight="bold", transform=ax.transAxes, path_effects=_OUTLINE)
    ax.text(0.02, 0.5, left, ha="left", va="center", **style)
    ax.text(0.98, 0.5, right, ha="right", va="center", **style)
    ax.text(0.5, 0.98, top, ha="center", va="top", **style)
    ax.text(0.5, 0.02, bottom, ha="center", va="bottom", **style)
    x1, x0 = ax.get_xlim()[1], ax.get_xlim()[0]
    y_bottom = ax.get_ylim()[0]
    length = SCALE_BAR_MM / col_spacing_mm
    end = x1 - 0.04 * (x1 - x0)
    y = y_bottom - 0.06 * abs(ax.get_ylim()[0] - ax.get_ylim()[1])
    ax.plot([end - length, end], [y, y], color="white", linewidth=2.5, solid_capstyle="butt",
            path_effects=_OUTLINE)
    ax.text(end - length / 2, y - 0.02 * abs(ax.get_ylim()[0] - ax.get_ylim()[1]), "5 cm", color="white",
            fontsize=7, ha="center", va="bottom", path_effects=_OUTLINE)


def save_overlay(images: dict[str, np.ndarray], out_png: str | Path, *, affine: np.ndarray,
                 pred: np.ndarray | None = None, gt: np.ndarray | None = None, title: str = "",
                 max_lesions: int = 3) -> Path:
    """Write the overlay of :func:`overlay_figure` as a PNG (at least 1500 px wide)."""
    fig, _ = overlay_figure(images, affine, pred=pred, gt=gt, title=title, max_lesions=max_lesions)
    return save_figure(fig, out_png, dpi=DPI, facecolor=fig.get_facecolor())


def save_boxplot(rows: list[dict], out_png: str | Path) -> Path:
    """Box plot of Dice per region across cases."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    data = [[row[f"dice_{n}"] for row in rows] for n in REGION_NAMES]
    ax.boxplot(data, tick_labels=list(REGION_NAMES), medianprops={"color": SERIES[0]})
    for i, values in enumerate(data, start=1):
        ax.scatter(np.full(len(values), i) + np.linspace(-0.08, 0.08, len(values)), values, s=14,
                   color=REGION_COLOURS[REGION_NAMES[i - 1]], edgecolors=SERIES[0], linewidths=0.4, zorder=3)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("Dice")
    ax.set_title("Dice per region across cases", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out_png, dpi=100)
