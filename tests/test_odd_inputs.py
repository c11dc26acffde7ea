"""Odd inputs of the second probe (0.2): each is refused with one line naming the file and the problem,
nothing written, inputs intact; or, where the input is valid but implausible, flagged."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from conftest import refused, write_small_case
from gliomask.errors import GliomaskError
from gliomask.inference.predictor import Predictor


@pytest.fixture(scope="module")
def tiny_checkpoint(prepared, tmp_path_factory):
    from gliomask.config import load_config
    from gliomask.engine.train import train

    run = tmp_path_factory.mktemp("odd_inputs_run") / "run"
    cfg = load_config(None, ["train.workers=0", "train.batch_size=1", "train.epochs=1", "train.max_steps_per_epoch=1",
                             "train.warmup_steps=1", "infer.tune=false", "infer.tta=false"])  # one pass
    train(prepared, run, cfg, fold=None, progress=False)
    return run / "best.pt"


def _replace(path, data, dtype=None):
    img = nib.load(str(path))
    header = img.header.copy()
    if dtype is not None:
        header.set_data_dtype(dtype)
    nib.save(nib.Nifti1Image(data, img.affine, header=header), str(path))


def test_an_rgb_nifti_is_refused_with_one_line(tmp_path, capsys):
    folder = write_small_case(tmp_path / "data", "RGB")
    path = folder / "RGB_t1.nii.gz"
    grey = np.asanyarray(nib.load(str(path)).dataobj)
    rgb = np.zeros(grey.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["R"] = (grey % 256).astype(np.uint8)
    nib.save(nib.Nifti1Image(rgb, nib.load(str(path)).affine), str(path))
    refused(capsys, ["prepare", "--brats", tmp_path / "data", "--out", tmp_path / "out"], "RGB_t1.nii.gz", "colour",
            watch=[tmp_path])


def test_a_complex_nifti_is_refused_with_one_line(tmp_path, capsys):
    folder = write_small_case(tmp_path / "data", "CPX")
    path = folder / "CPX_flair.nii.gz"
    data = np.asanyarray(nib.load(str(path)).dataobj).astype(np.complex64) * (1 + 1j)
    _replace(path, data, dtype=np.complex64)
    refused(capsys, ["prepare", "--brats", tmp_path / "data", "--out", tmp_path / "out"], "CPX_flair.nii.gz",
            "complex", watch=[tmp_path])


def test_a_zero_voxel_size_is_refused_not_taken_as_1_mm(tmp_path, capsys):
    import gzip
    import struct

    folder = write_small_case(tmp_path / "data", "ZERO")
    path = folder / "ZERO_t2.nii.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))  # nibabel would not write a zero pixdim itself
    struct.pack_into("<f", raw, 80, 0.0)  # pixdim[1] (the header's pixdim array starts at byte 76)
    path.write_bytes(gzip.compress(bytes(raw)))
    refused(capsys, ["prepare", "--brats", tmp_path / "data", "--out", tmp_path / "out"], "ZERO_t2.nii.gz",
            "voxel size is 0", watch=[tmp_path])


def test_an_inverted_scan_with_negative_brain_intensities_is_flagged(tiny_checkpoint, brats2019, tmp_path, capsys):
    import shutil

    case = sorted(p for p in brats2019.rglob("*") if p.is_dir() and list(p.glob("*_flair.nii.gz")))[0]
    copy = tmp_path / "data" / case.name
    shutil.copytree(case, copy)
    path = copy / f"{case.name}_t1ce.nii.gz"
    data = np.asanyarray(nib.load(str(path)).dataobj)
    _replace(path, (-data).astype(data.dtype))
    refused(capsys, ["predict", "-i", copy, "-o", tmp_path / "pred", "-m", tiny_checkpoint, "--device", "cpu"],
            f"{case.name}_t1ce.nii.gz", "negative", "--force", watch=[tmp_path])


@pytest.mark.parametrize("case_id,needle", [
    pytest.param("A" * 242, "too long", id="242-character id"),
    pytest.param("CASE\nTWO", "control character", id="newline in a manifest id"),
])
def test_case_ids_that_cannot_be_file_names_are_refused_before_work_starts(tmp_path, capsys, case_id, needle):
    folder = write_small_case(tmp_path / "data", "C0")
    lines = ["case,t1,t1ce,t2,flair,seg",
             '"' + case_id + '",' + ",".join(str(folder / f"C0_{m}.nii.gz") for m in ("t1", "t1ce", "t2", "flair", "seg"))]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    refused(capsys, ["prepare", "--brats", tmp_path / "m.csv", "--out", tmp_path / "out"], needle, watch=[tmp_path])


def test_a_case_folder_with_a_name_too_long_for_its_outputs_is_refused(tmp_path, capsys):
    write_small_case(tmp_path / "data", "B" * 230)
    refused(capsys, ["prepare", "--brats", tmp_path / "data", "--out", tmp_path / "out"], "too long", watch=[tmp_path])


def test_the_python_api_names_the_modality_whose_array_does_not_fit(tiny_checkpoint):
    predictor = Predictor.from_checkpoint(tiny_checkpoint, device="cpu")
    good = np.ones((20, 20, 10), np.float32)
    arrays = {"t1": good, "t1ce": good, "t2": np.ones((20, 20, 9), np.float32), "flair": good}
    with pytest.raises(GliomaskError, match=r"modality t2: array of shape \(20, 20, 9\)"):
        predictor.predict_case(arrays, affine=np.eye(4))
    with pytest.raises(GliomaskError, match="affine must be a 4 x 4"):
        predictor.predict_case({m: good for m in ("t1", "t1ce", "t2", "flair")}, affine=np.eye(3))


def test_upper_case_suffixes_and_renamed_case_folders_say_what_was_found(tmp_path, capsys):
    folder = write_small_case(tmp_path / "upper", "UP")
    for path in folder.iterdir():
        path.rename(path.with_name(path.name.replace(".nii.gz", ".NII.GZ")))
    refused(capsys, ["prepare", "--brats", tmp_path / "upper", "--out", tmp_path / "out"], "upper-case suffix",
            "UP_", watch=[tmp_path])
    folder = write_small_case(tmp_path / "renamed", "CASE7")
    folder.rename(folder.with_name("patient_7"))
    refused(capsys, ["prepare", "--brats", tmp_path / "renamed", "--out", tmp_path / "out"],
            "none named after its folder", "patient_7_flair.nii.gz", watch=[tmp_path])


def test_evaluate_says_which_predictions_have_no_truth_and_drops_a_stale_report(tmp_path, capsys):
    import shutil

    from gliomask.cli import main

    gt, pred = tmp_path / "gt", tmp_path / "pred"
    for k in range(2):
        folder = write_small_case(gt, f"G{k}", seed=k)
        pred.mkdir(exist_ok=True)
        shutil.copy(folder / f"G{k}_seg.nii.gz", pred / f"G{k}_seg.nii.gz")
    shutil.copy(pred / "G0_seg.nii.gz", pred / "EXTRA_seg.nii.gz")  # no ground truth for it
    out = tmp_path / "eval"
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "-o", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "1 prediction(s) without ground truth" in err and "EXTRA" in err
    assert (out / "index.html").is_file() and (out / "overlays").is_dir()
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "-o", str(out), "--quiet", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "removed the earlier report" in err
    assert not (out / "index.html").exists() and not (out / "overlays").exists()
    assert (out / "metrics.csv").is_file() and (out / "summary.json").is_file()


def test_a_mask_given_as_t1ce_is_refused(tmp_path, capsys):
    folder = write_small_case(tmp_path / "data", "MASK")
    seg = np.asanyarray(nib.load(str(folder / "MASK_seg.nii.gz")).dataobj)
    _replace(folder / "MASK_t1ce.nii.gz", (seg > 0).astype(np.int16))
    refused(capsys, ["prepare", "--brats", tmp_path / "data", "--out", tmp_path / "out"], "MASK_t1ce.nii.gz",
            "a mask or label map", watch=[tmp_path])


def test_a_t1_given_as_t1ce_is_flagged_when_the_training_cases_showed_contrast(tmp_path):
    """Contrast uptake (vessels, choroid plexus, dura) makes a few per cent of the brain much brighter on
    T1ce than on T1; a T1 under the T1ce name has none. Real scans: bench/real_swaps.py."""
    from gliomask.data.plausibility import case_problems, enhancement_share
    from gliomask.io.brats import discover_cases, load_case

    rng = np.random.default_rng(4)
    folder = write_small_case(tmp_path / "data", "ENH")
    t1_path, t1ce_path = folder / "ENH_t1.nii.gz", folder / "ENH_t1ce.nii.gz"
    t1 = np.asanyarray(nib.load(str(t1_path)).dataobj).astype(np.int16)
    vessels = (rng.random(t1.shape) < 0.03) & (t1 > 0)
    _replace(t1ce_path, np.where(vessels, t1 + 3000, t1).astype(np.int16))  # post-contrast: bright threads
    case = discover_cases(tmp_path / "data")[0]
    modalities = ("t1", "t1ce", "t2", "flair")
    enhanced = load_case(case, modalities)
    share = enhancement_share(enhanced)
    assert share > 0.02
    assert case_problems(case, enhanced, None, typical_enhancement=0.02) == []
    _replace(t1ce_path, (t1 + rng.normal(0, 5, t1.shape) * (t1 > 0)).astype(np.int16))  # T1 again, noisy
    plain = load_case(case, modalities)
    problems = case_problems(case, plain, None, typical_enhancement=0.02)
    assert len(problems) == 1 and problems[0][0] == t1ce_path and "no contrast enhancement" in problems[0][1]
    # a training set without contrast signal (the geometric synthetic head) cannot judge: no flag
    assert case_problems(case, plain, None, typical_enhancement=0.0001) == []


def test_a_lesion_split_by_the_mapping_to_a_coarse_grid_stays_one_lesion():
    """0.45 x 0.45 x 5 mm: a lesion the model found whole on its 1 mm grid can come back as pieces that
    do not touch; they are one lesion with the model's score, not new ones with confidence 0."""
    from gliomask.inference.lesions import lesion_report

    labels = np.zeros((30, 30, 6), np.uint8)
    labels[5:10, 5:10, 1] = 2
    labels[12:16, 12:16, 2] = 1  # not 26-connected to the first piece
    labels[22:25, 22:25, 4] = 4  # another lesion
    scores = np.zeros(labels.shape, np.float32)
    scores[7, 7, 1] = 0.9
    scores[23, 23, 4] = 0.8
    components = np.zeros(labels.shape, np.int32)
    components[labels > 0] = 7  # the model's lesion 7 ...
    components[22:25, 22:25, 4] = 3  # ... and its lesion 3
    affine = np.diag([0.45, 0.45, 5.0, 1.0])
    assert len(lesion_report(labels, affine, (0.45, 0.45, 5.0), scores=scores)) == 3  # pieces on their own
    lesions = lesion_report(labels, affine, (0.45, 0.45, 5.0), scores=scores, components=components)
    assert len(lesions) == 2
    assert lesions[0]["voxels"] == 25 + 16 and lesions[0]["max_score"] == pytest.approx(0.9)
    assert min(les["max_score"] for les in lesions) > 0
