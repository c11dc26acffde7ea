"""A tiny end-to-end demo run (seconds of training, no quality claim) and its HTML report in a browser."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from conftest import run_cli


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo_out"
    result = run_cli("demo", "--out", out, "--cases", "4", "--test-cases", "1", "--minutes", "0.05", "--quiet",
                     "train.max_steps_per_epoch=3", "train.batch_size=2", "train.workers=0",
                     "infer.default_score_threshold=0.5")
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stdout


def test_demo_runs_end_to_end_and_prints_the_table(demo_dir):
    out, stdout = demo_dir
    for region in ("WT", "TC", "ET"):
        assert any(line.startswith(region) for line in stdout.splitlines()), stdout
    assert "Dice" in stdout and "HD95" in stdout and "lesion sens" in stdout and "wall time" in stdout
    for rel in ("evaluation/index.html", "evaluation/metrics.csv", "evaluation/summary.json", "run/best.pt",
                "run/curves.png", "prepared/prepared.json"):
        assert (out / rel).is_file(), rel
    segs = list((out / "predictions").glob("*_seg.nii.gz"))
    assert len(segs) == 1
    assert len(list((out / "predictions").glob("*_lesions.json"))) == 1
    assert str(out / "evaluation" / "index.html") in stdout
    again = run_cli("demo", "--out", out, "--cases", "4", "--quiet")
    assert again.returncode == 2 and "--fresh" in again.stderr


def _browser():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_demo_report_renders_in_headless_chromium(demo_dir, tmp_path):
    browser = _browser()
    if browser is None:
        if os.environ.get("GLIOMASK_REQUIRE_BROWSER"):
            pytest.fail("GLIOMASK_REQUIRE_BROWSER is set but no chromium is installed")
        pytest.skip("no chromium on this machine (CI installs it)")
    out, _ = demo_dir
    shot = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,3200",
                    f"--screenshot={shot}", (out / "evaluation" / "index.html").as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000
    import matplotlib.image as mpimg

    pixels = mpimg.imread(str(shot))[..., :3]
    assert pixels.shape[0] >= 1000
    # The page shows the metrics table and the overlay picture: dark image area and many distinct colours.
    assert (pixels.mean(axis=2) < 0.1).mean() > 0.02
    colours = np.unique((pixels[::4, ::4] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200
