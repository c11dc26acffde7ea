"""A prepared folder matches its BraTS source exactly, slice by slice and instance by instance."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from scipy import ndimage

from gliomask.data.coco import export_coco
from gliomask.data.dataset import PreparedSlices
from gliomask.data.instances import slice_instances
from gliomask.labels import CLASS_SCHEMES, STRUCTURE_2D
from gliomask.data.planes import AXES
from gliomask.data.prepare import PrepareSettings, prepare
from gliomask.data.prepared import Prepared
from gliomask.io.brats import discover_cases, load_case


def _source_slices(prep: Prepared, case_id: str, brats_root):
    """The seg of ``case_id`` read from its NIfTI, cropped and sliced as recorded in prepared.json."""
    case = next(c for c in discover_cases(brats_root) if c.case_id == case_id)
    seg = load_case(case).seg
    meta = prep.case_meta(case_id)
    box = tuple(slice(lo, hi) for lo, hi in meta["crop"])
    return np.moveaxis(seg[box], AXES[prep.settings["axis"]], 0)


def test_instances_rebuild_each_region_exactly(brats2019, tmp_path):
    out = tmp_path / "prep_min1"
    prepare(brats2019, out, PrepareSettings(min_area=1, folds=2), workers=2, progress=False)
    prep = Prepared.open(out)
    checked = 0
    for cid in prep.case_ids:
        source = _source_slices(prep, cid, brats2019)
        _, stored = prep.arrays(cid)
        assert np.array_equal(np.asarray(stored), source)
        for s in prep.case_meta(cid)["slices"]:
            masks, labels, boxes = slice_instances(np.asarray(stored[s]), "regions", 1)
            for class_id, (_, values) in enumerate(CLASS_SCHEMES["regions"], start=1):
                region = np.isin(source[s], values)
                union = masks[labels == class_id].any(axis=0) if (labels == class_id).any() else np.zeros_like(region)
                assert np.array_equal(union, region)
                assert (labels == class_id).sum() == ndimage.label(region, structure=STRUCTURE_2D)[1]
                checked += 1
            for m, b in zip(masks, boxes):
                ys, xs = np.nonzero(m)
                assert b.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert checked > 100


def test_min_area_drops_only_small_components(prepared, brats2019):
    prep = Prepared.open(prepared)
    min_area = prep.settings["min_area"]
    cid = prep.case_ids[0]
    source = _source_slices(prep, cid, brats2019)
    for s in prep.case_meta(cid)["slices"]:
        masks, labels, _ = slice_instances(source[s], "regions", min_area)
        for class_id, (_, values) in enumerate(CLASS_SCHEMES["regions"], start=1):
            comps, n = ndimage.label(np.isin(source[s], values), structure=STRUCTURE_2D)
            sizes = np.bincount(comps.ravel(), minlength=n + 1)[1:]
            assert (labels == class_id).sum() == int((sizes >= min_area).sum())
            expected = np.isin(comps, 1 + np.flatnonzero(sizes >= min_area))
            got = masks[labels == class_id].any(axis=0) if (labels == class_id).any() else np.zeros_like(expected)
            assert np.array_equal(got, expected)


def test_kept_slices_tumour_and_negatives(prepared):
    prep = Prepared.open(prepared)
    for meta in prep.meta["cases"]:
        _, seg = prep.arrays(meta["case"])
        tumour = {s for s in range(len(seg)) if seg[s].any()}
        kept = set(meta["slices"])
        assert tumour <= kept
        negatives = kept - tumour
        brain_free = meta["brain_slices"] - meta["tumour_slices"]
        assert len(negatives) == round(0.2 * brain_free)


def test_normalised_images_are_zscored_inside_brain(prepared):
    prep = Prepared.open(prepared)
    img, _ = prep.arrays(prep.case_ids[0])
    img = np.asarray(img, dtype=np.float32)
    assert img.dtype == np.float32 and img.ndim == 4 and img.shape[1] == 4
    brain = np.any(img != 0, axis=1)
    for c in range(4):
        values = img[:, c][brain]
        assert abs(values.mean()) < 0.05
        assert abs(values.std() - 1) < 0.05


def test_2023_names_prepare_to_identical_arrays(brats2019, brats2023, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    # cases 1 and 2 of the same seed, written with 2019 and 2023 names
    from gliomask.data.synth import synthesize

    synthesize(tmp_path / "src19", cases=2, seed=3, edition="2019", workers=1, anatomy="simple")  # as the fixture
    # every brain slice kept, so that the per-case (id-seeded) choice of negatives plays no part
    prepare(tmp_path / "src19", a, PrepareSettings(folds=2, negative_fraction=1.0), progress=False)
    prepare(brats2023, b, PrepareSettings(folds=2, negative_fraction=1.0), progress=False)
    pa, pb = Prepared.open(a), Prepared.open(b)
    for ca, cb in zip(pa.case_ids, pb.case_ids):
        ia, sa = pa.arrays(ca)
        ib, sb = pb.arrays(cb)
        assert np.array_equal(ia, ib) and np.array_equal(sa, sb)
        assert pa.case_meta(ca)["slices"] == pb.case_meta(cb)["slices"]


def test_folds_partition_patients(prepared):
    prep = Prepared.open(prepared)
    folds = prep.meta["folds"]
    assert len(folds) == 5
    flat = [c for f in folds for c in f]
    assert sorted(flat) == sorted(prep.case_ids)
    assert len(set(flat)) == len(flat)
    for k in range(5):
        train, val = prep.split(k)
        assert not set(train) & set(val)
        assert set(train) | set(val) == set(prep.case_ids)


def test_coco_export_loads_and_areas_match(prepared, tmp_path):
    path = export_coco(prepared, tmp_path / "val.json", fold=0, split="val")
    coco = COCO(str(path))
    assert min(coco.getImgIds()) == 1
    assert len(coco.getAnnIds()) > 0
    for ann in coco.loadAnns(coco.getAnnIds()):
        m = mask_utils.decode(ann["segmentation"])
        assert ann["area"] == int(m.sum())
        x, y, w, h = ann["bbox"]
        ys, xs = np.nonzero(m)
        assert (x, y, w, h) == (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
    data = json.loads(path.read_text())
    assert [c["name"] for c in data["categories"]] == ["WT", "TC", "ET"]


def test_dataset_items_follow_the_tensor_contract(prepared):
    prep = Prepared.open(prepared)
    ds = PreparedSlices(prep, prep.case_ids[:2])
    assert any(ds.is_negative) and not all(ds.is_negative)
    for i in [ds.is_negative.index(True), ds.is_negative.index(False)]:
        image, target = ds[i]
        assert image.dtype == torch.float32 and image.ndim == 3 and image.shape[0] == 4
        n = len(target["labels"])
        assert target["boxes"].dtype == torch.float32 and target["boxes"].shape == (n, 4)
        assert target["labels"].dtype == torch.int64
        assert target["masks"].dtype == torch.uint8 and target["masks"].shape == (n, *image.shape[1:])
        assert (n == 0) == ds.is_negative[i]


def test_prepare_is_idempotent_and_never_touches_inputs(brats2019, prepared):
    digest = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(brats2019.rglob("*.nii.gz"))}
    before = (prepared / "prepared.json").read_text()
    prepare(brats2019, prepared, PrepareSettings(folds=5, negative_fraction=0.2), progress=False)
    assert (prepared / "prepared.json").read_text() == before
    assert digest == {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(brats2019.rglob("*.nii.gz"))}


def test_prepare_records_the_geometry_and_refuses_a_mixture(prepared, tmp_path):
    from conftest import expect_one_line_error, run_cli, write_small_case

    assert Prepared.open(prepared).meta["geometry"] == {"orientation": "LPS", "spacing": [1.0, 1.0, 1.0]}
    ras = np.diag([1.0, 1.0, 1.0, 1.0])
    write_small_case(tmp_path / "mixed", "case_lps")
    write_small_case(tmp_path / "mixed", "case_ras", affine=ras)
    before = {p: p.read_bytes() for p in (tmp_path / "mixed").rglob("*.nii.gz")}
    result = run_cli("prepare", "--brats", tmp_path / "mixed", "--out", tmp_path / "out", "--folds", "2", "--quiet")
    expect_one_line_error(result, "orientations", "LPS", "RAS")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    assert {p: p.read_bytes() for p in (tmp_path / "mixed").rglob("*.nii.gz")} == before
    coarse = np.diag([2.0, 2.0, 2.0, 1.0])
    coarse[:2] *= -1
    write_small_case(tmp_path / "spacing", "case_1mm")
    write_small_case(tmp_path / "spacing", "case_2mm", affine=coarse)
    expect_one_line_error(run_cli("prepare", "--brats", tmp_path / "spacing", "--out", tmp_path / "out2", "--folds", "2",
                                  "--quiet"), "spacing")
