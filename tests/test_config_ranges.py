"""Values a type check lets through but no run can use are refused with one line, before anything is written."""

from __future__ import annotations

import pytest

from conftest import run_cli
from gliomask.config import load_config
from gliomask.errors import GliomaskError


@pytest.mark.parametrize("override,needle", [
    ("train.lr=-0.1", "train.lr"), ("train.batch_size=0", "train.batch_size"), ("train.epochs=0", "train.epochs"),
    ("train.threads=-1", "train.threads"), ("train.val_share=1.5", "train.val_share"),
    ("train.ema_decay=1", "train.ema_decay"), ("infer.region_thresholds=[0.5, 2, 0.5]", "infer.region_thresholds"),
])
def test_out_of_range_values_are_refused(override, needle):
    with pytest.raises(GliomaskError, match=needle.replace(".", r"\.")):
        load_config(None, [override])


def test_defaults_and_shipped_configs_are_in_range():
    from pathlib import Path

    load_config(None, None)
    for path in (Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"):
        load_config(path, None)


def test_train_refuses_bad_settings_before_writing_the_run_folder(prepared, tmp_path):
    for override in ("train.lr=-0.1", "train.optimizer=rmsprop", "model.backbone=vgg", "model.weights=nowhere.pth"):
        run = tmp_path / "run"
        result = run_cli("train", "--data", prepared, "--out", run, "--quiet", override)
        assert result.returncode == 2, (override, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
        assert not run.exists(), override
    result = run_cli("train", "--data", prepared, "--out", tmp_path / "run", "--fold", "9", "--quiet")
    assert result.returncode == 2 and "fold 9" in result.stderr and not (tmp_path / "run").exists()


def test_an_output_path_that_is_a_file_is_one_line(prepared, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    result = run_cli("train", "--data", prepared, "--out", a_file, "--quiet")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and a_file.read_text() == "mine"
