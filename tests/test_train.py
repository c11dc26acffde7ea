"""The training engine on real prepared synthetic data: learning, resume, torchrun DDP, logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from gliomask.models.checkpoint import load_checkpoint
from gliomask.config import load_config
from gliomask.engine.train import train

QUICK = ["train.workers=0", "train.batch_size=2", "train.threads=2", "train.val_every=1000",
         "infer.tta=false"]  # one pass: the flips are tested in test_predict_evaluate


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
            if json.loads(line)["type"] == "train"]


def test_short_run_lowers_the_loss_and_writes_the_run_folder(prepared, tmp_path):
    run = tmp_path / "run"
    cfg = load_config(None, QUICK + ["train.epochs=1", "train.max_steps_per_epoch=40", "train.log_every=1",
                                     "train.warmup_steps=10", "train.lr=0.01"])
    summary = train(prepared, run, cfg, fold=None, progress=False, command_line=["gliomask", "train", "test"])
    losses = _losses(run)
    assert len(losses) == 40
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.7 * first, (first, last)
    for name in ("config.yaml", "command.txt", "env.json", "metrics.jsonl", "curves.png", "last.pt", "best.pt", "summary.json",
                 "train.log"):
        assert (run / name).is_file(), name
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["max_steps_per_epoch"] == 40
    env = json.loads((run / "env.json").read_text())
    assert env["torch"] == torch.__version__
    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt["classes"] == ["WT"] and ckpt["scheme"] == "whole"  # lesions are the detected objects
    assert ckpt["context"] == 1  # 2.5-D: one neighbouring slice per side
    assert ckpt["provenance"]["train_cases"] and ckpt["provenance"]["fold"] is None
    assert ckpt["modalities"] == ["t1", "t1ce", "t2", "flair"]
    assert ckpt["label_convention"] == "brats2019" and ckpt["axis"] == "axial"
    assert summary["steps"] == 40
    log = (run / "train.log").read_text().splitlines()  # the printed status lines, for batch jobs
    assert any("epoch 0: step 40, loss" in line for line in log), log
    assert "trained 1 epochs, 40 steps" in log[-1] and str(run) in log[-1]


def test_a_gliomask_checkpoint_initialises_another_run_whole(prepared, tmp_path):
    """Pre-training then fine-tuning (bench/real.py --pretrain-minutes): model.weights=best.pt of an earlier
    run starts the next one from every tensor of it, running BatchNorm statistics included."""
    from gliomask.models import load_weights
    from gliomask.models.factory import input_channels, model_from_checkpoint, model_from_config

    first = tmp_path / "pretrained"
    train(prepared, first, load_config(None, QUICK + ["train.epochs=1", "train.max_steps_per_epoch=2"]), fold=None,
          progress=False)
    ckpt = load_checkpoint(first / "best.pt")
    trained, cfg = model_from_checkpoint(ckpt)
    fresh = model_from_config(cfg, len(ckpt["classes"]),
                              input_channels(len(ckpt["modalities"]), ckpt["context"], cfg.model.modality_flags))
    report = load_weights(fresh, first / "best.pt")
    assert not report.skipped and not report.missing and not report.unexpected and not report.inflated
    for key, value in trained.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    second = tmp_path / "fine_tuned"
    train(prepared, second, load_config(None, QUICK + ["train.epochs=1", "train.max_steps_per_epoch=1",
                                                       f"model.weights={first / 'best.pt'}"]), fold=None, progress=False)
    said = [line for line in (second / "train.log").read_text().splitlines() if " weights " in line]  # after a timestamp
    assert len(said) == 1 and f"loaded {len(report.loaded)} tensors" in said[0], said
    assert "not in the file" not in said[0] and "re-initialised" not in said[0]


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("workers", [0, 1])  # 1: a persistent DataLoader worker starts afresh on resume
def test_interrupted_run_resumes_exactly(prepared, tmp_path, workers):
    overrides = QUICK + ["train.epochs=3", "train.max_steps_per_epoch=3", "train.warmup_steps=2", "train.log_every=1",
                         f"train.workers={workers}"]
    whole = tmp_path / "whole"
    params_whole = {}
    train(prepared, whole, load_config(None, overrides), fold=None, progress=False,
          end_hook=lambda m: params_whole.update({k: v.clone() for k, v in m.state_dict().items()}))

    broken = tmp_path / "broken"

    def stop_after_first(epoch):
        if epoch == 0:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(prepared, broken, load_config(None, overrides), fold=None, progress=False, epoch_end_hook=stop_after_first)
    saved = load_checkpoint(broken / "last.pt")
    assert saved["epoch"] == 0
    (broken / ".last.pt.k2j4x9.tmp.pt").write_bytes(b"half a checkpoint")  # a kill during a save
    with open(broken / "metrics.jsonl", "a") as fh:  # a kill mid-epoch 1 after logging a step of it
        fh.write(json.dumps({"type": "train", "epoch": 1, "step": 4, "loss": 9.9}) + "\n")
    params_resumed = {}
    summary = train(prepared, broken, None, fold=None, resume=True, progress=False,
                    end_hook=lambda m: params_resumed.update({k: v.clone() for k, v in m.state_dict().items()}))
    assert summary["epochs_done"] == 3 and summary["steps"] == 9
    for key, value in params_whole.items():
        assert torch.equal(value, params_resumed[key]), key
    final = load_checkpoint(broken / "last.pt")
    whole_final = load_checkpoint(whole / "last.pt")
    for group_a, group_b in zip(final["optimizer"]["state"].values(), whole_final["optimizer"]["state"].values()):
        assert torch.equal(group_a["momentum_buffer"], group_b["momentum_buffer"])
    assert len((broken / "command.txt").read_text().splitlines()) == 2  # the resumed run adds its line
    assert not list(broken.glob(".*.tmp*"))  # the interrupted save's temporary file was cleaned
    steps = [json.loads(l)["step"] for l in (broken / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 10))  # resumed at step 4 of epoch 1, no step repeated


def test_sampler_pads_like_distributed_sampler_and_seeds_every_sample():
    from gliomask.engine.sampler import TumourBalancedSampler

    ranks = [TumourBalancedSampler([False, False, True], negative_share=0.3, seed=1, rank=r, world_size=5)
             for r in range(5)]
    draws = [list(s) for s in ranks]
    assert all(len(d) == len(r) == 1 for d, r in zip(draws, ranks))  # 3 slices over 5 ranks: one each
    assert {d[0][0] for d in draws} == {0, 1, 2}
    assert len({d[0][1] for d in draws}) == 5  # every sample its own augmentation seed
    assert draws == [list(s) for s in ranks]  # the same epoch draws the same again
    ranks[0].set_epoch(1)
    assert list(ranks[0])[0][1] != draws[0][0][1]


def test_logs_refuse_a_planted_symbolic_link(tmp_path):
    from gliomask.engine.logger import Logger
    from gliomask.io.atomic import append_text

    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    (tmp_path / "metrics.jsonl").symlink_to(target)
    (tmp_path / "command.txt").symlink_to(target)
    with pytest.raises(OSError):
        Logger(tmp_path, True, False).log({"type": "train", "epoch": 0, "step": 1})
    with pytest.raises(OSError):
        append_text(tmp_path / "command.txt", "gliomask train\n")
    assert target.read_text() == "precious\n"


def test_resume_refuses_other_model_settings(prepared, tmp_path):
    run = tmp_path / "run"
    train(prepared, run, load_config(None, QUICK + ["train.epochs=1", "train.max_steps_per_epoch=1"]), fold=None, progress=False)
    from gliomask.errors import GliomaskError

    with pytest.raises(GliomaskError, match="cannot change model settings"):
        train(prepared, run, None, fold=None, resume=True, overrides=["model.backbone=resnet18_fpn"], progress=False)
    with pytest.raises(GliomaskError, match="already holds a run"):
        train(prepared, run, load_config(None, QUICK), fold=None, progress=False)


DDP_WORKER = """
import sys, torch
from gliomask.config import load_config
from gliomask.engine.train import train
from gliomask.engine import distributed as d
prepared, run = sys.argv[1], sys.argv[2]
cfg = load_config(None, ["train.workers=0", "train.batch_size=2", "train.epochs=1", "train.max_steps_per_epoch=3",
                         "train.warmup_steps=1", "train.threads=1", "train.val_every=1", "train.log_every=1"])
def save(model):
    torch.save({k: v.detach() for k, v in model.named_parameters()}, f"{run}/rank{d.rank()}.pt")
# fold 0: the final validation is sharded over the ranks and the post-processing search gathers their figures
summary = train(prepared, run, cfg, fold=0, progress=False, end_hook=save)
assert summary["world_size"] == 2
torch.save({"validation": summary["validation"]["tuned"]}, f"{run}/summary_rank{d.rank()}.pt")
d.cleanup()
"""


def test_torchrun_two_processes_gloo_keep_identical_parameters(prepared, tmp_path):
    run = tmp_path / "ddp"
    run.mkdir()
    script = tmp_path / "worker.py"
    script.write_text(DDP_WORKER)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             str(script), str(prepared), str(run)], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    a = torch.load(run / "rank0.pt", weights_only=True)
    b = torch.load(run / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    start = load_checkpoint(run / "last.pt")
    assert start["epoch"] == 0
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines if l["type"] == "train"] == [1, 2, 3]  # rank 0 alone logs, with reduced losses
    assert [l["type"] for l in lines].count("val") == 1  # the final validation, on both ranks' shards
    # both ranks agree on the tuned figures (gathered), and the global batch sets the learning rate
    assert (torch.load(run / "summary_rank0.pt", weights_only=True) == torch.load(run / "summary_rank1.pt", weights_only=True))
    assert start["postprocessing"]["region_thresholds"]
    log = (run / "train.log").read_text()
    assert "global batch 4 (2 per process), learning rate 0.04 (0.02 x 2)" in log, log
    assert not any(torch.equal(a[k], torch.zeros_like(a[k])) for k in a if k.endswith("weight"))


def test_resume_is_exact_with_the_default_worker_and_validation(prepared, tmp_path):
    """Defaults: one persistent DataLoader worker, validation every epoch (val_share permitting) and the
    post-processing tuned at the end; an interrupted run resumed ends with the same weights and choices."""
    overrides = ["train.batch_size=2", "train.threads=2", "train.epochs=2", "train.max_steps_per_epoch=3",
                 "train.warmup_steps=2", "train.val_every=1", "train.val_share=1.0"]
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    params_whole, params_resumed = {}, {}
    train(prepared, whole, load_config(None, overrides), fold=0, progress=False,
          end_hook=lambda m: params_whole.update({k: v.clone() for k, v in m.state_dict().items()}))

    def stop_after_first(epoch):
        if epoch == 0:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(prepared, broken, load_config(None, overrides), fold=0, progress=False, epoch_end_hook=stop_after_first)
    train(prepared, broken, None, fold=0, resume=True, progress=False,
          end_hook=lambda m: params_resumed.update({k: v.clone() for k, v in m.state_dict().items()}))
    for key, value in params_whole.items():
        assert torch.equal(value, params_resumed[key]), key
    a, b = load_checkpoint(whole / "best.pt"), load_checkpoint(broken / "best.pt")
    assert a["postprocessing"] == b["postprocessing"] and a["config"] == b["config"]
    assert [r for r in _records(whole) if r["type"] == "val"] == [r for r in _records(broken) if r["type"] == "val"]


def _records(run: Path) -> list[dict]:
    drop = ("seconds", "elapsed", "tune_seconds")
    return [{k: v for k, v in json.loads(line).items() if k not in drop}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


ON_MAIN_WORKER = """
import os, sys
from pathlib import Path
import torch.distributed as dist
from gliomask.engine import distributed
from gliomask.errors import GliomaskError

dist.init_process_group("gloo")
rank = dist.get_rank()

def save():  # rank 0 alone writes, and its disk is full
    raise OSError(28, "No space left on device", "/run/last.pt")

try:
    distributed.on_main(save)
    outcome = "went on"
except (GliomaskError, OSError) as exc:
    outcome = f"{type(exc).__name__}: {exc}"
Path(sys.argv[1], f"rank{rank}.txt").write_text(outcome)
dist.destroy_process_group()
"""


def test_an_error_on_rank_0_reaches_every_rank(tmp_path):
    """Rank 0 fails while writing; rank 1 must stop with that error, not wait in the next collective."""
    script = tmp_path / "worker.py"
    script.write_text(ON_MAIN_WORKER)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             str(script), str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "rank0.txt").read_text().startswith("OSError")
    rank1 = (tmp_path / "rank1.txt").read_text()
    assert rank1.startswith("GliomaskError: rank 0 stopped") and "No space left on device" in rank1, rank1


def test_sigterm_saves_a_resumable_run_and_resume_continues_exactly(prepared, tmp_path):
    """How SLURM and Kubernetes preempt: SIGTERM to the training process (DataLoader worker on). It saves
    last.pt at the next step boundary, mid-epoch, says so in one line and exits 143; --resume then ends
    with the same weights as a run never stopped, and each step is logged once."""
    import signal
    import time

    settings = ["train.epochs=2", "train.max_steps_per_epoch=6", "train.batch_size=2", "train.threads=2",
                "train.workers=1", "train.warmup_steps=2", "train.log_every=1", "train.val_every=1000", "infer.tune=false"]

    def command(out: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "gliomask", "train", "--data", str(prepared), "--out", str(out), "--fold", "-1",
                "--quiet", *extra, *settings]

    whole = tmp_path / "whole"
    assert subprocess.run(command(whole), capture_output=True, text=True, timeout=600).returncode == 0
    run = tmp_path / "run"
    proc = subprocess.Popen(command(run), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 2:
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.02)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith("gliomask: stopped by SIGTERM at epoch 0, step ") and "--resume" in last_line, stderr
    saved = load_checkpoint(run / "last.pt")
    assert saved["partial_epoch"]["epoch"] == 0 and 2 <= saved["partial_epoch"]["steps_done"] < 6
    assert not (run / "best.pt").exists()
    resumed = subprocess.run(command(run, "--resume"), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = load_checkpoint(whole / "last.pt"), load_checkpoint(run / "last.pt")
    for key in a["train_model"]:
        assert torch.equal(a["train_model"][key], b["train_model"][key]), key
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps == list(range(1, 13))
