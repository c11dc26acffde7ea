"""Bad input to `gliomask prepare`: one line naming the file and the problem, exit code 2,
no traceback, no output folder, inputs untouched."""

from __future__ import annotations

import gzip
import shutil

import nibabel as nib
import numpy as np

from conftest import run_cli, write_small_case
from gliomask.data.synth import BRATS_AFFINE


def _expect_error(root, out, *needles, extra=()):
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    result = run_cli("prepare", "--brats", root, "--out", out, "--folds", "1", "--quiet", *extra)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    return lines[0]


def _case(tmp_path, **kw):
    root = tmp_path / "brats"
    folder = write_small_case(root, "BraTS19_X_001_1", **kw)
    return root, folder


def test_small_valid_case_prepares(tmp_path):
    root, _ = _case(tmp_path)
    result = run_cli("prepare", "--brats", root, "--out", tmp_path / "out", "--folds", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "prepared.json").is_file()


def test_corrupt_gzip(tmp_path):
    root, folder = _case(tmp_path)
    path = folder / "BraTS19_X_001_1_t2.nii.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    line = _expect_error(root, tmp_path / "out", str(path), "cannot read NIfTI")
    assert not (tmp_path / "out").exists(), line


def test_missing_modality(tmp_path):
    root, folder = _case(tmp_path)
    (folder / "BraTS19_X_001_1_t1ce.nii.gz").unlink()
    _expect_error(root, tmp_path / "out", "missing modality t1ce", "BraTS19_X_001_1_t1ce.nii.gz")
    assert not (tmp_path / "out").exists()


def test_missing_modality_not_requested_is_fine(tmp_path):
    root, folder = _case(tmp_path)
    (folder / "BraTS19_X_001_1_t1.nii.gz").unlink()
    result = run_cli("prepare", "--brats", root, "--out", tmp_path / "out", "--folds", "1", "--quiet",
                     "--modalities", "flair,t1ce")
    assert result.returncode == 0, result.stderr


def test_shape_mismatch(tmp_path):
    root, folder = _case(tmp_path)
    path = folder / "BraTS19_X_001_1_flair.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((40, 40, 23), np.int16), BRATS_AFFINE), str(path))
    _expect_error(root, tmp_path / "out", str(path), "shape (40, 40, 23)")
    assert not (tmp_path / "out").exists()


def test_affine_mismatch(tmp_path):
    root, folder = _case(tmp_path)
    path = folder / "BraTS19_X_001_1_t2.nii.gz"
    img = nib.load(str(path))
    shifted = img.affine.copy()
    shifted[0, 3] += 5
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), shifted), str(path))
    _expect_error(root, tmp_path / "out", str(path), "affine differs")
    assert not (tmp_path / "out").exists()


def test_nan_in_image(tmp_path):
    root, folder = _case(tmp_path)
    path = folder / "BraTS19_X_001_1_flair.nii.gz"
    data = np.asarray(nib.load(str(path)).dataobj).astype(np.float32)
    data[20, 20, 10] = np.nan
    nib.save(nib.Nifti1Image(data, BRATS_AFFINE), str(path))
    _expect_error(root, tmp_path / "out", str(path), "NaN")
    assert not (tmp_path / "out").exists()


def test_label_3_in_2019_named_case(tmp_path):
    root, folder = _case(tmp_path, seg_labels=(0, 1, 2, 3))
    _expect_error(root, tmp_path / "out", "BraTS19_X_001_1_seg.nii.gz", "unknown label(s) [3]", "brats2019")
    assert not (tmp_path / "out").exists()


def test_4d_image(tmp_path):
    root, folder = _case(tmp_path)
    path = folder / "BraTS19_X_001_1_t1.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((40, 40, 24, 2), np.int16), BRATS_AFFINE), str(path))
    _expect_error(root, tmp_path / "out", str(path), "3-D")
    assert not (tmp_path / "out").exists()


def test_empty_folder(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    _expect_error(root, tmp_path / "out", str(root), "no BraTS cases found")
    assert not (tmp_path / "out").exists()


def test_output_holds_a_different_preparation(tmp_path):
    root, _ = _case(tmp_path)
    out = tmp_path / "out"
    assert run_cli("prepare", "--brats", root, "--out", out, "--folds", "1", "--quiet").returncode == 0
    before = (out / "prepared.json").read_text()
    _expect_error(root, out, str(out), "different preparation", extra=("--negatives", "0.5"))
    assert (out / "prepared.json").read_text() == before


def test_failure_in_a_later_case_leaves_no_partial_output(tmp_path):
    root = tmp_path / "brats"
    write_small_case(root, "BraTS19_X_001_1")
    folder = write_small_case(root, "BraTS19_X_002_1")
    bad = folder / "BraTS19_X_002_1_t1.nii.gz"
    bad.write_bytes(gzip.compress(b"not a nifti at all"))
    _expect_error(root, tmp_path / "out", str(bad))
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_manifest_csv(tmp_path):
    root, folder = _case(tmp_path)
    other = tmp_path / "mine"
    shutil.copytree(folder, other)
    lines = ["case,t1,t1ce,t2,flair,seg"]
    names = [f"BraTS19_X_001_1_{m}.nii.gz" for m in ("t1", "t1ce", "t2", "flair", "seg")]
    lines.append("patient7," + ",".join(f"mine/{n}" for n in names))
    (tmp_path / "cases.csv").write_text("\n".join(lines) + "\n")
    result = run_cli("prepare", "--brats", tmp_path / "cases.csv", "--out", tmp_path / "out", "--folds", "1", "--quiet")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "cases" / "patient7.img.npy").is_file()
