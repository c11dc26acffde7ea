"""The dense region head end to end: nested regions, probability and uncertainty maps on the input grid,
validation that stays within its share of the run, and evaluations that refuse training patients."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from conftest import run_cli
from gliomask.models.checkpoint import load_checkpoint
from gliomask.config import load_config
from gliomask.engine.train import train
from gliomask.inference.predict import predict_cases
from gliomask.inference.predictor import Predictor
from gliomask.io.brats import discover_cases

QUICK = ["train.workers=0", "train.batch_size=2", "train.threads=2", "train.warmup_steps=2", "train.lr=0.01",
         "infer.tta=false"]  # one pass: the flips are tested in test_predict_evaluate


@pytest.fixture(scope="module")
def run(prepared, tmp_path_factory):
    """Fold 0 of the 5-case preparation: 4 training patients, 1 validation patient; axial and coronal slices."""
    out = tmp_path_factory.mktemp("regions") / "run"
    summary = train(prepared, out, load_config(None, QUICK + ["train.epochs=2", "train.max_steps_per_epoch=6",
                                                              "train.val_every=1", "train.val_share=1.0",
                                                              "model.planes=[axial, coronal]"]),
                    fold=0, progress=False)
    return out, summary


def test_slices_of_every_plane_carry_their_own_labels(prepared):
    from gliomask.data.dataset import PreparedSlices
    from gliomask.data.planes import seg_view
    from gliomask.data.prepared import Prepared
    from gliomask.labels import regions_from_labels

    prep = Prepared.open(prepared)
    cid = prep.case_ids[0]
    data = PreparedSlices(prep, [cid], planes=("axial", "coronal", "sagittal"), context=1)
    dims = {dim for _, dim, _ in data.index}
    assert dims == {0, 2, 3}
    img, seg = prep.arrays(cid)
    for i in [k for k, (_, dim, _) in enumerate(data.index) if dim != 0][:: 7][:6]:
        _, dim, s = data.index[i]
        image, target = data[i]
        labels = np.asarray(seg_view(seg, dim)[s])
        assert image.shape == (3 * img.shape[1], *labels.shape)  # 2.5-D: three slices of every modality
        assert np.array_equal(target["regions"].numpy().astype(bool), regions_from_labels(labels))
        if target["masks"].shape[0]:
            assert not (target["masks"].numpy().any(axis=0) & ~(labels > 0)).any()


def test_checkpoint_records_where_it_came_from_and_what_was_tuned(run, prepared):
    out, summary = run
    ckpt = load_checkpoint(out / "best.pt")
    prov = ckpt["provenance"]
    meta = json.loads((prepared / "prepared.json").read_text())
    assert prov["prepared_fingerprint"] == meta["fingerprint"] and prov["fold"] == 0
    assert sorted(prov["val_cases"]) == sorted(meta["folds"][0])
    assert sorted(prov["train_cases"] + prov["val_cases"]) == sorted(c["case"] for c in meta["cases"])
    post = ckpt["postprocessing"]
    assert len(post["region_thresholds"]) == 3 and "min_lesion_score" in post
    assert "tuned" in summary["validation"]  # the final validation ran the post-processing search
    assert ckpt["planes"] == ["axial", "coronal"]
    from gliomask.errors import GliomaskError

    assert Predictor.from_checkpoint(out / "best.pt", planes=["axial"]).dims == (0,)
    with pytest.raises(GliomaskError, match="trained on planes"):
        Predictor.from_checkpoint(out / "best.pt", planes=["sagittal"])
    assert "region_thresholds" not in ckpt["config"]["infer"] or ckpt["config"]["infer"]["region_thresholds"] == [0.5] * 3


def test_regions_are_nested_and_probability_maps_lie_on_the_input_grid(run, brats2019, tmp_path):
    out, _ = run
    case = discover_cases(brats2019)[0]
    predictor = Predictor.from_checkpoint(out / "best.pt")
    pred = predictor.predict_case(case)
    wt, tc, et = pred.regions
    assert not (tc & ~wt).any() and not (et & ~tc).any()
    assert np.array_equal(pred.labels > 0, wt) and np.array_equal(np.isin(pred.labels, (1, 4)), tc)
    assert pred.probabilities.shape == (3, *pred.labels.shape)
    assert float(pred.probabilities.min()) >= 0 and float(pred.probabilities.max()) <= 1

    dest = tmp_path / "pred"
    predict_cases(brats2019, dest, out / "best.pt", case_ids=[case.case_id], overlays=False, progress=False,
                  probabilities=True)
    reference = nib.load(case.images["t1"])
    prob = nib.load(dest / f"{case.case_id}_prob.nii.gz")
    assert prob.shape == (*reference.shape, 3) and np.allclose(prob.affine, reference.affine)
    np.testing.assert_allclose(np.asarray(prob.dataobj), np.moveaxis(pred.probabilities, 0, -1), atol=1e-6)
    for r, name in enumerate(("whole", "core", "enhance")):
        unc = nib.load(dest / f"{case.case_id}_unc_{name}.nii.gz")
        assert unc.shape == reference.shape and np.allclose(unc.affine, reference.affine)
        data = np.asarray(unc.dataobj)
        assert data.dtype == np.uint8 and data.max() <= 100
        expected = np.rint(100 * (1 - np.abs(2 * pred.probabilities[r] - 1)))
        assert np.array_equal(data, expected.astype(np.uint8))
    lesions = json.loads((dest / f"{case.case_id}_lesions.json").read_text())["lesions"]
    assert all(0 <= les["mean_probability"] <= 1 for les in lesions)


def test_evaluation_refuses_patients_the_model_was_trained_on(run, brats2019, prepared, tmp_path):
    out, _ = run
    fold1 = json.loads((prepared / "prepared.json").read_text())["folds"][1]
    assert set(fold1) <= set(load_checkpoint(out / "best.pt")["provenance"]["train_cases"])
    dest = tmp_path / "pred"
    predict_cases(brats2019, dest, out / "best.pt", case_ids=fold1, overlays=False, progress=False)
    result = run_cli("evaluate", "--pred", dest, "--gt", brats2019, "--fold-of", prepared, "--fold", "1",
                     "-o", tmp_path / "eval")
    assert result.returncode == 2 and "trained on" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "eval").exists()
    from gliomask.errors import GliomaskError
    from gliomask.evaluation.coco_eval import coco_ap_for_checkpoint

    with pytest.raises(GliomaskError, match="trained on"):  # slice-level COCO AP on fold 1, training patients
        coco_ap_for_checkpoint(prepared, 1, out / "best.pt")


def test_validation_keeps_to_its_share_of_the_run(prepared, tmp_path):
    out = tmp_path / "run"
    summary = train(prepared, out, load_config(None, QUICK + ["train.epochs=6", "train.max_steps_per_epoch=3",
                                                              "train.val_every=1", "train.val_share=0.1"]),
                    fold=0, progress=False)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    periodic = [r for r in records if r["type"] == "val" and "tuned" not in r]
    for i, r in enumerate(periodic):  # each one was allowed by the share at the time it ran
        assert sum(p["seconds"] for p in periodic[:i + 1]) <= 0.1 * (r["elapsed"] + r["seconds"]) * 1.5 + 1.0
    assert [r for r in records if "tuned" in r]  # the final validation always runs
    assert summary["val_seconds"] >= sum(p["seconds"] for p in periodic)


def test_max_minutes_bounds_the_whole_run(prepared, tmp_path):
    out = tmp_path / "run"
    summary = train(prepared, out, load_config(None, QUICK + ["train.epochs=1000", "train.max_minutes=0.4"]),
                    fold=0, progress=False)
    # training kept at least a quarter of the budget and left the rest to the final validation and the search,
    # which stops at the budget's end: the overrun is what the validation took beyond its reserve, plus saving
    assert 0.25 * 24 - 1 <= summary["train_seconds"] <= 24 + 2
    assert summary["seconds"] <= 24 + max(0.0, summary["validation"]["seconds"] - 0.75 * 24) + 10
    assert summary["validation"]["tuned"] and "search_complete" in summary["validation"]


def _blob_outputs(prob_inside: float):
    """One case's validation outputs: a 6^3 reference cube inside a 16^3 crop whose region probabilities are
    ``prob_inside`` on the cube and 0 elsewhere, detection scores 0.9 there."""
    ref = np.zeros((3, 16, 16, 16), bool)
    ref[:, 5:11, 5:11, 5:11] = True
    prob = np.where(ref, prob_inside, 0.0).astype(np.float32)
    return [(prob, np.where(ref[0], 0.9, 0.0).astype(np.float32), ref)]


def test_postprocessing_search_stops_at_its_deadline():
    import time

    from gliomask.engine.validate import tune_postprocessing
    from gliomask.inference.core import PostProcessing

    outputs, start = _blob_outputs(0.35), PostProcessing()
    chosen, after = tune_postprocessing(outputs, start)  # no deadline: the 0.3 cut-off finds the cube
    assert after["search_complete"] and chosen.region_thresholds == (0.3, 0.3, 0.3) and after["dice_WT"] == 1.0
    chosen, after = tune_postprocessing(outputs, start, deadline=time.monotonic() - 1)
    assert not after["search_complete"] and chosen == start and after["dice_WT"] == 0.0


def test_validation_reserve_leaves_training_a_quarter_of_the_budget():
    from gliomask.engine.validate import validation_reserve

    assert validation_reserve(40.0, 1200.0) == (50.0, False)  # 1.25 x the estimate
    assert validation_reserve(40.0, 60.0) == (45.0, True)  # capped at three quarters of a one-minute budget
