"""What a GPU host, torchrun under SLURM and BraTS-sized data need, tested on the CPU where it can be."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gliomask.engine.run_state import restore_scaler, set_rng_state, rng_state
from gliomask.models.factory import resolve_device
from gliomask.utils import local_cuda_index


def test_the_suite_runs_on_the_cpu_even_where_cuda_is_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto").type == "cpu"  # conftest pins GLIOMASK_DEVICE=cpu for every test
    monkeypatch.delenv("GLIOMASK_DEVICE")
    assert resolve_device("auto") == torch.device("cuda")  # what a user's auto means on a GPU host


@pytest.mark.parametrize("visible,local_rank,expected", [(4, "3", 3), (1, "3", 0), (2, "3", 1), (0, "3", 0), (4, "", 0)])
def test_one_helper_picks_the_gpu_of_a_rank_with_one_or_many_visible(monkeypatch, visible, local_rank, expected):
    """SLURM's one GPU per task: every rank sees its GPU as device 0, whatever its LOCAL_RANK."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: visible)
    monkeypatch.setenv("LOCAL_RANK", local_rank)
    assert local_cuda_index() == expected
    if visible and local_rank:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        assert resolve_device("cuda") == torch.device("cuda", expected)


def test_a_run_saved_with_four_gpus_resumes_with_one(monkeypatch):
    saved = rng_state()
    saved["cuda"] = [torch.full((16,), i, dtype=torch.uint8) for i in range(4)]  # four GPUs' generators
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((int(state[0]), device)))
    set_rng_state(saved)
    assert restored == [(0, 0)]  # the one GPU there is gets the first rank-local state; no error for the others


def test_a_run_saved_without_amp_resumes_with_amp():
    scaler = torch.amp.GradScaler("cpu", enabled=True, init_scale=2.0 ** 10)
    with pytest.raises(RuntimeError):  # what train.py used to call: a CPU run's empty state fails
        scaler.load_state_dict({})
    restore_scaler(scaler, {})  # a fresh scale instead
    assert scaler.get_scale() == 2.0 ** 10
    other = torch.amp.GradScaler("cpu", enabled=True, init_scale=8.0)
    restore_scaler(scaler, other.state_dict())
    assert scaler.get_scale() == 8.0


FAKE_CASES = 1500
LOADER_SCRIPT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
import torch
from gliomask.data import dataset as ds
from gliomask.data.prepared import Prepared
from gliomask.errors import GliomaskError
prepared = Prepared.open(sys.argv[1])
if sys.argv[2] == "unbounded":
    ds.MAX_OPEN_CASES = 10 ** 6  # as before: every case stays open
data = ds.PreparedSlices(prepared, prepared.case_ids, context=1, scheme="whole", modality_flags=True)
# in this process (a worker opens the same maps; torch's tensor passing between processes would use
# descriptors of its own)
loader = torch.utils.data.DataLoader(data, batch_size=16, num_workers=0, collate_fn=ds.collate)
try:
    seen = sum(len(images) for images, _ in loader)
except GliomaskError as exc:
    print("ERROR", exc)
    raise SystemExit(0)
print("SLICES", seen)
"""


@pytest.fixture(scope="module")
def fake_brats_sized(tmp_path_factory) -> Path:
    """A prepared folder of 1,500 tiny cases (2 slices of 16 x 16 each), as `prepare` lays it out."""
    root = tmp_path_factory.mktemp("fake1500") / "prepared"
    (root / "cases").mkdir(parents=True)
    rng = np.random.default_rng(0)
    cases = []
    for i in range(FAKE_CASES):
        cid = f"FAKE_{i:05d}"
        img = rng.normal(size=(2, 4, 16, 16)).astype(np.float16)
        seg = np.zeros((2, 16, 16), np.uint8)
        seg[:, 4:10, 4:10] = 2
        np.save(root / "cases" / f"{cid}.img.npy", img)
        np.save(root / "cases" / f"{cid}.seg.npy", seg)
        cases.append({"case": cid, "slices": [0, 1], "group": None, "patient": cid})
    settings = {"modalities": ["t1", "t1ce", "t2", "flair"], "axis": "axial", "scheme": "regions", "min_area": 8,
                "negative_fraction": 0.25, "folds": 5, "seed": 0, "clip_percentiles": [0.5, 99.5], "crop_margin": 2}
    (root / "prepared.json").write_text(json.dumps({"format": 1, "settings": settings, "classes": ["WT", "TC", "ET"],
                                                    "cases": cases, "folds": [[c["case"] for c in cases[:300]]]}))
    return root


def _run_loader(prepared: Path, tmp_path: Path, mode: str) -> str:
    script = tmp_path / "loader.py"
    script.write_text(LOADER_SCRIPT)
    result = subprocess.run([sys.executable, str(script), str(prepared), mode], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_a_loader_over_1500_cases_stays_within_256_open_files(fake_brats_sized, tmp_path):
    assert f"SLICES {2 * FAKE_CASES}" in _run_loader(fake_brats_sized, tmp_path, "bounded")


def test_running_out_of_file_descriptors_says_so_instead_of_blaming_the_data(fake_brats_sized, tmp_path):
    out = _run_loader(fake_brats_sized, tmp_path, "unbounded")
    assert "too many open files (ulimit -n is 256)" in out and "unreadable" not in out, out


@pytest.mark.gpu
def test_prediction_on_cuda_with_amp_matches_fp32(prepared, brats2019, tmp_path):
    """On a GPU host (GLIOMASK_TEST_GPU=1): the same label maps with and without mixed precision."""
    from gliomask.config import load_config
    from gliomask.engine.train import train
    from gliomask.evaluation.metrics import dice
    from gliomask.inference.predictor import Predictor
    from gliomask.io.brats import discover_cases

    run = tmp_path / "run"
    train(prepared, run, load_config(None, ["train.device=cuda", "train.epochs=1", "train.max_steps_per_epoch=20",
                                            "infer.tune=false"]), fold=None, progress=False)
    case = discover_cases(brats2019)[0]
    fp32 = Predictor.from_checkpoint(run / "best.pt", device="cuda")
    fp32.cfg.train.amp = False
    amp = Predictor.from_checkpoint(run / "best.pt", device="cuda")
    a, b = fp32.predict_case(case), amp.predict_case(case)
    for r in range(3):
        assert dice(a.regions[r], b.regions[r]) >= 0.99


@pytest.mark.parametrize("requested,device,cpus,local,expected", [
    (None, "cpu", 16, "1", 1),  # the CPU recipe: the model step needs the cores
    (None, "cuda", 16, "1", 8),  # one GPU on a 16-core host: at most 8
    (None, "cuda", 16, "4", 3),  # four ranks share 16 cores: 4 each, one for the rank itself
    (None, "cuda", 2, "2", 1),  # never fewer than one
    (0, "cuda", 16, "1", 0),  # what the user set wins
])
def test_loader_workers_default_follows_the_device(monkeypatch, requested, device, cpus, local, expected):
    import gliomask.utils as utils

    monkeypatch.setattr(utils, "usable_cpus", lambda: cpus)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", local)
    assert utils.loader_workers(requested, device) == expected
