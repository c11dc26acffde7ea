"""Inputs as they come: the nnU-Net raw layout, a ground-truth folder of segmentations only.
(The refusals of bad inputs are in test_bad_inputs.py.)"""

from __future__ import annotations

from conftest import expect_one_line_error, run_cli, write_small_case


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


def test_a_flat_folder_of_several_cases_files_is_read(tmp_path):
    import shutil

    from gliomask.data.prepare import PrepareSettings, prepare
    from gliomask.io.brats import discover_cases

    flat = tmp_path / "scans"
    flat.mkdir()
    for k, (case_id, sep, names) in enumerate([("A", "_", ("t1", "t1ce", "t2", "flair")),
                                                ("B_x", "_", ("t1", "t1ce", "t2", "flair")),
                                                ("BraTS-GLI-00001-000", "-", ("t1n", "t1c", "t2w", "t2f"))]):
        labels = (0, 1, 2, 3) if sep == "-" else (0, 1, 2, 4)
        folder = write_small_case(tmp_path / "src", case_id, seed=k, sep=sep, names=names, seg_labels=labels)
        for f in folder.iterdir():
            shutil.copy(f, flat / f.name)
    cases = discover_cases(flat)
    assert [c.case_id for c in cases] == ["A", "B_x", "BraTS-GLI-00001-000"]
    assert [c.convention for c in cases] == ["brats2019", "brats2019", "brats2023"]
    assert cases[1].images["t1ce"] == flat / "B_x_t1ce.nii.gz" and cases[1].seg == flat / "B_x_seg.nii.gz"
    assert cases[2].images["flair"] == flat / "BraTS-GLI-00001-000-t2f.nii.gz"
    meta = prepare(flat, tmp_path / "prep", PrepareSettings(folds=1), progress=False)
    assert [c["case"] for c in meta["cases"]] == ["A", "B_x", "BraTS-GLI-00001-000"]
