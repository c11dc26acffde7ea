"""Every `gliomask` command line in the README runs as written, on synthetic BraTS data laid out at the
README's paths. Training lines get quick-run overrides appended (later overrides win), so that the
written command, its flags and its config file are what is checked, not a long schedule. `torchrun`
lines need several GPUs or hosts and are covered by the 2-process gloo run in test_train.py; `make`
and `pip` lines are what CI itself runs."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np

from conftest import run_cli
from gliomask.data.synth import synthesize

ROOT = Path(__file__).resolve().parents[1]
QUICK_TRAIN = ["train.epochs=2", "train.max_steps_per_epoch=2", "train.batch_size=2", "train.workers=0",
               "train.warmup_steps=1", "infer.default_score_threshold=0.5", "infer.tta=false"]  # one pass: the flips are tested in test_predict_evaluate


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #")[0].strip() if not line.strip().startswith("#") else ""
            if line.startswith("gliomask "):
                commands.append(line)
    return commands


def test_readme_lists_the_two_setup_commands_first():
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1)
    assert [ln.split("#")[0].strip() for ln in first_block.strip().splitlines()] == ["make demo", "make test"]


def test_every_gliomask_command_in_the_readme_runs(tmp_path, brats2019):
    commands = readme_commands()
    assert len(commands) >= 8
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "MICCAI_BraTS_2019_Data_Training").symlink_to(brats2019, target_is_directory=True)
    validation = tmp_path / "data" / "MICCAI_BraTS_2019_Data_Validation"
    synthesize(validation, cases=1, seed=42, start=500, anatomy="simple")
    for seg in validation.rglob("*_seg.nii.gz"):
        seg.unlink()  # validation cases come without labels
    for path in validation.rglob("*.nii.gz"):  # a block of the head: three predictions of it take seconds, not minutes
        img = nib.load(str(path))
        block = np.asarray(img.dataobj)[60:156, 50:146, 40:88].copy()
        for axis in range(3):  # skull-stripped input has a zero background at the faces
            np.moveaxis(block, axis, 0)[[0, -1]] = 0
        nib.save(nib.Nifti1Image(block, img.affine, img.header), str(path))
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    for command in commands:
        args = shlex.split(command)[1:]
        if args[0] == "train":
            args += QUICK_TRAIN
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 0, f"{command}\n{result.stderr[-2000:]}"
    assert (tmp_path / "predictions" / "validation").is_dir()
    assert (tmp_path / "evaluation" / "fold0" / "index.html").is_file()
    assert (tmp_path / "runs" / "fold0" / "best.pt").is_file()
