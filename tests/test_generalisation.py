"""One model from every patient whatever its modalities, the tumour core as a whole, folds that cannot leak."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest

from gliomask.config import load_config
from gliomask.data.folds import cross_validation_splits
from gliomask.data.prepare import PrepareSettings, prepare
from gliomask.data.prepared import Prepared
from gliomask.engine.train import train
from gliomask.errors import GliomaskError
from gliomask.inference.core import PostProcessing, regions_from_probabilities
from gliomask.inference.predictor import Predictor
from gliomask.io.brats import discover_cases, load_case
from gliomask.labels import labels_from_regions

QUICK = ["train.workers=0", "train.batch_size=2", "train.threads=2", "train.val_every=1000", "infer.tune=false",
         "infer.tta=false"]  # one pass: the flips are tested in test_predict_evaluate
MODALITIES = ("t1", "t1ce", "t2", "flair")


@pytest.fixture(scope="module")
def mixed_brats(brats2019, tmp_path_factory) -> Path:
    """The synthetic cases, two of them as BRATS 2013 ships them: FLAIR and T1ce only."""
    root = tmp_path_factory.mktemp("mixed") / "brats"
    for i, case in enumerate(discover_cases(brats2019)):
        folder = root / case.case_id
        folder.mkdir(parents=True)
        for mod, path in case.images.items():
            if i < 2 and mod in ("t1", "t2"):
                continue
            os.symlink(Path(path).resolve(), folder / Path(path).name)
        os.symlink(Path(case.seg).resolve(), folder / Path(case.seg).name)
    return root


@pytest.fixture(scope="module")
def mixed_run(mixed_brats, tmp_path_factory) -> tuple[Path, Path]:
    prepared = tmp_path_factory.mktemp("mixedprep") / "prepared"
    prepare(mixed_brats, prepared, PrepareSettings(folds=5, negative_fraction=0.1, allow_missing=True), progress=False)
    run = tmp_path_factory.mktemp("mixedrun") / "run"
    cfg = load_config(None, QUICK + ["train.epochs=1", "train.max_steps_per_epoch=12", "train.modality_dropout=0.5"])
    train(prepared, run, cfg, fold=None, progress=False)
    return prepared, run


def test_cases_without_some_modalities_are_prepared_with_zero_channels_marked_absent(mixed_run, mixed_brats):
    prepared = Prepared.open(mixed_run[0])
    metas = {c["case"]: c for c in prepared.meta["cases"]}
    lacking = sorted(discover_cases(mixed_brats), key=lambda c: c.case_id)[:2]
    for case in lacking:
        meta = metas[case.case_id]
        assert meta["available"] == ["t1ce", "flair"]
        assert meta["modality_correlations"] is None  # no four-modality matrix from two modalities
        images, _ = prepared.arrays(case.case_id)
        assert not np.asarray(images[:, [0, 2]]).any()  # t1, t2: zero
        assert np.asarray(images[:, [1, 3]]).any()
    assert metas[sorted(metas)[-1]]["available"] == list(MODALITIES)
    assert prepared.modality_correlations is not None  # from the complete cases


def test_prepare_without_allow_missing_still_names_the_missing_file(mixed_brats, tmp_path):
    with pytest.raises(GliomaskError, match="missing modality t1 for case"):
        prepare(mixed_brats, tmp_path / "p", PrepareSettings(), progress=False)


def test_a_model_trained_on_mixed_modality_sets_predicts_from_every_subset(mixed_run, brats2019):
    _, run = mixed_run
    predictor = Predictor.from_checkpoint(run / "best.pt", device="cpu")
    assert predictor.any_subset and predictor.model.in_channels == 4 * 3 + 4  # 3 slices + one flag per modality
    case = discover_cases(brats2019)[-1]
    loaded = load_case(case, MODALITIES)
    # a block around the tumour keeps 15 predictions fast; the path is the one a whole volume takes
    zs = np.flatnonzero(loaded.seg.any(axis=(0, 1)))
    block = (slice(40, 200), slice(40, 200), slice(max(zs[0] - 4, 0), zs[-1] + 4))
    full = {m: loaded.images[i][block] for i, m in enumerate(MODALITIES)}
    probabilities = {}
    for k in range(1, 5):
        for subset in itertools.combinations(MODALITIES, k):
            result = predictor.predict_case({m: full[m] for m in subset}, affine=loaded.affine)
            assert result.labels.shape == full["t1"].shape
            assert set(np.unique(result.labels)) <= {0, 1, 2, 4}
            assert np.isfinite(result.probabilities).all()
            probabilities[subset] = result.probabilities
    # the flags are read: hiding modalities changes what the network sees, not only which channels are zero
    assert not np.allclose(probabilities[("flair",)], probabilities[MODALITIES])
    # a zero-filled array given for a modality is not the same input as the modality marked absent
    zeroed = predictor.predict_case({**{m: full[m] for m in ("t1ce", "flair")}, "t1": np.zeros_like(full["t1"]),
                                     "t2": np.zeros_like(full["t2"])}, affine=loaded.affine).probabilities
    assert not np.allclose(zeroed, probabilities[("t1ce", "flair")])


def test_the_whole_tumour_comes_from_the_flair_t1ce_pass_when_a_case_has_more(mixed_run, brats2019):
    _, run = mixed_run
    predictor = Predictor.from_checkpoint(run / "best.pt", device="cpu")
    # two training cases came with FLAIR and T1ce only: the default second pass applies (model's order)
    assert ["t1ce", "flair"] in predictor.meta["trained_modality_sets"]
    assert predictor.whole_tumour_modalities == ("t1ce", "flair")
    loaded = load_case(discover_cases(brats2019)[-1], MODALITIES)
    zs = np.flatnonzero(loaded.seg.any(axis=(0, 1)))
    images = loaded.images[:, 60:180, 60:180, max(zs[0] - 2, 0):zs[-1] + 2]
    prob, scores, _ = predictor.detect(images)
    p_all, s_all, _ = predictor.detect(images, whole_tumour_pass=False)
    p_sub, s_sub, _ = predictor.detect(images, ("t1ce", "flair"), whole_tumour_pass=False)
    assert not np.array_equal(p_all[0], p_sub[0])  # the two passes differ, so the test can tell them apart
    assert np.array_equal(prob[0], p_sub[0]) and np.array_equal(prob[1:], p_all[1:])
    assert np.array_equal(scores, np.maximum(s_all, s_sub))
    # a case with FLAIR and T1ce only has one pass; so does any case when the user asks for one
    assert np.array_equal(predictor.detect(images, ("t1ce", "flair"))[0], p_sub)
    single = Predictor.from_checkpoint(run / "best.pt", device="cpu", whole_tumour_modalities=[])
    assert single.whole_tumour_modalities == () and np.array_equal(single.detect(images)[0], p_all)
    with pytest.raises(GliomaskError, match="not dwi"):
        Predictor.from_checkpoint(run / "best.pt", device="cpu", whole_tumour_modalities=["dwi"])
    with pytest.raises(GliomaskError, match="unknown modality dwi"):
        load_config(None, ["infer.whole_tumour_modalities=[flair, dwi]"])


def test_a_case_folder_lacking_modalities_predicts_and_a_model_without_flags_refuses_it(mixed_run, mixed_brats, prepared,
                                                                                       tmp_path):
    from gliomask.inference.predict import predict_cases

    _, run = mixed_run
    case_id = sorted(c.case_id for c in discover_cases(mixed_brats))[0]
    results = predict_cases(mixed_brats, tmp_path / "pred", run / "best.pt", case_ids=[case_id], device="cpu",
                            overlays=False, progress=False)
    assert results[0]["case"] == case_id and (tmp_path / "pred" / f"{case_id}_seg.nii.gz").is_file()
    old = tmp_path / "old"
    train(prepared, old, load_config(None, QUICK + ["train.epochs=1", "train.max_steps_per_epoch=2",
                                                    "model.modality_flags=false", "train.modality_dropout=0"]),
          fold=None, progress=False)
    with pytest.raises(GliomaskError, match="needs modalities t1, t1ce, t2, flair; case .* lacks t1, t2"):
        predict_cases(mixed_brats, tmp_path / "pred_old", old / "best.pt", case_ids=[case_id], device="cpu",
                      overlays=False, progress=False)
    assert not (tmp_path / "pred_old").exists()


def test_training_without_flags_on_cases_lacking_modalities_is_refused(mixed_run, tmp_path):
    cfg = load_config(None, QUICK + ["model.modality_flags=false", "train.modality_dropout=0"])
    with pytest.raises(GliomaskError, match="modality_flags=true"):
        train(mixed_run[0], tmp_path / "run", cfg, fold=None, progress=False)
    assert not (tmp_path / "run").exists()


def _ring_lesion(shape=(40, 40, 30), open_top: bool = False):
    """Bool [3, ...] WT, TC, ET of a ring-enhancing lesion whose dark centre the network left out."""
    grid = np.indices(shape).astype(float)
    r = np.sqrt(((grid - np.array([20, 20, 15])[:, None, None, None]) ** 2).sum(0))
    rim = (r >= 6) & (r < 9)
    centre = r < 6
    oedema = (r >= 9) & (r < 13)
    if open_top:
        rim &= grid[2] < 19  # no cap: the rim is open above the centre
    wt, tc, et = rim | oedema, rim.copy(), rim.copy()
    return np.stack([wt, tc, et]), centre, r < 13


def test_the_enclosed_centre_of_a_ring_enhancing_lesion_becomes_tumour_core():
    for open_top in (False, True):
        regions, centre, ball = _ring_lesion(open_top=open_top)
        scores = np.where(regions[0], 0.9, 0).astype(np.float32)
        prob = regions.astype(np.float32)
        before = labels_from_regions(regions_from_probabilities(prob, scores, PostProcessing(min_component_voxels=0,
                                                                                             fill_holes=False)))
        after = labels_from_regions(regions_from_probabilities(prob, scores, PostProcessing(min_component_voxels=0,
                                                                                            fill_holes=True)))
        inside = centre & (np.indices(centre.shape)[2] < 19)  # open top: the slices the rim still encloses
        assert (before[inside] == 0).all()
        assert (after[inside] == 1).all(), open_top  # necrotic / non-enhancing core
        assert (after[regions[2]] == 4).all()  # the enhancing rim stays enhancing
        assert (after[~ball] == 0).all()  # nothing outside the lesion's outer shell
        assert (after[ball & ~centre & ~regions[0]] <= 2).all()  # what the oedema shell encloses is at most oedema


def test_enclosed_voxels_are_the_holes_scipy_fills_in_3d_and_in_every_slice():
    """The labelling shortcut in `_enclosed` against the definition: `binary_fill_holes` of the volume and of
    each 2-D slice along each axis, on random masks of many densities and shapes."""
    from scipy import ndimage

    from gliomask.inference.regions import _enclosed

    rng = np.random.default_rng(3)
    for _ in range(60):
        mask = rng.random(tuple(rng.integers(2, 14, 3))) < rng.uniform(0.3, 0.8)
        mask[tuple(rng.integers(0, 2, 3))] = False
        expected = ndimage.binary_fill_holes(mask)
        for axis in range(3):
            for s in range(mask.shape[axis]):
                index = (slice(None),) * axis + (s,)
                expected[index] |= ndimage.binary_fill_holes(mask[index])
        assert np.array_equal(_enclosed(mask), expected & ~mask)
    assert not _enclosed(np.zeros((4, 4, 4), bool)).any() and not _enclosed(np.ones((4, 4, 4), bool)).any()


def test_cross_validation_folds_never_put_a_patient_on_both_sides():
    ids = [f"BraTS-GLI-{p:05d}-{t:03d}" for p in range(7) for t in range(1 + p % 3)] + [f"BRATS13_pat{i:04d}" for i in range(4)]
    groups = ["2023" if i.startswith("BraTS") else "2013" for i in ids]
    for seed in range(5):
        splits = cross_validation_splits(ids, groups, 3, seed)
        held = [c for _, val in splits for c in val]
        assert sorted(held) == sorted(ids)  # every case held out exactly once
        for train_ids, val in splits:
            patients = lambda cases: {c.rsplit("-", 1)[0] if c.startswith("BraTS") else c for c in cases}  # noqa: E731
            assert not patients(train_ids) & patients(val)
            assert {g for c, g in zip(ids, groups) if c in val} == {"2013", "2023"}  # stratified by set
