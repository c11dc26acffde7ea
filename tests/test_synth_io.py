"""Synthetic cases on disk follow the BraTS layout and load back through the validated reader."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from gliomask.data.synth import BRATS_AFFINE, synth_case
from gliomask.io.brats import discover_cases, load_case, parse_modalities


def test_brats2019_layout_and_format(brats2019):
    cases = discover_cases(brats2019)
    assert len(cases) == 5
    for case in cases:
        assert case.case_id.startswith("BraTS19_SYN_")
        assert case.group in ("HGG", "LGG")
        folder = brats2019 / case.group / case.case_id
        for suffix in ("t1", "t1ce", "t2", "flair", "seg"):
            assert (folder / f"{case.case_id}_{suffix}.nii.gz").is_file()
        img = nib.load(str(folder / f"{case.case_id}_flair.nii.gz"))
        assert img.shape == (240, 240, 155)
        assert img.get_data_dtype() == np.int16
        np.testing.assert_allclose(img.affine, BRATS_AFFINE)
        assert img.header.get_zooms() == (1.0, 1.0, 1.0)
        seg = nib.load(str(folder / f"{case.case_id}_seg.nii.gz"))
        assert seg.get_data_dtype() == np.uint8
        labels = set(np.unique(np.asarray(seg.dataobj)).tolist())
        assert labels <= {0, 1, 2, 4}
        assert (case.group == "HGG") == (4 in labels)


def test_simple_synthetic_case_is_brain_like_and_deterministic():
    images, seg = synth_case(7, seed=11, anatomy="simple")
    again, seg_again = synth_case(7, seed=11, anatomy="simple")
    other, _ = synth_case(8, seed=11, anatomy="simple")
    assert all(np.array_equal(images[m], again[m]) for m in images)
    assert np.array_equal(seg, seg_again)
    assert not np.array_equal(images["flair"], other["flair"])
    brain = images["t1"] != 0
    assert 0.1 < brain.mean() < 0.5  # a head-shaped brain, background exactly 0 (skull-stripped)
    for m in images:
        assert np.array_equal(images[m] != 0, brain)
    assert np.all(seg[~brain] == 0)
    if (seg == 2).any() and (seg == 4).any():
        # contrasts that make each region need its modality
        wm_like = np.median(images["flair"][brain & (seg == 0)])
        assert np.median(images["flair"][seg == 2]) > 1.5 * wm_like  # oedema bright on FLAIR
        assert np.median(images["t1ce"][seg == 4]) > 1.5 * np.median(images["t1ce"][brain & (seg == 0)])
        assert np.median(images["t1ce"][seg == 1]) < np.median(images["t1ce"][seg == 4]) / 2


def test_2023_names_and_labels_convert_to_internal(brats2023):
    cases = discover_cases(brats2023)
    assert [c.case_id for c in cases] == ["BraTS-GLI-00001-000", "BraTS-GLI-00002-000"]
    case = cases[0]
    assert case.convention == "brats2023"
    assert case.images["flair"].name == "BraTS-GLI-00001-000-t2f.nii.gz"
    raw = np.asarray(nib.load(str(case.seg)).dataobj)
    loaded = load_case(case)
    assert set(np.unique(raw).tolist()) <= {0, 1, 2, 3}
    assert np.array_equal(loaded.seg == 4, raw == 3)
    assert np.array_equal(loaded.seg == 1, raw == 1)


def test_modality_subset_order_and_aliases(brats2019):
    case = discover_cases(brats2019)[0]
    both = load_case(case, parse_modalities("flair,t1ce"))
    full = load_case(case)
    assert both.modalities == ("flair", "t1ce")
    assert np.array_equal(both.images[0], full.images[3])
    assert np.array_equal(both.images[1], full.images[1])
    assert parse_modalities("t2f,t1c") == ("flair", "t1ce")


def test_atomic_outputs_get_ordinary_permissions(tmp_path):
    import os

    from gliomask.io.atomic import atomic_output_dir, atomic_path

    mask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "a.json") as tmp:
            tmp.write_text("{}")
        with atomic_output_dir(tmp_path / "d") as tmp:
            (tmp / "x").write_text("x")
    finally:
        os.umask(mask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
