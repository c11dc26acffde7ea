"""Prediction to NIfTI in the input's exact geometry, lesion reports, evaluation and its errors."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest
import torch

from conftest import expect_one_line_error, refused, run_cli
from gliomask.cli import main
from gliomask.data.synth import BRATS_AFFINE, synth_case
from gliomask.config import load_config
from gliomask.engine.train import train
from gliomask.errors import GliomaskError
from gliomask.inference.lesions import lesion_report
from gliomask.inference.predictor import Predictor
from gliomask.inference.regions import enforce_hierarchy
from gliomask.labels import regions_from_labels
from gliomask.models.checkpoint import load_checkpoint, save_checkpoint

RAS_AFFINE = np.array([[1.0, 0, 0, -90], [0, 1.0, 0, -126], [0, 0, 1.0, -72], [0, 0, 0, 1]])
OBLIQUE_AFFINE = np.array([[0.0, -0.9, 0.1, 100], [1.1, 0.0, 0.0, -50], [0.0, 0.1, 2.0, 10], [0, 0, 0, 1]])


@pytest.fixture(scope="session")
def checkpoint(prepared, tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "run"
    cfg = load_config(None, ["train.workers=0", "train.batch_size=2", "train.epochs=1", "train.max_steps_per_epoch=12",
                             "train.warmup_steps=4", "train.threads=2", "infer.default_score_threshold=0.3",
                             "infer.tta=false"])  # one pass for the many tests below; the flips are tested on their own
    train(prepared, run, cfg, fold=None, progress=False)
    return run / "best.pt"


def write_case(root, case_id, affine, *, sep="_", crop=True, seed=5, drop=()):
    """A synthetic case cut to a small block around its tumour, written with ``affine``."""
    images, seg = synth_case(1, seed, anatomy="simple")  # the crop below holds its tumour
    if crop:
        box = (slice(60, 156), slice(50, 146), slice(40, 64))
        images = {m: v[box].copy() for m, v in images.items()}
        seg = seg[box]
        for v in images.values():  # a cut through the head: zero its faces, as skull-stripped input has
            v[[0, -1]] = 0
            v[:, [0, -1]] = 0
            v[:, :, [0, -1]] = 0
    folder = root / case_id
    folder.mkdir(parents=True)
    names = {"t1": "t1", "t1ce": "t1ce", "t2": "t2", "flair": "flair"}
    for mod, data in images.items():
        if mod in drop:
            continue
        img = nib.Nifti1Image(data, affine)
        img.set_qform(affine, code=1)
        img.set_sform(affine, code=2)
        nib.save(img, str(folder / f"{case_id}{sep}{names[mod]}.nii.gz"))
    nib.save(nib.Nifti1Image(seg, affine), str(folder / f"{case_id}{sep}seg.nii.gz"))
    return folder


@pytest.mark.parametrize("affine,name", [(BRATS_AFFINE, "lps"), (RAS_AFFINE, "ras"), (OBLIQUE_AFFINE, "oblique")])
def test_prediction_keeps_exact_input_geometry(checkpoint, tmp_path, affine, name):
    folder = write_case(tmp_path / "in", f"case_{name}", affine)
    before = {p: p.read_bytes() for p in folder.iterdir()}
    result = run_cli("predict", "-i", folder, "-o", tmp_path / "out", "-m", checkpoint, "--quiet")
    assert result.returncode == 0, result.stderr
    src = nib.load(str(folder / f"case_{name}_flair.nii.gz"))
    out = nib.load(str(tmp_path / "out" / f"case_{name}_seg.nii.gz"))
    assert out.shape == src.shape
    assert out.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(out.affine, src.affine)
    np.testing.assert_array_equal(out.get_qform(), src.get_qform())
    np.testing.assert_array_equal(out.get_sform(), src.get_sform())
    assert int(out.header["qform_code"]) == int(src.header["qform_code"]) == 1
    assert int(out.header["sform_code"]) == int(src.header["sform_code"]) == 2
    assert out.header.get_zooms() == src.header.get_zooms()
    labels = np.asarray(out.dataobj)
    assert set(np.unique(labels).tolist()) <= {0, 1, 2, 4}
    assert {p: p.read_bytes() for p in folder.iterdir()} == before  # inputs untouched
    report = json.loads((tmp_path / "out" / f"case_{name}_lesions.json").read_text())
    voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000
    assert sum(les["voxels"] for les in report["lesions"]) == int((labels > 0).sum())
    for les in report["lesions"]:
        assert les["volume_ml"] == pytest.approx(les["voxels"] * voxel_ml, abs=1e-4)
    rows = list(csv.DictReader(open(tmp_path / "out" / f"case_{name}_lesions.csv")))
    assert len(rows) == len(report["lesions"])
    assert (tmp_path / "out" / f"case_{name}_overlay.png").stat().st_size > 1000
    assert not [p for p in (tmp_path / "out").iterdir() if ".tmp" in p.name]


def test_predictor_api_without_files_and_2023_labels(checkpoint, tmp_path):
    images, _ = synth_case(2, 5, anatomy="simple")
    images = {m: v[60:156, 50:146, 40:60].astype(np.float32) for m, v in images.items()}
    predictor = Predictor.from_checkpoint(checkpoint)
    pred = predictor.predict_case(images, affine=RAS_AFFINE)
    assert pred.labels.shape == (96, 96, 20) and pred.labels.dtype == np.uint8
    assert np.array_equal(regions_from_labels(pred.labels), pred.regions)
    wt, tc, et = pred.regions
    assert not (et & ~tc).any() and not (tc & ~wt).any()
    assert np.all(pred.scores[~wt] == 0)
    # flip TTA follows the checkpoint's infer.tta (this one's: false) unless the caller says otherwise
    assert not predictor.tta
    flipped = Predictor.from_checkpoint(checkpoint, tta=True)
    assert flipped.tta
    twice = flipped.predict_case(images, affine=RAS_AFFINE)
    assert twice.labels.shape == pred.labels.shape
    assert not np.allclose(twice.probabilities, pred.probabilities)  # the flipped pass is averaged in
    meta = load_checkpoint(checkpoint)
    del meta["config"]["infer"]["tta"]  # a checkpoint written before infer.tta existed: on, the default
    assert Predictor(meta).tta and not Predictor(meta, tta=False).tta
    folder = write_case(tmp_path / "in", "BraTS-GLI-00009-000", BRATS_AFFINE, sep="-")
    for f in folder.iterdir():  # 2023 names: t1n, t1c, t2w, t2f
        f.rename(f.with_name(f.name.replace("-t1ce", "-t1c").replace("-t1.", "-t1n.").replace("-t2.", "-t2w.").replace("-flair", "-t2f")))
    result = run_cli("predict", "-i", folder, "-o", tmp_path / "out", "-m", checkpoint, "--labels", "brats2023",
                     "--no-overlays", "--quiet")
    assert result.returncode == 0, result.stderr
    labels = np.asarray(nib.load(str(tmp_path / "out" / "BraTS-GLI-00009-000_seg.nii.gz")).dataobj)
    assert set(np.unique(labels).tolist()) <= {0, 1, 2, 3}
    # without --labels the output follows the input's edition: the same file as with --labels brats2023
    result = run_cli("predict", "-i", folder, "-o", tmp_path / "auto", "-m", checkpoint, "--no-overlays", "--quiet")
    assert result.returncode == 0, result.stderr
    auto = np.asarray(nib.load(str(tmp_path / "auto" / "BraTS-GLI-00009-000_seg.nii.gz")).dataobj)
    assert np.array_equal(auto, labels)
    report = json.loads((tmp_path / "auto" / "BraTS-GLI-00009-000_lesions.json").read_text())
    assert report["label_convention"] == "brats2023"


def test_hierarchy_enforced_on_random_maps():
    rng = np.random.default_rng(0)
    raw = rng.random((3, 20, 20, 10)) > 0.6
    wt, tc, et = enforce_hierarchy(raw, min_voxels=5)
    assert not (et & ~tc).any() and not (tc & ~wt).any()


def test_lesion_volumes_and_positions_with_anisotropic_spacing():
    labels = np.zeros((30, 30, 12), np.uint8)
    labels[2:8, 3:9, 1:4] = 2
    labels[4:6, 5:7, 2:3] = 4
    labels[20:28, 20:22, 5:11] = 1
    affine = np.diag([0.5, 0.8, 3.0, 1.0])
    affine[:3, 3] = [10, -20, 5]
    lesions = lesion_report(labels, affine, (0.5, 0.8, 3.0))
    assert [les["voxels"] for les in lesions] == [108, 96]
    voxel_ml = 0.5 * 0.8 * 3.0 / 1000
    first, second = lesions  # numbered by decreasing volume
    assert first["volume_ml"] == pytest.approx(108 * voxel_ml) and second["volume_ml"] == pytest.approx(96 * voxel_ml)
    assert first["enhancing_ml"] == pytest.approx(4 * voxel_ml) and first["oedema_ml"] == pytest.approx(104 * voxel_ml)
    assert second["tumour_core_ml"] == pytest.approx(96 * voxel_ml)
    assert second["necrotic_nonenhancing_core_ml"] == pytest.approx(96 * voxel_ml)
    centre = np.array([23.5, 20.5, 7.5])
    assert [second[f"centroid_{a}_voxel"] for a in "ijk"] == pytest.approx(centre.tolist())
    assert [second[f"centroid_{a}_ras_mm"] for a in "xyz"] == pytest.approx((affine[:3, :3] @ centre + affine[:3, 3]).tolist())
    assert [second[f"bbox_{a}_min_voxel"] for a in "ijk"] == [20, 20, 5]
    assert [second[f"bbox_{a}_max_voxel"] for a in "ijk"] == [27, 21, 10]
    assert [second[f"bbox_{a}_min_ras_mm"] for a in "xyz"] == [20.0, -4.0, 20.0]
    assert [second[f"bbox_{a}_max_ras_mm"] for a in "xyz"] == [23.5, -3.2, 35.0]
    assert (second["first_slice"], second["last_slice"]) == (5, 10)


def test_coco_ap_of_perfect_predictions_is_one(prepared):
    from gliomask.data.coco import coco_dict
    from gliomask.data.prepared import Prepared
    from gliomask.evaluation.coco_eval import coco_ap

    prep = Prepared.open(prepared)
    gt = coco_dict(prep, prep.case_ids[:2])
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0, "bbox": a["bbox"],
                "segmentation": a["segmentation"]} for a in gt["annotations"]]
    ap = coco_ap(gt, results)
    assert ap["bbox_AP"] == pytest.approx(1.0) and ap["segm_AP"] == pytest.approx(1.0)
    worse = coco_ap(gt, results[::2])
    assert worse["segm_AP"] < 1.0


def test_evaluate_cli_writes_metrics_summary_and_report(tmp_path, brats2019):
    pred = tmp_path / "pred"
    pred.mkdir()
    from gliomask.io.brats import discover_cases

    cases = discover_cases(brats2019)[:2]
    sub = tmp_path / "gt"
    sub.mkdir()
    for case in cases:
        (sub / case.case_id).symlink_to(case.seg.parent)
        img = nib.load(str(case.seg))
        nib.save(img, str(pred / f"{case.case_id}_seg.nii.gz"))  # ground truth as prediction
    result = run_cli("evaluate", "--pred", pred, "--gt", sub, "-o", tmp_path / "ev", "--quiet")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    for name in ("WT", "TC", "ET"):
        assert summary[f"dice_{name}"]["mean"] == 1.0 and summary[f"hd95_{name}"]["mean"] == 0.0
        assert summary[f"lesion_sensitivity_{name}"] == 1.0
    rows = list(csv.DictReader(open(tmp_path / "ev" / "metrics.csv")))
    assert [r["case"] for r in rows] == [c.case_id for c in cases]
    page = (tmp_path / "ev" / "index.html").read_text()
    assert "overlays/" in page and "dice_boxplot.png" in page and "Dice WT" in page
    assert (tmp_path / "ev" / "dice_boxplot.png").is_file()


def test_evaluate_errors(tmp_path):
    gt = tmp_path / "gt"
    write_case(gt, "c1", BRATS_AFFINE)
    pred = tmp_path / "pred"
    pred.mkdir()
    expect_one_line_error(run_cli("evaluate", "--pred", pred, "--gt", gt, "-o", tmp_path / "ev"), "no prediction for case c1")
    assert not (tmp_path / "ev").exists()
    nib.save(nib.Nifti1Image(np.zeros((96, 96, 23), np.uint8), BRATS_AFFINE), str(pred / "c1_seg.nii.gz"))
    expect_one_line_error(run_cli("evaluate", "--pred", pred, "--gt", gt, "-o", tmp_path / "ev"),
                    str(pred / "c1_seg.nii.gz"), "differs from ground truth")
    assert not (tmp_path / "ev").exists()


def test_predict_errors(checkpoint, tmp_path, capsys):
    # the checkpoint reads any subset (modality flags): a case with none of its modalities is refused
    folder = write_case(tmp_path / "in", "c2", BRATS_AFFINE, drop=("t1", "t1ce", "t2", "flair"))
    refused(capsys, ["predict", "-i", folder, "-o", tmp_path / "out", "-m", checkpoint],
            "needs at least one of modalities", "lacks t1, t1ce, t2, flair", watch=[tmp_path, checkpoint])
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"PK\x03\x04 broken zip")
    folder = write_case(tmp_path / "in2", "c3", BRATS_AFFINE)
    refused(capsys, ["predict", "-i", folder, "-o", tmp_path / "out", "-m", junk], str(junk), "unreadable", watch=[tmp_path])
    refused(capsys, ["predict", "-i", folder, "-o", tmp_path / "out", "-m", tmp_path / "none.pt"], "not found",
            watch=[tmp_path])


def test_postprocess_drops_faint_lesions_and_relabels_scant_et():
    from gliomask.inference.regions import postprocess

    regions = np.zeros((3, 30, 30, 10), bool)
    regions[0, 2:12, 2:12, 2:8] = True  # lesion A
    regions[1, 4:10, 4:10, 3:7] = True
    regions[2, 5:7, 5:7, 4:6] = True  # 8 ET voxels
    regions[0, 20:26, 20:26, 2:8] = True  # lesion B, only faint detections
    scores = np.zeros(regions.shape[1:], np.float32)
    scores[regions[0]] = 0.2
    scores[2:12, 2:12, 2:8] = 0.9
    out = postprocess(regions, scores, min_voxels=0, min_lesion_score=0.5)
    assert out[0].sum() == 600 and not out[0, 20:26, 20:26].any()
    assert out[2].sum() == 8
    scant = postprocess(regions, scores, min_voxels=0, min_lesion_score=0.5, min_case_et_voxels=9)
    assert not scant[2].any() and scant[1].sum() == regions[1].sum()  # ET became core, core kept
    kept = postprocess(regions, scores, min_voxels=0, min_lesion_score=0.5, min_case_et_voxels=8)
    assert kept[2].sum() == 8


def test_onnx_export_predicts_like_pytorch(checkpoint, brats2019, tmp_path):
    """`gliomask export` then `predict --backend onnx`: same probabilities, label maps and lesions."""
    pytest.importorskip("onnxruntime")  # CI installs it with .[test]
    onnx_path = tmp_path / "model.onnx"
    done = run_cli("export", "-m", checkpoint, "-o", onnx_path)
    assert done.returncode == 0, done.stderr
    case = sorted(brats2019.glob("*GG/*"))[0]
    torch_pred = Predictor.from_checkpoint(checkpoint).predict_case(_case_of(case))
    onnx_predictor = Predictor.from_checkpoint(onnx_path)  # chosen by the suffix
    assert type(onnx_predictor.model).__name__ == "OnnxSliceModel"
    onnx_pred = onnx_predictor.predict_case(_case_of(case))
    # The 12-step model need not find a lesion above threshold; its probabilities must not be all ~0,
    # or the comparison would mean little.
    assert float(torch_pred.probabilities.max()) > 0.2
    np.testing.assert_allclose(onnx_pred.probabilities, torch_pred.probabilities, atol=2e-3)
    for r in range(3):
        a, b = onnx_pred.regions[r], torch_pred.regions[r]
        total = a.sum() + b.sum()
        assert total == 0 or 2 * (a & b).sum() / total >= 0.99
    assert len(onnx_pred.lesions) == len(torch_pred.lesions)
    out = tmp_path / "pred"  # and through the CLI, by suffix
    done = run_cli("predict", "-i", case, "-o", out, "-m", onnx_path, "--no-overlays", "--quiet")
    assert done.returncode == 0, done.stderr
    assert (out / f"{case.name}_seg.nii.gz").is_file()


@pytest.fixture(scope="module")
def onnx_model(checkpoint, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from gliomask.models.onnx_export import export_onnx

    return export_onnx(checkpoint, tmp_path_factory.mktemp("onnx") / "model.onnx")


def _tampered(source, out, edit):
    import onnx

    proto = onnx.load(str(source))
    edit(proto)
    onnx.save(proto, str(out))
    return out


def _set_meta(proto, key, value):
    for entry in proto.metadata_props:
        if entry.key == key:
            entry.value = value


def _reversed_modalities(proto):
    meta = json.loads(next(e.value for e in proto.metadata_props if e.key == "gliomask"))
    _set_meta(proto, "gliomask", json.dumps({**meta, "modalities": meta["modalities"][::-1]}))


def _three_modalities(proto):
    meta = json.loads(next(e.value for e in proto.metadata_props if e.key == "gliomask"))
    _set_meta(proto, "gliomask", json.dumps({**meta, "modalities": meta["modalities"][:3]}))


def _unrelated_graph(proto):
    import onnx
    from onnx import TensorProto, helper

    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [16, "h", "w"])
    regions = helper.make_tensor_value_info("regions", TensorProto.FLOAT, [16, "h", "w"])
    other = helper.make_model(helper.make_graph([helper.make_node("Identity", ["image"], ["regions"])], "other",
                                                [image], [regions]), opset_imports=[helper.make_opsetid("", 17)])
    proto.graph.CopyFrom(other.graph)
    onnx.checker.check_model(proto)


@pytest.mark.parametrize("edit,needle", [
    pytest.param(_reversed_modalities, "changed after `gliomask export`", id="modality order reversed"),
    pytest.param(_three_modalities, "changed after `gliomask export`", id="wrong modality count"),
    pytest.param(lambda p: _set_meta(p, "gliomask", "{not json"), "not JSON", id="invalid JSON"),
    pytest.param(lambda p: _set_meta(p, "gliomask", "[1, 2]"), "not a mapping", id="a list"),
    pytest.param(_unrelated_graph, "changed after `gliomask export`", id="unrelated graph with copied metadata"),
    pytest.param(lambda p: p.metadata_props.pop(), "no digest", id="digest removed"),
])
def test_tampered_onnx_exports_are_refused_with_one_line(onnx_model, brats2019, tmp_path, capsys, edit, needle):
    bad = _tampered(onnx_model, tmp_path / "tampered.onnx", edit)
    case = sorted(brats2019.glob("*GG/*"))[0]
    refused(capsys, ["predict", "-i", case, "-o", tmp_path / "pred", "-m", bad, "--quiet"], "tampered.onnx", needle,
            watch=[tmp_path, case])


def test_export_refuses_what_it_cannot_export(checkpoint, tmp_path):
    not_a_checkpoint = tmp_path / "notes.pt"
    not_a_checkpoint.write_bytes(b"not a checkpoint")
    done = run_cli("export", "-m", not_a_checkpoint, "-o", tmp_path / "m.onnx")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "notes.pt" in done.stderr
    done = run_cli("export", "-m", checkpoint, "-o", tmp_path / "m.txt")
    assert done.returncode == 2 and ".onnx" in done.stderr
    assert not list(tmp_path.glob("m.*"))
    done = run_cli("predict", "-i", tmp_path, "-o", tmp_path / "p", "-m", checkpoint, "--backend", "onnx")
    assert done.returncode == 2 and "gliomask export" in done.stderr


def _case_of(folder):
    from gliomask.io.brats import discover_cases

    return discover_cases(folder)[0]


def test_predict_reports_each_case_as_it_finishes_in_batch_logs(checkpoint, tmp_path):
    for i, cid in enumerate(("case_a", "case_b", "case_c")):
        write_case(tmp_path / "in", cid, BRATS_AFFINE, seed=5 + i)
    from gliomask.inference.predict import predict_cases

    seen = []

    def on_case(result):  # called before the next case is predicted: its outputs do not exist yet
        seen.append(result["case"])
        later = {"case_a": "case_b", "case_b": "case_c"}.get(result["case"])
        assert (tmp_path / "api" / f"{result['case']}_report.html").is_file()
        assert later is None or not (tmp_path / "api" / f"{later}_seg.nii.gz").exists()

    predict_cases(tmp_path / "in", tmp_path / "api", checkpoint, progress=False, on_case=on_case)
    assert seen == ["case_a", "case_b", "case_c"]
    # as under `nohup gliomask predict ... > log 2>&1`: stdout and stderr are files, not a terminal
    log = tmp_path / "log"
    with open(log, "w") as fh:
        import subprocess
        import sys

        result = subprocess.run([sys.executable, "-m", "gliomask", "predict", "-i", str(tmp_path / "in"), "-o",
                                 str(tmp_path / "out"), "-m", str(checkpoint), "--no-overlays"],
                                stdout=fh, stderr=subprocess.STDOUT, timeout=900)
    assert result.returncode == 0
    lines = log.read_text().splitlines()
    case_lines = [ln for ln in lines if ln.startswith("case_") and "lesion(s)" in ln]
    assert [ln.split(":")[0] for ln in case_lines] == ["case_a", "case_b", "case_c"]
    assert any(ln.startswith("predict: 3/3 done") for ln in lines), lines  # a plain progress line, no bar
    assert "\r" not in log.read_text()


def _reorient(array, affine, codes):
    ornt = nib.orientations.ornt_transform(nib.io_orientation(affine), nib.orientations.axcodes2ornt(codes))
    img = nib.Nifti1Image(array, affine).as_reoriented(ornt)
    return np.asarray(img.dataobj), img.affine


def test_inputs_in_other_orientations_and_spacings_are_mapped_to_the_training_geometry(checkpoint):
    from gliomask.data.geometry import resample_to_shape

    images, _ = synth_case(1, 5, anatomy="simple")
    box = (slice(60, 156), slice(50, 146), slice(36, 68))
    images = {m: v[box].astype(np.float32) for m, v in images.items()}
    # one network pass: the geometry is under test, not the 12-step model's FLAIR + T1ce whole-tumour pass
    predictor = Predictor.from_checkpoint(checkpoint, whole_tumour_modalities=[])
    assert predictor.meta["geometry"] == {"orientation": "LPS", "spacing": [1.0, 1.0, 1.0]}
    given = predictor.predict_case(images, affine=BRATS_AFFINE)
    assert given.probabilities[0].max() > 0.2  # the model sees this tumour: the comparisons below mean something
    # the same patient stored RAS with permuted axes: the same answer, voxel for voxel, after mapping back
    permuted = {m: _reorient(v, BRATS_AFFINE, ("S", "R", "A"))[0] for m, v in images.items()}
    affine_p = _reorient(images["t1"], BRATS_AFFINE, ("S", "R", "A"))[1]
    pred_p = predictor.predict_case(permuted, affine=affine_p)
    assert pred_p.labels.shape == permuted["t1"].shape  # on the input's own grid
    back, back_affine = _reorient(pred_p.labels, affine_p, ("L", "P", "S"))
    np.testing.assert_allclose(back_affine, BRATS_AFFINE)
    assert np.array_equal(back, given.labels)
    prob_back = _reorient(pred_p.probabilities[0], affine_p, ("L", "P", "S"))[0]
    np.testing.assert_allclose(prob_back, given.probabilities[0], atol=1e-4)
    # a 12-step test model may call no lesion: compare its likeliest tumour region, which is never empty
    cut = 0.5 * given.probabilities[0].max()
    a, b = given.probabilities[0] > cut, prob_back > cut
    assert a.sum() > 100 and 2 * (a & b).sum() / (a.sum() + b.sum()) >= 0.98
    # the same patient at 2 mm: resampled to the training spacing and back; output on the 2 mm grid
    coarse = {m: resample_to_shape(v, (48, 48, 16), order=1) for m, v in images.items()}
    affine_2 = BRATS_AFFINE.copy()
    affine_2[:3, :3] *= 2
    pred_2 = predictor.predict_case(coarse, affine=affine_2)
    assert pred_2.labels.shape == (48, 48, 16)
    reference = resample_to_shape(given.probabilities[0], (48, 48, 16), order=1)
    assert np.corrcoef(reference.ravel(), pred_2.probabilities[0].ravel())[0, 1] > 0.8


def test_implausible_inputs_are_flagged_with_one_line_naming_the_file(checkpoint, tmp_path):
    folder = write_case(tmp_path / "noisy", "case_n", BRATS_AFFINE)
    flair = folder / "case_n_flair.nii.gz"
    img = nib.load(str(flair))
    data = np.asarray(img.dataobj).astype(np.float32)
    rng = np.random.default_rng(0)
    data[data == 0] = rng.uniform(1, 30, int((data == 0).sum()))  # mild noise: not skull-stripped
    nib.save(nib.Nifti1Image(data, img.affine), str(flair))
    before = {p: p.read_bytes() for p in folder.iterdir()}
    result = run_cli("predict", "-i", folder, "-o", tmp_path / "out_n", "-m", checkpoint, "--quiet")
    expect_one_line_error(result, str(flair), "background is not zero", "--force")
    assert not (tmp_path / "out_n").exists()
    blank = write_case(tmp_path / "blank", "case_b", BRATS_AFFINE)
    t1ce = blank / "case_b_t1ce.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(nib.load(str(t1ce)).shape, np.int16), BRATS_AFFINE), str(t1ce))
    result = run_cli("predict", "-i", blank, "-o", tmp_path / "out_b", "-m", checkpoint, "--quiet")
    expect_one_line_error(result, str(t1ce), "constant")
    assert not (tmp_path / "out_b").exists()
    same = write_case(tmp_path / "same", "case_s", BRATS_AFFINE)
    (same / "case_s_t2.nii.gz").write_bytes((same / "case_s_flair.nii.gz").read_bytes())
    expect_one_line_error(run_cli("prepare", "--brats", same, "--out", tmp_path / "prep_s", "--quiet"),
                          "same voxels", "two modality names")
    assert not (tmp_path / "prep_s").exists()
    forced = run_cli("predict", "-i", folder, "-o", tmp_path / "out_f", "-m", checkpoint, "--quiet", "--force",
                     "--no-overlays")
    assert forced.returncode == 0, forced.stderr
    assert "warning" in forced.stderr and str(flair) in forced.stderr
    assert (tmp_path / "out_f" / "case_n_seg.nii.gz").is_file()
    assert {p: p.read_bytes() for p in folder.iterdir()} == before


def test_swapped_modality_files_are_flagged_and_files_as_named_are_not(checkpoint, tmp_path, capsys):
    from gliomask.models.checkpoint import load_checkpoint

    assert np.asarray(load_checkpoint(checkpoint)["modality_correlations"]).shape == (4, 4)
    folder = write_case(tmp_path / "in", "case_w", BRATS_AFFINE, crop=False)
    t2, flair = folder / "case_w_t2.nii.gz", folder / "case_w_flair.nii.gz"
    t2_bytes = t2.read_bytes()
    t2.write_bytes(flair.read_bytes())
    flair.write_bytes(t2_bytes)  # the T2 image now carries the FLAIR name, and the other way round
    line = refused(capsys, ["predict", "-i", folder, "-o", tmp_path / "out", "-m", checkpoint, "--quiet"],
                   "are the t2 and flair files swapped?", "--force", watch=[tmp_path, checkpoint])
    assert str(t2) in line  # the pair named is the pair that was swapped, the file first of it
    flair.write_bytes(t2.read_bytes())
    t2.write_bytes(t2_bytes)  # as named again: predicted
    assert main(["predict", "-i", str(folder), "-o", str(tmp_path / "out"), "-m", str(checkpoint), "--quiet",
                 "--no-overlays"]) == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "case_w_seg.nii.gz").is_file()


def test_predict_takes_the_files_of_one_case(checkpoint, tmp_path):
    folder = write_case(tmp_path / "in", "case_f", BRATS_AFFINE)
    files = {m: folder / f"case_f_{m}.nii.gz" for m in ("t1", "t1ce", "t2", "flair")}
    result = run_cli("predict", *[x for m, f in files.items() for x in (f"--{m}", f)], "-o", tmp_path / "files",
                     "-m", checkpoint, "--no-overlays", "--quiet")
    assert result.returncode == 0, result.stderr
    (tmp_path / "folder").mkdir()
    stale = tmp_path / "folder" / ".case_f_seg.nii.gz.k3j9x2.tmp.nii.gz"  # as a kill -9 mid-save leaves it
    stale.write_bytes(b"half a file")
    folder_run = run_cli("predict", "-i", folder, "-o", tmp_path / "folder", "-m", checkpoint, "--no-overlays", "--quiet")
    assert folder_run.returncode == 0, folder_run.stderr
    assert not stale.exists() and "removed 1 unfinished temporary file" in folder_run.stderr and stale.name in folder_run.stderr
    a = np.asarray(nib.load(str(tmp_path / "files" / "case_f_seg.nii.gz")).dataobj)
    b = np.asarray(nib.load(str(tmp_path / "folder" / "case_f_seg.nii.gz")).dataobj)
    assert np.array_equal(a, b)
    expect_one_line_error(run_cli("predict", "-i", folder, "--t1", files["t1"], "-o", tmp_path / "x", "-m", checkpoint),
                          "either -i")
    t1_only = run_cli("predict", "--t1", files["t1"], "-o", tmp_path / "y", "-m", checkpoint, "--no-overlays", "--quiet")
    assert t1_only.returncode == 0 and (tmp_path / "y" / "case_f_seg.nii.gz").is_file(), t1_only.stderr  # any subset


def test_each_case_is_read_once_and_under_torchrun_each_rank_checks_its_own_share(checkpoint, tmp_path, monkeypatch):
    from gliomask.inference import predict as predict_module

    root = tmp_path / "cases"
    for cid in ("CaseA", "CaseB"):
        write_case(root, cid, BRATS_AFFINE)
    reads = []
    original = predict_module.Predictor.load

    def counting_load(self, case):
        reads.append(case.case_id)
        return original(self, case)

    monkeypatch.setattr(predict_module.Predictor, "load", counting_load)
    predict_module.predict_cases(root, tmp_path / "out", checkpoint, device="cpu", overlays=False, progress=False)
    assert sorted(reads) == ["CaseA", "CaseB"]  # read by the checks, predicted from memory
    # rank 1 of 2: only its share is read, and a bad case in rank 0's share does not stop it
    (root / "CaseA" / "CaseA_t2.nii.gz").write_bytes(b"not a nifti")
    reads.clear()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    results = predict_module.predict_cases(root, tmp_path / "out_rank1", checkpoint, device="cpu", overlays=False,
                                           progress=False)
    assert reads == ["CaseB"] and [r["case"] for r in results] == ["CaseB"]


def test_the_flair_t1ce_pass_is_made_by_default_only_for_models_that_had_such_patients(checkpoint):
    """Trained on four-modality cases only, the model met FLAIR + T1ce only through modality dropout: by
    default one pass (the demo's whole tumour fell from 0.900 to 0.635 with the second); asked for, two."""
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
    assert predictor.meta["trained_modality_sets"] == [["t1", "t1ce", "t2", "flair"]]
    assert predictor.whole_tumour_modalities == ()
    asked = Predictor.from_checkpoint(checkpoint, device="cpu", whole_tumour_modalities=["flair", "t1ce"])
    assert asked.whole_tumour_modalities == ("t1ce", "flair")


def test_predict_and_evaluate_a_2024_post_treatment_case(checkpoint, tmp_path):
    from gliomask.data.synth import synthesize

    gt = tmp_path / "gt"
    synthesize(gt, cases=1, start=3, seed=3, edition="2024")
    case_id = "BraTS-GLI-00003-000"
    stored = np.asarray(nib.load(str(gt / case_id / f"{case_id}-seg.nii.gz")).dataobj)
    assert (stored == 4).any()  # the reference holds a resection cavity
    result = run_cli("predict", "-i", gt / case_id, "-o", tmp_path / "pred", "-m", checkpoint, "--labels", "brats2024",
                     "--no-overlays", "--quiet")
    assert result.returncode == 0, result.stderr
    labels = np.asarray(nib.load(str(tmp_path / "pred" / f"{case_id}_seg.nii.gz")).dataobj)
    assert labels.shape == stored.shape and set(np.unique(labels).tolist()) <= {0, 1, 2, 3, 4}
    report = json.loads((tmp_path / "pred" / f"{case_id}_lesions.json").read_text())
    assert report["label_convention"] == "brats2024"
    result = run_cli("evaluate", "--pred", tmp_path / "pred", "--gt", gt, "-o", tmp_path / "ev", "--no-report", "--quiet")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["standard"] == "brats2024" and "dice_RC" in summary and "dice_SNFH" in summary
    rows = list(csv.DictReader(open(tmp_path / "ev" / "metrics.csv")))
    # the predicted tumour volume is what the label map holds outside any cavity label
    voxel_ml = 0.001
    assert float(rows[0]["volume_pred_ml_WT"]) == pytest.approx(np.isin(labels, [1, 2, 3]).sum() * voxel_ml, abs=1e-3)
    assert float(rows[0]["volume_gt_ml_WT"]) == pytest.approx(np.isin(stored, [1, 2, 3]).sum() * voxel_ml, abs=1e-3)


# Several checkpoints predicting as one ensemble (`Predictor.from_checkpoints`, `gliomask predict -m A B`)

@pytest.fixture(scope="module")
def second_checkpoint(checkpoint, tmp_path_factory):
    """The trained model with every floating weight of its region head scaled: another model, same contract."""
    ckpt = load_checkpoint(checkpoint)
    state = ckpt["model"]
    changed = 0
    for key, value in state.items():
        if key.startswith("region_head") and torch.is_floating_point(value) and key.endswith("weight"):
            state[key] = value * 1.5
            changed += 1
    assert changed, "no region-head weight found to change"
    return save_checkpoint(ckpt, tmp_path_factory.mktemp("second") / "best.pt")


@pytest.fixture(scope="module")
def ensemble_images(tmp_path_factory):
    from gliomask.io.brats import discover_cases, load_case

    root = tmp_path_factory.mktemp("cases")
    write_case(root, "CaseE", BRATS_AFFINE)
    case = discover_cases(root)[0]
    return load_case(case, ("t1", "t1ce", "t2", "flair"), with_seg=False).images.astype(np.float32)


def test_an_ensemble_averages_its_models_probabilities_and_scores(checkpoint, second_checkpoint, ensemble_images):
    one = Predictor.from_checkpoint(checkpoint, device="cpu")
    two = Predictor.from_checkpoint(second_checkpoint, device="cpu")
    both = Predictor.from_checkpoints([checkpoint, second_checkpoint], device="cpu")
    p1, s1, _ = one.detect(ensemble_images)
    p2, s2, _ = two.detect(ensemble_images)
    pe, se, _ = both.detect(ensemble_images)
    assert not np.allclose(p1, p2, atol=1e-3)  # two different models ...
    np.testing.assert_allclose(pe, (p1 + p2) / 2, atol=1e-5)  # ... and the ensemble is their mean
    np.testing.assert_allclose(se, (s1 + s2) / 2, atol=1e-5)
    assert both.post == one.post  # the first model's post-processing
    # one path (or a list of one) is that model alone
    alone = Predictor.from_checkpoints(checkpoint, device="cpu")
    assert not alone.others
    np.testing.assert_array_equal(alone.detect(ensemble_images)[0], p1)


def test_models_that_read_cases_differently_are_refused(checkpoint, tmp_path):
    ckpt = load_checkpoint(checkpoint)
    ckpt["normalization"] = {**ckpt["normalization"], "clip_percentiles": [0.0, 99.0]}
    other = save_checkpoint(ckpt, tmp_path / "other.pt")
    with pytest.raises(GliomaskError, match="normalisation") as err:
        Predictor.from_checkpoints([checkpoint, other], device="cpu")
    assert str(other) in str(err.value)
    with pytest.raises(GliomaskError, match="no checkpoint"):
        Predictor.from_checkpoints([], device="cpu")


def test_predict_cli_takes_several_models_and_names_them_in_the_report(checkpoint, second_checkpoint, tmp_path):
    write_case(tmp_path / "in", "CaseE", BRATS_AFFINE)
    result = run_cli("predict", "-i", tmp_path / "in", "-o", tmp_path / "out", "-m", checkpoint, second_checkpoint,
                     "--no-overlays", "--quiet")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "CaseE_seg.nii.gz").is_file()
    report = json.loads((tmp_path / "out" / "CaseE_lesions.json").read_text())
    assert report["checkpoint"] == f"{checkpoint}, {second_checkpoint}"
    missing = run_cli("predict", "-i", tmp_path / "in", "-o", tmp_path / "out2", "-m", checkpoint,
                      tmp_path / "nowhere.pt", "--quiet")
    expect_one_line_error(missing, "nowhere.pt")
    assert not (tmp_path / "out2").exists()
