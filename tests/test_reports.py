"""What a researcher reads and looks at: radiological pictures whatever the voxel order on disk, numeric
lesion tables, and reports that render in a browser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import matplotlib.image as mpimg
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from gliomask.inference.lesions import lesion_report
from gliomask.io.lesion_table import case_totals, write_lesion_report
from gliomask.labels import ENHANCING, NECROTIC, OEDEMA
from gliomask.viz.overlay import DPI, overlay_figure, save_overlay
from gliomask.viz.report import write_case_report, write_report

# Patient position of the marker in a RAS+ grid of 64 x 60 x 30 voxels (1 x 1 x 2 mm): right, anterior, superior.
SHAPE_RAS = (64, 60, 30)
MARKER = (slice(50, 58), slice(44, 52), slice(20, 24))


def _ras_case():
    rng = np.random.default_rng(0)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in SHAPE_RAS], indexing="ij")
    head = (x ** 2 + y ** 2 + z ** 2) < 0.95
    image = np.where(head, rng.uniform(50, 100, SHAPE_RAS), 0).astype(np.float32)
    image[MARKER] = 1000.0
    labels = np.zeros(SHAPE_RAS, np.uint8)
    labels[MARKER] = OEDEMA
    labels[52:56, 46:50, 21:23] = ENHANCING
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    affine[:3, 3] = [-32, -30, -30]
    return image, labels, affine


def _stored(codes):
    """The RAS case stored in the voxel order ``codes`` (e.g. LPS as BraTS, or permuted axes)."""
    image, labels, affine = _ras_case()
    ornt = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"), nib.orientations.axcodes2ornt(codes))
    img = nib.Nifti1Image(image, affine).as_reoriented(ornt)
    lab = nib.Nifti1Image(labels, affine).as_reoriented(ornt)
    assert nib.aff2axcodes(img.affine) == tuple(codes)
    return np.asarray(img.dataobj), np.asarray(lab.dataobj), img.affine


def _marker_side(png_pixels, fig_height_px, panel):
    """Where the white marker lies in a panel of a saved figure: (column share, row share) in [0, 1]."""
    box = panel["axes"].get_window_extent()
    top = int(round(fig_height_px - box.y1))
    sub = png_pixels[top: top + int(box.height), int(box.x0): int(box.x0 + box.width)]
    upper = sub[: sub.shape[0] // 2 + sub.shape[0] // 4]  # the scale bar (also white) sits at the bottom
    white = np.argwhere(upper.min(axis=2) > 0.97)
    assert len(white) > 4, "marker not drawn"
    return white[:, 1].mean() / sub.shape[1], white[:, 0].mean() / sub.shape[0]


@pytest.mark.parametrize("codes", [("L", "P", "S"), ("R", "A", "S"), ("S", "L", "A"), ("P", "I", "R")])
def test_overlay_is_radiological_whatever_the_voxel_order(codes, tmp_path):
    image, labels, affine = _stored(codes)
    # prediction contours only: the ground truth's tint would colour the white marker it lies on
    fig, panels = overlay_figure({"flair": image, "t1ce": image}, affine, pred=labels, title="marker")
    fig.set_dpi(DPI)
    png = tmp_path / "overlay.png"
    fig.canvas.draw()
    fig.savefig(png, dpi=DPI, facecolor="black")
    pixels = mpimg.imread(str(png))[..., :3]
    assert pixels.shape[1] >= 1200  # at least 1200 px wide
    expected = {"axial": ("R", "L", "A", "P"), "coronal": ("R", "L", "S", "I"), "sagittal": ("A", "P", "S", "I")}
    for panel in panels:
        if panel["modality"] != "flair":
            continue
        plane = panel["plane"]
        assert panel["letters"] == expected[plane]
        texts = {t.get_text(): t.get_position() for t in panel["axes"].texts if len(t.get_text()) == 1}
        assert texts[expected[plane][0]][0] < 0.1 and texts[expected[plane][1]][0] > 0.9  # left / right letters
        assert texts[expected[plane][2]][1] > 0.9  # top letter
        col, row = _marker_side(pixels, pixels.shape[0], panel)
        # axial and coronal: the patient's right on the screen's left; sagittal: anterior on the left
        assert col < 0.5, (codes, plane, col)
        assert row < 0.5, (codes, plane, row)  # anterior (axial) / superior (coronal, sagittal) at the top
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_lesion_table_is_numeric_with_its_frame_and_totals(tmp_path):
    image, labels, affine = _stored(("L", "P", "S"))
    labels = labels.copy()
    labels[2:6, 2:6, 2:4] = NECROTIC  # a second, smaller lesion
    ras = lesion_report(labels, affine, None, scores=np.where(labels > 0, 0.9, 0.0).astype(np.float32))
    lps = lesion_report(labels, affine, None, frame="lps")
    assert len(ras) == 2 and ras[0]["volume_ml"] > ras[1]["volume_ml"]
    assert lps[0]["centroid_x_lps_mm"] == pytest.approx(-ras[0]["centroid_x_ras_mm"])
    assert lps[0]["centroid_y_lps_mm"] == pytest.approx(-ras[0]["centroid_y_ras_mm"])
    assert lps[0]["centroid_z_lps_mm"] == pytest.approx(ras[0]["centroid_z_ras_mm"])
    assert ras[0]["centroid_x_ras_mm"] > 0 and ras[0]["centroid_y_ras_mm"] > 0  # the marker: right, anterior
    assert ras[0]["bbox_x_min_ras_mm"] <= ras[0]["centroid_x_ras_mm"] <= ras[0]["bbox_x_max_ras_mm"]
    write_lesion_report(ras, tmp_path / "c_lesions.json", tmp_path / "c_lesions.csv", case_id="c")
    table = pd.read_csv(tmp_path / "c_lesions.csv")
    assert len(table) == 2
    assert all(pd.api.types.is_numeric_dtype(table[c]) for c in table.columns if not table[c].isna().all()), table.dtypes
    assert {"centroid_x_ras_mm", "bbox_k_max_voxel", "enhancing_ml", "necrotic_nonenhancing_core_ml"} <= set(table.columns)
    meta = json.loads((tmp_path / "c_lesions.json").read_text())
    assert meta["frame"] == "ras" and "RAS+" in meta["frame_description"]
    assert meta["totals"]["lesions"] == 2
    assert meta["totals"]["volume_ml"] == pytest.approx(sum(les["volume_ml"] for les in ras))
    assert meta["totals"]["enhancing_ml"] == pytest.approx(32 * 2 / 1000)  # 32 voxels of 2 mm3


def _browser():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _screenshot(browser, html_path, tmp_path, name):
    shot = tmp_path / f"{name}.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / ('profile_' + name)}", "--window-size=1400,1800",
                    f"--screenshot={shot}", html_path.as_uri()], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000
    return mpimg.imread(str(shot))[..., :3]


def test_case_and_evaluation_reports_render_in_headless_chromium(tmp_path):
    browser = _browser()
    if browser is None:
        if os.environ.get("GLIOMASK_REQUIRE_BROWSER"):
            pytest.fail("GLIOMASK_REQUIRE_BROWSER is set but no chromium is installed")
        pytest.skip("no chromium on this machine (CI installs it)")
    image, labels, affine = _stored(("L", "P", "S"))
    lesions = lesion_report(labels, affine, None, scores=np.where(labels > 0, 0.8, 0.0).astype(np.float32))
    overlay = save_overlay({"flair": image}, tmp_path / "case_overlay.png", affine=affine, pred=labels, title="case")
    case_html = write_case_report(tmp_path / "case_report.html", case_id="case", lesions=lesions,
                                  totals=case_totals(lesions), overlay_png=overlay, provenance={"checkpoint": "x.pt"})
    text = case_html.read_text()
    assert "data:image/png;base64," in text and "Research use only" in text and "not a medical device" in text
    assert "RAS+" in text and f"{lesions[0]['volume_ml']:.2f}" in text
    pixels = _screenshot(browser, case_html, tmp_path, "case")
    assert (pixels.mean(axis=2) < 0.1).mean() > 0.02  # the embedded picture (black background) is shown
    # the evaluation report: mean and median rows, links to the data, provenance
    row = {"case": "case", **{f"{m}_{n}": 1.0 for m in ("dice", "lesion_dice") for n in ("WT", "TC", "ET")},
           **{f"hd95_{n}": 0.0 for n in ("WT", "TC", "ET")},
           **{f"volume_{w}_ml_{n}": 0.3 for w in ("gt", "pred") for n in ("WT", "TC", "ET")},
           **{f"{k}_{n}": 1 if k == "tp" else 0 for k in ("tp", "fp", "fn") for n in ("WT", "TC", "ET")}}
    stats = {k: {"mean": v, "median": v} for k, v in row.items() if k != "case"}
    summary = {"cases": 1, "standard": "brats2023", **stats,
               **{f"lesion_sensitivity_{n}": 1.0 for n in ("WT", "TC", "ET")},
               **{f"fp_per_case_{n}": 0.0 for n in ("WT", "TC", "ET")}}
    save_overlay({"flair": image}, tmp_path / "ev" / "overlays" / "case.png", affine=affine, pred=labels, gt=labels)
    index = write_report(tmp_path / "ev", [row], summary, overlays={"case": "overlays/case.png"}, boxplot=None,
                         provenance={"predictions": "p"})
    page = index.read_text()
    for needle in ("median of 1", "mean of 1", "metrics.csv", "summary.json", "lesion-wise Dice WT", "provenance"):
        assert needle in page, needle
    pixels = _screenshot(browser, index, tmp_path, "evaluation")
    assert (pixels.mean(axis=2) < 0.1).mean() > 0.02
