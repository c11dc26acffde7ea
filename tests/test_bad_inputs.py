"""Every input of ``../shared/notes/bad_inputs_0.1.md`` that 0.1.0 did not refuse cleanly, one test each.

Refused cleanly: exit code 2, one line on stderr naming the file or option, no traceback, nothing
written anywhere under the test's folder (the escapes aim inside it, so the snapshot sees them), and
every input byte-identical. The CLI runs in this process (``gliomask.cli.main``) to spare a torch
import per case; the read-only and full-disk cases need a real file system and run as a subprocess
in a private mount namespace.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from conftest import refused, snapshot, write_small_case
from gliomask.cli import main

MODS = ("t1", "t1ce", "t2", "flair")


def manifest(path: Path, rows: dict[str, Path], columns=(*MODS, "seg"), sep="_") -> Path:
    lines = ["case," + ",".join(columns)]
    for case_id, folder in rows.items():
        name = folder.name
        lines.append(case_id + "," + ",".join(str(folder / f"{name}{sep}{c}.nii.gz") for c in columns))
    path.write_text("\n".join(lines) + "\n")
    return path


class Evil:
    """Unpickling this runs a command: a loader that is not weights-only would create MARKER."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def small_prepared(tmp_path_factory) -> Path:
    """Four tiny cases, prepared into two folds."""
    from gliomask.data.prepare import PrepareSettings, prepare

    root = tmp_path_factory.mktemp("bad_inputs")
    for k in range(4):
        write_small_case(root / "data", f"C{k}", seed=k)
    prepare(root / "data", root / "prepared", PrepareSettings(folds=2), progress=False)
    return root / "prepared"


@pytest.fixture(scope="module")
def tiny_checkpoint(prepared, tmp_path_factory) -> Path:
    """One training step on the shared synthetic preparation: a real checkpoint, quickly."""
    from gliomask.config import load_config
    from gliomask.engine.train import train

    run = tmp_path_factory.mktemp("bad_inputs_run") / "run"
    cfg = load_config(None, ["train.workers=0", "train.batch_size=1", "train.epochs=1", "train.max_steps_per_epoch=1",
                             "train.warmup_steps=1", "infer.tune=false", "infer.tta=false"])  # one pass
    train(prepared, run, cfg, fold=None, progress=False)
    return run / "best.pt"


def copy_prepared(source: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "prepared"
    shutil.copytree(source, copy)
    return copy


# ---------------------------------------------------------------------------------------------- prepare

def test_P17_a_dataset_without_any_tumour_is_refused(tmp_path, capsys):
    for k in range(2):
        write_small_case(tmp_path / "data", f"C{k}", seg_labels=(0, 0, 0, 0))
    refused(capsys, ["prepare", "--brats", tmp_path / "data", "--out", tmp_path / "out", "--quiet"],
            "data", "no case has any tumour", watch=[tmp_path])


def test_prepare_refuses_a_case_whose_files_look_swapped_beside_the_others(tmp_path, capsys):
    from gliomask.data.synth import synthesize

    data = tmp_path / "data"
    synthesize(data, cases=4, seed=3, edition="2019", workers=1, anatomy="simple")
    case = sorted(p for p in data.glob("*/*") if p.is_dir())[1]
    t1, t2 = (case / f"{case.name}_{m}.nii.gz" for m in ("t1", "t2"))
    t1_bytes = t1.read_bytes()
    t1.write_bytes(t2.read_bytes())
    t2.write_bytes(t1_bytes)
    line = refused(capsys, ["prepare", "--brats", data, "--out", tmp_path / "out", "--quiet"],
                   "are the t1 and t2 files swapped?", watch=[tmp_path])
    assert case.name in line


def test_P18_a_nii_beside_a_nii_gz_is_refused(tmp_path, capsys):
    folder = write_small_case(tmp_path / "data", "C1")
    nib.save(nib.Nifti1Image(np.zeros((40, 40, 24), np.int16), np.eye(4)), str(folder / "C1_flair.nii"))
    refused(capsys, ["prepare", "--brats", tmp_path / "data", "--out", tmp_path / "out", "--quiet"],
            "C1_flair.nii.gz", "C1_flair.nii ", "keep one", watch=[tmp_path])


def test_P21_prepare_out_that_is_a_file(tmp_path, capsys):
    write_small_case(tmp_path / "data", "C1")
    (tmp_path / "a_file").write_text("mine")
    refused(capsys, ["prepare", "--brats", tmp_path / "data", "--out", tmp_path / "a_file", "--quiet"],
            "a_file", watch=[tmp_path])


@pytest.mark.parametrize("bad_id", ["../../escaped_case", "ABSOLUTE", "..", "a\\b"])
def test_P27_prepare_manifest_ids_cannot_escape(tmp_path, capsys, bad_id):
    folder = write_small_case(tmp_path / "data", "C1")
    bad_id = str(tmp_path / "abs_case") if bad_id == "ABSOLUTE" else bad_id
    m = manifest(tmp_path / "m.csv", {bad_id: folder})
    refused(capsys, ["prepare", "--brats", m, "--out", tmp_path / "w" / "x" / "out", "--folds", "1", "--quiet"],
            "m.csv", "cannot be a file name", watch=[tmp_path])


def test_P33_a_manifest_saved_by_a_spreadsheet_is_read(tmp_path, capsys):
    folder = write_small_case(tmp_path / "data", "C1")
    text = manifest(tmp_path / "plain.csv", {"C1": folder}).read_text().replace("\n", "\r\n")
    (tmp_path / "m.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())  # UTF-8 BOM and CRLF, as Excel saves
    assert main(["prepare", "--brats", str(tmp_path / "m.csv"), "--out", str(tmp_path / "out"), "--folds", "1",
                 "--quiet"]) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "prepared.json").read_text())["cases"][0]["case"] == "C1"


# ------------------------------------------------------------------------------------------ export-coco

def test_E03_export_coco_out_that_is_a_folder(small_prepared, tmp_path, capsys):
    (tmp_path / "here").mkdir()
    refused(capsys, ["export-coco", "--data", small_prepared, "--out", tmp_path / "here"], "here",
            watch=[tmp_path, small_prepared])


def test_E04_export_coco_with_a_label_array_missing(small_prepared, tmp_path, capsys):
    copy = copy_prepared(small_prepared, tmp_path)
    (copy / "cases" / "C1.seg.npy").unlink()
    refused(capsys, ["export-coco", "--data", copy, "--out", tmp_path / "c.json"], "C1.seg.npy", "prepare again",
            watch=[tmp_path])


def test_E05_export_coco_with_a_damaged_prepared_json(small_prepared, tmp_path, capsys):
    copy = copy_prepared(small_prepared, tmp_path)
    meta = json.loads((copy / "prepared.json").read_text())
    del meta["settings"]
    (copy / "prepared.json").write_text(json.dumps(meta))
    refused(capsys, ["export-coco", "--data", copy, "--out", tmp_path / "c.json"], "prepared.json", "settings",
            watch=[tmp_path])
    refused(capsys, ["train", "--data", copy, "--out", tmp_path / "run", "--quiet"], "prepared.json", "settings",
            watch=[tmp_path])


def test_E06_export_coco_val_split_needs_a_fold(small_prepared, tmp_path, capsys):
    refused(capsys, ["export-coco", "--data", small_prepared, "--out", tmp_path / "c.json", "--split", "val"],
            "--fold", watch=[tmp_path, small_prepared])


# ------------------------------------------------------------------------------------------------- demo

def test_D01_demo_out_that_is_a_file(tmp_path, capsys):
    (tmp_path / "a_file").write_text("mine")
    refused(capsys, ["demo", "--out", tmp_path / "a_file", "--quiet"], "a_file", "not a folder", watch=[tmp_path])


def test_D02_demo_fresh_with_a_bad_argument_touches_nothing(tmp_path, capsys):
    mine = tmp_path / "my_results"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    refused(capsys, ["demo", "--fresh", "--cases", "2", "--out", mine, "--quiet"], "--cases", watch=[tmp_path])
    refused(capsys, ["demo", "--fresh", "--out", mine, "--quiet"], "my_results", "made by the demo", watch=[tmp_path])


# ------------------------------------------------------------------------------------------------ train

@pytest.mark.parametrize("override,needle", [
    pytest.param("train.lr=-0.1", "train.lr", id="T03"),
    pytest.param("train.optimizer=rmsprop", "rmsprop", id="T05"),
    pytest.param("train.batch_size=0", "train.batch_size", id="T06"),
    pytest.param("train.epochs=0", "train.epochs", id="T12"),
    pytest.param("model.backbone=vgg99", "vgg99", id="T14"),
    pytest.param("train.epochs=-3", "train.epochs", id="T20"),
    pytest.param("train.negative_share=2.5", "train.negative_share", id="T22"),
    pytest.param("model.weights=nowhere.pth", "nowhere.pth", id="T10-missing"),
])
def test_train_settings_no_run_can_use(small_prepared, tmp_path, capsys, override, needle):
    refused(capsys, ["train", "--data", small_prepared, "--out", tmp_path / "run", "--quiet", override], needle,
            watch=[tmp_path, small_prepared])


def test_T08_train_on_a_fold_that_does_not_exist(small_prepared, tmp_path, capsys):
    refused(capsys, ["train", "--data", small_prepared, "--out", tmp_path / "run", "--fold", "7", "--quiet"],
            "fold 7", watch=[tmp_path, small_prepared])


def test_T09_train_out_that_is_a_file(small_prepared, tmp_path, capsys):
    (tmp_path / "a_file").write_text("mine")
    refused(capsys, ["train", "--data", small_prepared, "--out", tmp_path / "a_file", "--quiet"], "a_file",
            watch=[tmp_path, small_prepared])


def test_T10_weights_that_are_a_malicious_pickle(small_prepared, tmp_path, capsys):
    weights = tmp_path / "evil.pth"
    weights.write_bytes(pickle.dumps(Evil(tmp_path / "MARKER")))
    refused(capsys, ["train", "--data", small_prepared, "--out", tmp_path / "run", "--quiet", f"model.weights={weights}"],
            "evil.pth", watch=[tmp_path, small_prepared])


def test_T13_train_when_no_training_patient_has_tumour(small_prepared, tmp_path, capsys):
    copy = copy_prepared(small_prepared, tmp_path)
    meta = json.loads((copy / "prepared.json").read_text())
    for case in meta["cases"]:  # as if every label map had been empty (prepare itself refuses that, P17)
        seg = np.load(copy / "cases" / f"{case['case']}.seg.npy")
        np.save(copy / "cases" / f"{case['case']}.seg.npy", np.zeros_like(seg))
        case["tumour_slices"] = 0
    (copy / "prepared.json").write_text(json.dumps(meta))
    refused(capsys, ["train", "--data", copy, "--out", tmp_path / "run", "--quiet"], "prepared", "no training patient has any tumour",
            watch=[tmp_path])


@pytest.mark.parametrize("damage", ["T15", "T25", "T26"])
def test_train_on_damaged_prepared_arrays(small_prepared, tmp_path, capsys, damage):
    copy = copy_prepared(small_prepared, tmp_path)
    target = copy / "cases" / ("C2.seg.npy" if damage == "T26" else "C2.img.npy")
    if damage == "T15":
        target.unlink()
    elif damage == "T25":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    else:  # an object array whose unpickling would run a command
        np.save(target, np.array([Evil(tmp_path / "MARKER")], dtype=object), allow_pickle=True)
    refused(capsys, ["train", "--data", copy, "--out", tmp_path / "run", "--quiet"], target.name, "prepare again",
            watch=[tmp_path])


def test_T18_coco_weights_offline(small_prepared, tmp_path, tmp_path_factory, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))  # no cached copy
    for proxy in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")  # a closed port: offline, at once
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    refused(capsys, ["train", "--data", small_prepared, "--out", tmp_path / "run", "--quiet", "model.weights=coco"],
            "COCO weights", "model.weights=PATH", watch=[tmp_path, small_prepared])


def test_T23_weights_that_fit_no_tensor_of_the_model(small_prepared, tmp_path, capsys):
    import torchvision

    weights = tmp_path / "tv_resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)  # default backbone is MobileNet v3
    refused(capsys, ["train", "--data", small_prepared, "--out", tmp_path / "run", "--quiet", f"model.weights={weights}"],
            "tv_resnet18.pth", "no tensor", watch=[tmp_path, small_prepared])


@pytest.mark.parametrize("config_error", [False, True])
def test_T27_planted_links_in_the_run_folder_redirect_nothing(small_prepared, tmp_path, capsys, config_error):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    for name in ("command.txt", "metrics.jsonl", "train.log"):
        (run / name).symlink_to(victim)
    extra = ["train.optimizer=rmsprop"] if config_error else []
    refused(capsys, ["train", "--data", small_prepared, "--out", run, "--quiet", *extra], watch=[tmp_path, small_prepared])
    assert victim.read_text() == "precious"


# ---------------------------------------------------------------------------------------------- predict

def test_R01_checkpoint_that_is_a_malicious_pickle(tmp_path, capsys):
    write_small_case(tmp_path / "data", "C1")
    ckpt = tmp_path / "evil.pt"
    ckpt.write_bytes(pickle.dumps(Evil(tmp_path / "MARKER")))
    refused(capsys, ["predict", "-i", tmp_path / "data", "-o", tmp_path / "out", "-m", ckpt, "--quiet"], "evil.pt",
            watch=[tmp_path])


@pytest.mark.parametrize("key,value,needle", [
    pytest.param("axis", "diagonal", "axis", id="R08"),
    pytest.param("normalization", {}, "normalization", id="R09"),
    pytest.param("config", "BACKBONE", "backbone", id="R10"),
    pytest.param("geometry", {"orientation": "LLS", "spacing": [1, 1, 1]}, "geometry", id="R08-geometry"),
    pytest.param("modality_correlations", [[1.0, 2.0]], "modality_correlations", id="R08-correlations"),
])
def test_checkpoint_with_bad_values(tiny_checkpoint, tmp_path, capsys, key, value, needle):
    from gliomask.models.checkpoint import load_checkpoint

    good = load_checkpoint(tiny_checkpoint)
    if value == "BACKBONE":
        value = {**good["config"], "model": {**good["config"]["model"], "backbone": "vgg99"}}
    bad = tmp_path / f"bad_{key}.pt"
    torch.save({**good, key: value}, bad)
    write_small_case(tmp_path / "data", "C1")
    refused(capsys, ["predict", "-i", tmp_path / "data", "-o", tmp_path / "out", "-m", bad, "--quiet"],
            bad.name, needle, watch=[tmp_path])


@pytest.mark.parametrize("edition", [pytest.param("2019", id="R14"), pytest.param("2023", id="R27")])
def test_predict_into_the_input_case_folder(tiny_checkpoint, tmp_path, capsys, edition):
    if edition == "2019":
        folder = write_small_case(tmp_path / "data", "C1")
    else:
        folder = write_small_case(tmp_path / "data", "BraTS-GLI-00001-000", sep="-",
                                  names=("t1n", "t1c", "t2w", "t2f"), seg_labels=(0, 1, 2, 3))
    refused(capsys, ["predict", "-i", folder, "-o", folder, "-m", tiny_checkpoint, "--quiet"], folder.name,
            "holds input files", watch=[tmp_path, tiny_checkpoint])


def test_R15_predict_out_that_is_a_file(tiny_checkpoint, tmp_path, capsys):
    write_small_case(tmp_path / "data", "C1")
    (tmp_path / "a_file").write_text("mine")
    refused(capsys, ["predict", "-i", tmp_path / "data", "-o", tmp_path / "a_file", "-m", tiny_checkpoint, "--quiet"],
            "a_file", "not a folder", watch=[tmp_path, tiny_checkpoint])


@pytest.mark.parametrize("bad_id", [pytest.param("../../escaped_pred", id="R17"), pytest.param("ABSOLUTE", id="R18")])
def test_predict_manifest_ids_cannot_escape(tiny_checkpoint, tmp_path, capsys, bad_id):
    folder = write_small_case(tmp_path / "data", "C1")
    bad_id = str(tmp_path / "abs_pred") if bad_id == "ABSOLUTE" else bad_id
    m = manifest(tmp_path / "m.csv", {bad_id: folder}, columns=MODS)
    refused(capsys, ["predict", "-i", m, "-o", tmp_path / "w" / "x" / "out", "-m", tiny_checkpoint, "--quiet"],
            "m.csv", "cannot be a file name", watch=[tmp_path, tiny_checkpoint])


@pytest.mark.parametrize("damage", [pytest.param("truncated", id="R19"), pytest.param("nan", id="R24")])
def test_predict_a_bad_later_case_writes_nothing(tiny_checkpoint, tmp_path, capsys, damage):
    write_small_case(tmp_path / "data", "C1")
    folder = write_small_case(tmp_path / "data", "C2", seed=1)
    if damage == "truncated":
        target = folder / "C2_flair.nii.gz"
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    else:
        target = folder / "C2_t1ce.nii.gz"
        img = nib.load(str(target))
        data = img.get_fdata(dtype=np.float32)
        data[20, 20, 12] = np.nan
        nib.save(nib.Nifti1Image(data, img.affine), str(target))
    refused(capsys, ["predict", "-i", tmp_path / "data", "-o", tmp_path / "out", "-m", tiny_checkpoint, "--quiet"],
            target.name, watch=[tmp_path, tiny_checkpoint])


def test_R21_negative_thread_count(tiny_checkpoint, tmp_path, capsys):
    write_small_case(tmp_path / "data", "C1")
    refused(capsys, ["predict", "-i", tmp_path / "data", "-o", tmp_path / "out", "-m", tiny_checkpoint, "--threads", "-1",
                     "--quiet"], "--threads", watch=[tmp_path, tiny_checkpoint])


# --------------------------------------------------------------------------------------------- evaluate

def _gt_and_pred(tmp_path: Path) -> tuple[Path, Path]:
    gt = write_small_case(tmp_path / "gt", "C1").parent
    pred = tmp_path / "pred"
    pred.mkdir()
    shutil.copy(gt / "C1" / "C1_seg.nii.gz", pred / "C1_seg.nii.gz")
    return gt, pred


def test_V06_evaluate_out_that_is_a_file(tmp_path, capsys):
    gt, pred = _gt_and_pred(tmp_path)
    (tmp_path / "a_file").write_text("mine")
    refused(capsys, ["evaluate", "--gt", gt, "--pred", pred, "-o", tmp_path / "a_file", "--quiet"], "a_file",
            watch=[tmp_path])


@pytest.mark.parametrize("where", ["gt", "under_gt", "pred"])
def test_V14_evaluate_out_among_its_inputs(tmp_path, capsys, where):
    gt, pred = _gt_and_pred(tmp_path)
    out = {"gt": gt, "under_gt": gt / "C1" / "report", "pred": pred}[where]
    refused(capsys, ["evaluate", "--gt", gt, "--pred", pred, "-o", out, "--quiet"], watch=[tmp_path])


def test_V15_evaluate_manifest_ids_cannot_escape(tmp_path, capsys):
    gt, pred = _gt_and_pred(tmp_path)
    m = manifest(tmp_path / "m.csv", {"../../escaped_eval": gt / "C1"}, columns=("seg",))
    refused(capsys, ["evaluate", "--gt", m, "--pred", pred, "-o", tmp_path / "w" / "x" / "ev", "--quiet"],
            "m.csv", "cannot be a file name", watch=[tmp_path])


# ------------------------------------------------- read-only and full file systems (P28, P29, R16, V12)

def _namespace_run(mount: str, target: Path, argv: list) -> subprocess.CompletedProcess:
    """Run ``gliomask argv`` with ``mount`` applied to ``target`` in a private mount namespace; then list
    what is left under ``target`` (on stdout) before the namespace, and a tmpfs with it, goes."""
    script = (f'{mount} "$0" && {sys.executable} -m gliomask "$@" >/dev/null; rc=$?; '
              f'find "$0" -mindepth 1; exit $rc')
    return subprocess.run(["unshare", "-m", "sh", "-c", script, str(target), *map(str, argv)],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def mount_namespaces():
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True)
    if shutil.which("unshare") is None or probe.returncode:
        pytest.skip("needs private mount namespaces (unshare -m) to make a real read-only or full file system")


@pytest.mark.parametrize("command", [pytest.param("prepare", id="P28"), pytest.param("predict", id="R16"),
                                     pytest.param("evaluate", id="V12")])
def test_outputs_on_a_read_only_file_system(mount_namespaces, tiny_checkpoint, tmp_path, command):
    gt, pred = _gt_and_pred(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    argv = {"prepare": ["prepare", "--brats", gt, "--out", locked / "out", "--folds", "1"],
            "predict": ["predict", "-i", gt, "-o", locked / "out", "-m", tiny_checkpoint],
            "evaluate": ["evaluate", "--gt", gt, "--pred", pred, "-o", locked / "out"]}[command]
    before = snapshot(tmp_path)
    result = _namespace_run('mount --bind -o ro "$0"', locked, [*argv, "--quiet"])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "locked" in lines[0] and "Read-only file system" in lines[0], lines[0]
    assert snapshot(tmp_path) == before


def test_P29_prepare_onto_a_full_disk_leaves_nothing(mount_namespaces, tmp_path):
    for k in range(2):
        write_small_case(tmp_path / "data", f"C{k}", seed=k)
    full = tmp_path / "full"
    full.mkdir()
    before = snapshot(tmp_path)
    # 256 KiB: smaller than one case's image array (4 x 24 x 40 x 40 float32 = 600 KiB)
    result = _namespace_run("mount -t tmpfs -o size=256k tmpfs", full,
                            ["prepare", "--brats", tmp_path / "data", "--out", full / "out", "--folds", "1", "--quiet"])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "full" in lines[0] and ("No space left on device" in lines[0] or "disk full" in lines[0]), lines[0]
    assert result.stdout == "", f"left on the full disk: {result.stdout}"
    assert snapshot(tmp_path) == before


def test_predict_onto_a_full_disk_names_the_file_and_leaves_no_half_case(mount_namespaces, tiny_checkpoint, tmp_path):
    """Found by the second probe: the message named no path, and the first case kept its label map
    without its overlay and report. Now a case's outputs are all there or none."""
    gt, _ = _gt_and_pred(tmp_path)
    full = tmp_path / "full"
    full.mkdir()
    before = snapshot(tmp_path)
    # 32 KiB: room for a tiny case's label map and lesion tables, not for its overlay picture
    result = _namespace_run("mount -t tmpfs -o size=32k tmpfs", full,
                            ["predict", "-i", gt, "-o", full / "out", "-m", tiny_checkpoint, "--quiet", "--device", "cpu"])
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(full / "out") in lines[0] and "No space left on device" in lines[0], lines[0]
    assert [p for p in result.stdout.split() if p.endswith((".nii.gz", ".json", ".csv", ".png", ".html"))] == [], \
        f"left on the full disk: {result.stdout}"
    assert snapshot(tmp_path) == before
