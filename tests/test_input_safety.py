"""Outputs never overwrite an input or a user's files and never leave their folder."""

from __future__ import annotations

from conftest import expect_one_line_error, run_cli, write_small_case


def test_manifest_case_ids_cannot_escape_the_output_folder(tmp_path):
    folder = write_small_case(tmp_path / "data", "C1")
    for bad in ("../../escaped_case", "/tmp/abs_case", "..", "a\\b"):
        manifest = tmp_path / "m.csv"
        names = ["t1", "t1ce", "t2", "flair", "seg"]
        manifest.write_text("case," + ",".join(names) + "\n" + bad + "," + ",".join(
            str(folder / f"C1_{n}.nii.gz") for n in names) + "\n")
        expect_one_line_error(run_cli("prepare", "--brats", manifest, "--out", tmp_path / "out", "--folds", "1", "--quiet"),
                  "m.csv", "cannot be a file name")
        assert not (tmp_path / "out").exists() and not (tmp_path / "escaped_case").exists()


def test_manifest_saved_by_a_spreadsheet_is_read(tmp_path):
    folder = write_small_case(tmp_path / "data", "C1")
    names = ["t1", "t1ce", "t2", "flair", "seg"]
    manifest = tmp_path / "m.csv"
    text = "case," + ",".join(names) + "\r\nC1," + ",".join(str(folder / f"C1_{n}.nii.gz") for n in names) + "\r\n"
    manifest.write_bytes(b"\xef\xbb\xbf" + text.encode())  # UTF-8 BOM and CRLF, as Excel saves
    result = run_cli("prepare", "--brats", manifest, "--out", tmp_path / "out", "--folds", "1", "--quiet")
    assert result.returncode == 0, result.stderr


def test_demo_fresh_deletes_only_a_folder_it_made(tmp_path):
    mine = tmp_path / "my_results"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    # a bad argument is refused before anything is touched
    expect_one_line_error(run_cli("demo", "--fresh", "--cases", "2", "--out", mine), "--cases")
    # valid arguments, but the folder is not the demo's
    expect_one_line_error(run_cli("demo", "--fresh", "--out", mine), "made by the demo", "my_results")
    assert (mine / "thesis.txt").read_text() == "years of work" and len(list(mine.iterdir())) == 1
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    expect_one_line_error(run_cli("demo", "--out", a_file), "not a folder")
    assert a_file.read_text() == "mine"


def test_a_nii_beside_a_nii_gz_is_refused_not_guessed(tmp_path):
    folder = write_small_case(tmp_path / "data", "C1")
    (folder / "C1_flair.nii").write_bytes(b"not read")
    expect_one_line_error(run_cli("prepare", "--brats", tmp_path / "data", "--out", tmp_path / "out", "--quiet"),
                          "C1_flair.nii.gz", "C1_flair.nii", "keep one")
    assert not (tmp_path / "out").exists()


def test_nnunet_raw_layout_is_read_through_its_dataset_json(tmp_path):
    import json
    import shutil

    from gliomask.io.brats import discover_cases

    source = write_small_case(tmp_path / "brats", "C1")
    root = tmp_path / "Dataset001_BraTS"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    order = ["flair", "t1", "t1ce", "t2"]  # the MSD Task01 channel order
    for k, mod in enumerate(order):
        shutil.copy(source / f"C1_{mod}.nii.gz", root / "imagesTr" / f"C1_{k:04d}.nii.gz")
    shutil.copy(source / "C1_seg.nii.gz", root / "labelsTr" / "C1.nii.gz")
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"}}))
    (case,) = discover_cases(root / "imagesTr")
    assert case.case_id == "C1" and case.seg == root / "labelsTr" / "C1.nii.gz"
    assert {m: p.name for m, p in case.images.items()} == {m: f"C1_{k:04d}.nii.gz" for k, m in enumerate(order)}
    (root / "dataset.json").unlink()
    expect_one_line_error(run_cli("prepare", "--brats", root / "imagesTr", "--out", tmp_path / "o", "--quiet"),
                          "dataset.json")


def test_evaluate_against_a_folder_of_segmentations_only(tmp_path):
    import shutil

    folder = write_small_case(tmp_path / "full", "C1")
    gt = tmp_path / "gt" / "C1"
    gt.mkdir(parents=True)
    shutil.copy(folder / "C1_seg.nii.gz", gt / "C1_seg.nii.gz")
    pred = tmp_path / "pred"
    pred.mkdir()
    shutil.copy(folder / "C1_seg.nii.gz", pred / "C1_seg.nii.gz")
    result = run_cli("evaluate", "--pred", pred, "--gt", tmp_path / "gt", "-o", tmp_path / "ev", "--quiet")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ev" / "index.html").is_file() and (tmp_path / "ev" / "overlays" / "C1.png").is_file()
    assert "<h1>gliomask evaluation</h1>" in (tmp_path / "ev" / "index.html").read_text()  # not a case's caption


def test_damaged_prepared_folder_and_checkpoint_values_are_one_line(prepared, tmp_path):
    import shutil

    import torch

    copy = tmp_path / "prepared"
    shutil.copytree(prepared, copy)
    arrays = sorted((copy / "cases").glob("*.img.npy"))
    arrays[0].unlink()
    expect_one_line_error(run_cli("train", "--data", copy, "--out", tmp_path / "run", "train.epochs=1"),
                          arrays[0].name, "missing", "prepare again")
    assert not (tmp_path / "run").exists()
    shutil.copy(prepared / "cases" / arrays[0].name, arrays[0])
    arrays[1].write_bytes(arrays[1].read_bytes()[:200])  # truncated
    expect_one_line_error(run_cli("train", "--data", copy, "--out", tmp_path / "run", "train.epochs=1"),
                          arrays[1].name, "unreadable")
    assert not (tmp_path / "run").exists()
    from gliomask.models.checkpoint import load_checkpoint

    good = load_checkpoint(_tiny_checkpoint(prepared, tmp_path))
    for key, value, needle in (("axis", "diagonal", "axis"), ("normalization", {"clip_percentiles": [99, 1]}, "normalization"),
                               ("geometry", {"orientation": "LLS", "spacing": [1, 1, 1]}, "geometry")):
        bad = tmp_path / f"bad_{key}.pt"
        torch.save({**good, key: value}, bad)
        expect_one_line_error(run_cli("predict", "-i", tmp_path / "none", "-o", tmp_path / "p", "-m", bad),
                              "bad value", needle)


def _tiny_checkpoint(prepared, tmp_path):
    from gliomask.config import load_config
    from gliomask.engine.train import train

    cfg = load_config(None, ["train.workers=0", "train.batch_size=1", "train.epochs=1", "train.max_steps_per_epoch=1",
                             "train.warmup_steps=1", "infer.tune=false"])
    train(prepared, tmp_path / "tiny", cfg, fold=None, progress=False)
    return tmp_path / "tiny" / "best.pt"


def test_outputs_that_are_files_or_input_folders_are_one_line(prepared, tmp_path):
    import shutil

    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    data = write_small_case(tmp_path / "data", "C1").parent
    pred = tmp_path / "pred"
    pred.mkdir()
    shutil.copy(data / "C1" / "C1_seg.nii.gz", pred / "C1_seg.nii.gz")
    for args in (("prepare", "--brats", data, "--out", a_file, "--folds", "1"),
                 ("export-coco", "--data", prepared, "--out", tmp_path),  # a folder where a file goes
                 ("demo", "--out", a_file, "--cases", "4"),
                 ("evaluate", "--pred", pred, "--gt", data, "-o", a_file),
                 ("evaluate", "--pred", pred, "--gt", data, "-o", data),
                 ("evaluate", "--pred", pred, "--gt", data, "-o", data / "C1" / "report")):
        result = run_cli(*args, "--quiet") if args[0] != "export-coco" else run_cli(*args)
        expect_one_line_error(result)
        assert a_file.read_text() == "mine"
    assert sorted(p.name for p in (data / "C1").iterdir()) == sorted(
        f"C1_{n}.nii.gz" for n in ("t1", "t1ce", "t2", "flair", "seg"))


def test_damaged_prepared_json_is_one_line(prepared, tmp_path):
    import json
    import shutil

    copy = tmp_path / "prepared"
    shutil.copytree(prepared, copy)
    meta = json.loads((copy / "prepared.json").read_text())
    del meta["settings"]
    (copy / "prepared.json").write_text(json.dumps(meta))
    expect_one_line_error(run_cli("export-coco", "--data", copy, "--out", tmp_path / "c.json"), "damaged", "settings")
    expect_one_line_error(run_cli("train", "--data", copy, "--out", tmp_path / "run"), "damaged")
    assert not (tmp_path / "c.json").exists() and not (tmp_path / "run").exists()
