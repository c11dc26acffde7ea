"""Shared fixtures: synthetic BraTS cases written to disk once per session."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
# The suite's "auto" device is the CPU, also on a GPU host (subprocesses inherit it): the bit-exact resume and
# ONNX comparisons hold on the CPU only. Tests marked ``gpu`` choose CUDA themselves (GLIOMASK_TEST_GPU=1).
os.environ["GLIOMASK_DEVICE"] = "cpu"


def pytest_collection_modifyitems(config, items):
    import torch

    if os.environ.get("GLIOMASK_TEST_GPU") == "1" and torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU and GLIOMASK_TEST_GPU=1")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

from gliomask.data.prepare import PrepareSettings, prepare  # noqa: E402
from gliomask.data.synth import BRATS_AFFINE, synthesize  # noqa: E402


@pytest.fixture(scope="session")
def brats2019(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("brats") / "MICCAI_BraTS_2019_Data_Training"
    # The geometric head: a 12-step model learns it, so the pipeline tests compare real predictions.
    # The MNI anatomy has its own tests (test_synth_anatomy.py) and the demo runs on it.
    synthesize(root, cases=5, seed=3, edition="2019", workers=2, anatomy="simple")
    return root


@pytest.fixture(scope="session")
def brats2023(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("brats23") / "BraTS2023_GLI"
    synthesize(root, cases=2, seed=3, edition="2023", workers=2, anatomy="simple")
    return root


@pytest.fixture(scope="session")
def prepared(brats2019, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prep") / "prepared"
    prepare(brats2019, out, PrepareSettings(folds=5, negative_fraction=0.2), workers=2, progress=False)
    return out


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m gliomask`` as a user would and capture its output."""
    return subprocess.run([sys.executable, "-m", "gliomask", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=900)


def expect_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit code 2, one stderr line holding every needle, no traceback; returns the line."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def write_small_case(folder: Path, case_id: str, *, shape=(40, 40, 24), affine=None, seed: int = 0,
                     sep: str = "_", names=("t1", "t1ce", "t2", "flair"), seg_labels=(0, 1, 2, 4)) -> Path:
    """A tiny, valid BraTS-named case for fast error-path tests."""
    rng = np.random.default_rng(seed)
    affine = BRATS_AFFINE if affine is None else affine
    folder = Path(folder) / case_id
    folder.mkdir(parents=True, exist_ok=True)
    brain = np.zeros(shape, bool)
    brain[5:-5, 5:-5, 3:-3] = True
    for name in names:
        data = np.where(brain, rng.integers(100, 1000, shape), 0).astype(np.int16)
        nib.save(nib.Nifti1Image(data, affine), str(folder / f"{case_id}{sep}{name}.nii.gz"))
    seg = np.zeros(shape, np.uint8)
    seg[15:25, 15:25, 8:14] = seg_labels[2]
    seg[18:22, 18:22, 10:12] = seg_labels[-1]
    nib.save(nib.Nifti1Image(seg, affine), str(folder / f"{case_id}{sep}seg.nii.gz"))
    return folder


def snapshot(*roots: Path) -> dict[str, str]:
    """Path -> content hash, 'dir' or 'link:<target>' for everything under ``roots``."""
    seen = {}
    for root in map(Path, roots):
        for p in [root, *sorted(root.rglob("*"))] if root.is_dir() and not root.is_symlink() else [root]:
            if p.is_symlink():
                seen[str(p)] = "link:" + os.readlink(p)
            elif p.is_dir():
                seen[str(p)] = "dir"
            elif p.exists():
                seen[str(p)] = hashlib.sha1(p.read_bytes()).hexdigest()
    return seen


def refused(capsys, argv, *needles, watch=()):
    """Run the CLI in this process (no torch import per call) and assert a clean refusal: exit code 2,
    one stderr line holding every needle, no traceback or warning, nothing under ``watch`` written or
    changed (inputs byte-identical). Returns the line."""
    from gliomask.cli import main

    before = snapshot(*watch)
    with warnings.catch_warnings(record=True) as shown:  # a warning is a line on the user's console too
        warnings.simplefilter("always")
        code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines() + [f"warning: {w.message}" for w in shown]
    assert code == 2, (code, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    after = snapshot(*watch)
    assert after == before, {k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)}
    return lines[0]
