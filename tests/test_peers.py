"""bench/peers.py end to end on two tiny synthetic cases: every installed system (gliomask, torchvision's default
Mask R-CNN, MONAI, nnU-Net 2d and 3d_fullres, with and without TTA, the FLAIR baseline) trains for a few seconds,
predicts the other case, and its label map comes back on the input's grid with BraTS label values."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from gliomask.data.synth import BRATS_AFFINE, synth_case, write_case

ROOT = Path(__file__).resolve().parent.parent


def _small_case(root: Path, index: int, edition: str) -> str:
    """A synthetic case cut to 80 x 80 x 40 voxels around its tumour inside a zero border (96 x 96 x 48
    voxels: skull-stripped images have background 0), with the BraTS affine shifted to the crop's corner."""
    images, seg = synth_case(index, 3, anatomy="simple")
    centre = np.argwhere(seg > 0).mean(0).astype(int) if seg.any() else np.array([120, 120, 70])
    size, border = np.array([80, 80, 40]), np.array([8, 8, 4])
    lo = np.clip(centre - size // 2, 0, np.array(seg.shape) - size)
    inner = tuple(slice(b, b + n) for b, n in zip(border, size))
    box = tuple(slice(a, a + n) for a, n in zip(lo, size))

    def cut(volume):
        out = np.zeros(tuple(size + 2 * border), volume.dtype)
        out[inner] = volume[box]
        return out

    affine = BRATS_AFFINE.copy()
    affine[:3, 3] = BRATS_AFFINE[:3, :3] @ (lo - border) + BRATS_AFFINE[:3, 3]
    case_id = f"BraTS19_SMALL_{index:03d}_1" if edition == "2019" else f"BraTS-GLI-{index:05d}-000"
    write_case(root / case_id, case_id, edition, {m: cut(v) for m, v in images.items()}, cut(seg))
    for path in (root / case_id).iterdir():  # write_case puts the BraTS affine; the crop has its own
        img = nib.load(str(path))
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj), affine, img.header), str(path))
    return case_id


def test_peers_bench_returns_label_maps_on_the_input_grid(tmp_path):
    train, test = tmp_path / "train", tmp_path / "test"
    _small_case(train, 2, "2019")
    case_id = _small_case(test, 4, "2023")  # 2023 names: enhancing comes back as 3
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "peers.py"), "--train", str(train), "--test", str(test),
                           "--minutes", "0.3", "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {row["system"]: row for row in json.loads((out / "peers.json").read_text())["rows"]}
    has_nnunet = importlib.util.find_spec("nnunetv2") is not None
    nnunet = {f"nnunet_{c}{v}" for c in ("2d", "3d_fullres") for v in ("", " noTTA")} if has_nnunet else \
        {"nnunet_2d", "nnunet_3d_fullres"}  # skipped: one row each
    assert set(rows) == {"gliomask", "maskrcnn_torchvision", "monai_segresnet", "flair_otsu"} | nnunet
    reference = nib.load(str(test / case_id / f"{case_id}-t2f.nii.gz"))
    needs = {"monai_segresnet": "monai", "nnunet": "nnunetv2"}
    for system, row in rows.items():
        module = needs.get(system.split("_")[0] if system.startswith("nnunet") else system)
        if module and importlib.util.find_spec(module) is None:
            assert "not installed" in row["skipped"]
            continue
        assert "failed" not in row and "skipped" not in row, row
        name, _, variant = system.partition(" ")
        folder = out / name / (f"pred_{variant}" if variant else "pred")
        img = nib.load(str(folder / f"{case_id}_seg.nii.gz"))
        assert img.shape == reference.shape and np.allclose(img.affine, reference.affine)
        assert set(np.unique(np.asarray(img.dataobj)).tolist()) <= {0, 1, 2, 3}
        assert 0.0 <= row["Dice WT"] <= 1.0 and row["peak RSS MB"] > 0
    assert rows["flair_otsu"]["Dice WT"] > 0.2  # the baseline finds the bright oedema


def _fold_table(path: Path, minutes: float, rows: list[dict]) -> Path:
    path.write_text(json.dumps({"meta": {"minutes": minutes, "test cases": [path.stem]}, "rows": rows}))
    return path


def test_summarize_averages_each_systems_latest_row_over_the_folds(tmp_path):
    fold_a = _fold_table(tmp_path / "a.json", 25, [
        {"system": "gliomask (old)", "Dice WT": 0.0, "predict s/case": 99.0},  # superseded by the rerun below
        {"system": "nnunet_2d", "Dice WT": 0.4, "predict s/case": 90.0},
        {"system": "gliomask (rerun)", "Dice WT": 0.8, "predict s/case": 10.0},
        {"system": "monai_segresnet", "skipped": "monai not installed"}])
    fold_b = _fold_table(tmp_path / "b.json", 25, [
        {"system": "gliomask", "Dice WT": 0.6, "predict s/case": 14.0},
        {"system": "nnunet_2d", "Dice WT": 0.5, "predict s/case": 100.0},
        {"system": "monai_segresnet", "Dice WT": 0.3, "predict s/case": 70.0}])
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "peers.py"), "--summarize", str(fold_a), str(fold_b),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {row["system"]: row for row in json.loads((out / "peers_summary.json").read_text())}
    assert set(rows) == {"gliomask", "nnunet_2d", "monai_segresnet"}
    assert rows["gliomask"]["folds"] == 2 and np.isclose(rows["gliomask"]["Dice WT"], 0.7)
    assert np.isclose(rows["gliomask"]["predict s/case"], 12.0)
    assert np.isclose(rows["nnunet_2d"]["Dice WT"], 0.45)
    assert rows["monai_segresnet"]["folds"] == 1 and np.isclose(rows["monai_segresnet"]["Dice WT"], 0.3)
    assert "gliomask" in done.stdout  # the table is printed too


def test_summarize_refuses_mixed_budgets_and_missing_files(tmp_path):
    row = [{"system": "gliomask", "Dice WT": 0.5}]
    short, long = _fold_table(tmp_path / "a.json", 25, row), _fold_table(tmp_path / "b.json", 60, row)
    script = [sys.executable, str(ROOT / "bench" / "peers.py"), "--summarize"]
    mixed = subprocess.run(script + [str(short), str(long)], capture_output=True, text=True, timeout=120)
    assert mixed.returncode == 2 and "different budgets" in mixed.stderr and "Traceback" not in mixed.stderr
    missing = subprocess.run(script + [str(short), str(tmp_path / "nope.json")], capture_output=True, text=True,
                             timeout=120)
    assert missing.returncode == 2 and "nope.json" in missing.stderr and "Traceback" not in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    bad = subprocess.run(script + [str(broken)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "broken.json" in bad.stderr and "Traceback" not in bad.stderr
