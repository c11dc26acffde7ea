"""`gliomask compare` and the synthetic follow-up: measurements, matching, response, registration, bad input."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from gliomask.cli import main
from gliomask.followup.match import assign_tracks, match_components
from gliomask.followup.measure import bidimensional
from gliomask.followup.response import categorise


@pytest.mark.parametrize("a,b,angle", [(20, 10, 0), (15.5, 7.3, 30), (30, 25, 45), (12, 11, 70)])
def test_bidimensional_diameters_of_an_ellipse_within_one_voxel(a, b, angle):
    x, y, z = np.mgrid[:80, :80, :12]
    t = np.deg2rad(angle)
    u = (x - 40.3) * np.cos(t) + (y - 39.6) * np.sin(t)
    v = -(x - 40.3) * np.sin(t) + (y - 39.6) * np.cos(t)
    disc = (u / a) ** 2 + (v / b) ** 2 <= 1
    mask = disc & (z == 6)
    mask |= (z == 5) & ((u / (a * 0.6)) ** 2 + (v / (b * 0.6)) ** 2 <= 1)  # a smaller slice below: not the one measured
    bi = bidimensional(mask, np.eye(4))
    assert bi.slice_index == 6
    assert abs(bi.longest_mm - 2 * a) <= 1.0 and abs(bi.perpendicular_mm - 2 * b) <= 1.0
    assert bi.measurable == (2 * b >= 10)


def test_bidimensional_follows_the_affine_spacing_and_the_axial_axis():
    # axial along the array's first axis (affine columns permuted); 0.5 x 2 mm pixels in-plane
    affine = np.array([[0, 0, 0.5, 0], [0, 2.0, 0, 0], [3.0, 0, 0, 0], [0, 0, 0, 1]])
    y, zz = np.mgrid[:30, :120]
    ellipse = ((zz - 60) * 0.5 / 20) ** 2 + ((y - 15) * 2.0 / 8) ** 2 <= 1  # 40 mm x 16 mm
    mask = np.zeros((9, 30, 120), bool)
    mask[4] = ellipse
    bi = bidimensional(mask, affine)
    assert bi.slice_index == 4
    assert abs(bi.longest_mm - 40) <= 2.0 and abs(bi.perpendicular_mm - 16) <= 2.0  # one voxel: up to 2 mm here


def test_matching_names_splits_merges_new_resolved_and_distance_matches():
    a = np.zeros((40, 40, 10), np.int32)
    a[2:8, 2:8, 2:5] = 1  # splits into two
    a[20:26, 2:8, 2:5] = 2  # merges with 3
    a[20:26, 10:16, 2:5] = 3
    a[2:6, 30:34, 2:5] = 4  # resolves
    a[30:33, 30:33, 2:5] = 5  # moves 5 voxels without overlap
    b = np.zeros_like(a)
    b[2:4, 2:8, 2:5] = 1
    b[6:8, 2:8, 2:5] = 2
    b[20:26, 4:14, 2:5] = 3
    b[10:14, 20:24, 2:5] = 4  # new
    b[35:38, 30:33, 2:5] = 5
    cent = lambda m: {int(i): np.argwhere(m == i).mean(0) for i in np.unique(m) if i}  # noqa: E731
    edges = match_components(a, b, cent(a), cent(b), tolerance_mm=6)
    names, events = assign_tracks([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5]], [edges])
    assert names[1] == {1: "L1", 2: "L1", 3: "L2+L3", 4: "L6", 5: "L5"}
    ev = events[0]
    assert ev["new"] == ["L6"] and ev["resolved"] == ["L4"]
    assert ev["split"] == {"L1": [1, 2]} and ev["merged"] == {"L2+L3": ["L2", "L3"]}
    assert ev["matched_by_distance"] == ["L5"]
    # beyond the tolerance the moved lesion is resolved and a new one appears
    _, events = assign_tracks([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5]], [match_components(a, b, cent(a), cent(b), 4)])
    assert "L5" in events[0]["resolved"] and len(events[0]["new"]) == 2


@pytest.mark.parametrize("values,new,expected", [
    ([100, 160], [], "progression"),  # +60 % from the nadir
    ([100, 120], [], "stable disease"),
    ([100, 40], [], "partial response"),  # -60 %
    ([100, 0], [], "complete response"),
    ([100, 40, 55], [], "progression"),  # +37.5 % from the nadir 40, though below baseline
    ([100, 90], ["L4"], "progression"),  # a new measurable lesion
    ([0, 0], [], "not evaluable"),
])
def test_bidimensional_response_thresholds(values, new, expected):
    got = categorise("bidimensional", values, new, len(values) - 1)
    assert got["category"] == expected
    assert got["current"] == values[-1] and got["nadir"] == min(values[:-1])


def test_volumetric_response_thresholds():
    assert categorise("volumetric", [10.0, 14.5], [], 1)["category"] == "progression"  # +45 % >= 40 %
    assert categorise("volumetric", [10.0, 13.0], [], 1)["category"] == "stable disease"
    assert categorise("volumetric", [10.0, 3.0], [], 1)["category"] == "partial response"  # -70 % <= -65 %
    assert categorise("volumetric", [10.0, 4.0], [], 1)["category"] == "stable disease"  # -60 %: not yet


@pytest.fixture(scope="module")
def followup(tmp_path_factory):
    """One synthetic patient, three timepoints (lesion 1 grows 60 %, lesion 2 shrinks then vanishes,
    lesion 3 appears), through `gliomask synth --timepoints 3`."""
    root = tmp_path_factory.mktemp("followup") / "patients"
    assert main(["synth", "--out", str(root), "--cases", "1", "--timepoints", "3", "--seed", "0", "--quiet"]) == 0
    return root, json.loads((root / "followup_truth.json").read_text())["patient_0001"]


def _seg(root, cid):
    return root / cid / f"{cid}_seg.nii.gz"


def test_synthetic_followup_tells_the_story_it_was_asked_for(followup):
    root, truth = followup
    lesions = truth["lesions"]
    assert [sorted(t) for t in lesions] == [["L1", "L2"], ["L1", "L2"], ["L1", "L3"]]
    assert lesions[1]["L1"]["wt_ml"] / lesions[0]["L1"]["wt_ml"] == pytest.approx(1.6, abs=0.15)
    assert lesions[1]["L2"]["wt_ml"] < 0.6 * lesions[0]["L2"]["wt_ml"]
    assert truth["followups"][1]["new"] == ["L3"] and truth["followups"][1]["resolved"] == ["L2"]
    # one anatomy: away from the tumours the scans are the same brain
    a = nib.load(str(root / truth["cases"][0] / f"{truth['cases'][0]}_t1.nii.gz")).get_fdata()
    b = nib.load(str(root / truth["cases"][2] / f"{truth['cases'][2]}_t1.nii.gz")).get_fdata()
    assert np.array_equal(a > 0, b > 0) or np.mean((a > 0) != (b > 0)) < 0.01


def test_compare_matches_the_generators_truth(followup, tmp_path, capsys):
    root, truth = followup
    out = tmp_path / "cmp"
    assert main(["compare", *[str(_seg(root, c)) for c in truth["cases"]], "-o", str(out)]) == 0
    report = json.loads((out / "compare.json").read_text())
    for t, cid in enumerate(truth["cases"]):
        identity = np.asarray(nib.load(str(root / "followup_truth" / f"{cid}_lesion-identity.nii.gz")).dataobj)
        got = report["timepoints"][t]["lesions"]
        assert sorted(les["track"] for les in got) == sorted(truth["lesions"][t])
        for les in got:  # the track is the true identity: its centroid lies in that identity's voxels
            i, j, k = np.rint(les["centroid_voxel"]).astype(int)
            true = truth["lesions"][t][les["track"]]
            assert les["wt_ml"] == pytest.approx(true["wt_ml"]) and les["et_ml"] == pytest.approx(true["et_ml"])
            assert les["product_mm2"] == pytest.approx(true["product_mm2"], abs=0.2)
            assert identity[i, j, k] in (0, int(les["track"][1:]))
    for got, want in zip(report["followups"], truth["followups"]):
        assert got["new"] == want["new"] and got["resolved"] == want["resolved"]
        for kind in ("bidimensional", "volumetric"):
            assert got[kind]["category"] == want[kind]["category"], kind
    assert report["followups"][1]["bidimensional"]["category"] == "progression"  # the new measurable lesion
    rows = (out / "compare.csv").read_text().splitlines()
    assert rows[0].startswith("track,timepoint,name,present,wt_ml") and len(rows) == 1 + 3 * 3
    assert {p.name for p in out.iterdir()} >= {"compare.html", "volumes.png", "lesion_L1.png", "lesion_L3.png"}
    assert "imaging component of RANO 2.0 only" in (out / "compare.html").read_text()
    assert "progression" in capsys.readouterr().out


def _moved_copy(src_case, dst_root, degrees=5.0, shift_mm=8.0):
    """The case as if the patient lay 8 mm and 5 degrees elsewhere, on a grid of another shape and origin."""
    sitk = pytest.importorskip("SimpleITK")
    dst = dst_root / src_case.name
    dst.mkdir(parents=True)
    files = sorted(src_case.glob("*.nii.gz"))
    ref = sitk.ReadImage(str(files[0]))
    move = sitk.Euler3DTransform()
    move.SetCenter(ref.TransformContinuousIndexToPhysicalPoint([s / 2 for s in ref.GetSize()]))
    move.SetRotation(0, 0, np.deg2rad(degrees))
    move.SetTranslation((shift_mm, 0, 0))
    grid = sitk.Image([s - 20 for s in ref.GetSize()[:2]] + [ref.GetSize()[2]], sitk.sitkUInt8)
    grid.SetSpacing(ref.GetSpacing())
    grid.SetDirection(ref.GetDirection())
    grid.SetOrigin(ref.TransformIndexToPhysicalPoint([10, 10, 0]))
    for f in files:
        img = sitk.ReadImage(str(f))
        nearest = f.name.endswith("_seg.nii.gz")
        sitk.WriteImage(sitk.Resample(img, grid, move, sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear, 0,
                                      img.GetPixelID()), str(dst / f.name))
    return dst


def test_a_followup_on_another_grid_is_registered(followup, tmp_path):
    root, truth = followup
    first, second = truth["cases"][:2]
    moved = _moved_copy(root / second, tmp_path / "moved")
    out = tmp_path / "cmp"
    assert main(["compare", str(_seg(root, first)), str(_seg(moved.parent, second)), "-o", str(out)]) == 0
    report = json.loads((out / "compare.json").read_text())
    reg = report["alignment"][1]
    assert reg["how"] == "registered" and reg["correlation_registered"] > 0.8
    assert abs(abs(reg["rotation_deg"][2]) - 5) < 0.5 and abs(np.linalg.norm(reg["translation_mm_lps"]) - 8) < 1.5
    got = {les["track"]: les for les in report["timepoints"][1]["lesions"]}
    assert sorted(got) == sorted(truth["lesions"][1])
    for track, true in truth["lesions"][1].items():
        assert got[track]["wt_ml"] == pytest.approx(true["wt_ml"], rel=0.05)
        assert got[track]["et_ml"] == pytest.approx(true["et_ml"], rel=0.05)


def _tiny_case(folder, cid, flair, seg, affine=np.eye(4), modalities=("flair",)):
    folder.mkdir(parents=True)
    for m in modalities:
        nib.save(nib.Nifti1Image(flair.astype(np.float32), affine), folder / f"{cid}_{m}.nii.gz")
    nib.save(nib.Nifti1Image(seg.astype(np.uint8), affine), folder / f"{cid}_seg.nii.gz")
    return folder / f"{cid}_seg.nii.gz"


def _blob():
    x, y, z = np.mgrid[:40, :40, :40]
    brain = ((x - 20) ** 2 + (y - 20) ** 2 + (z - 20) ** 2) < 17 ** 2
    flair = np.where(brain, 100.0 + 20 * np.sin(x / 3.0), 0.0)
    seg = np.zeros(brain.shape, np.uint8)
    seg[12:28, 12:28, 15:24] = 2
    seg[14:26, 14:26, 17:22] = 4  # 12 mm across: measurable
    return flair, seg


def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys):
    flair, seg = _blob()
    a = _tiny_case(tmp_path / "P1_1", "P1_1", flair, seg)
    out = tmp_path / "out"
    assert main(["compare", str(a), "-o", str(out)]) == 2  # a single timepoint
    err = capsys.readouterr().err
    assert "at least two timepoints" in err and len(err.strip().splitlines()) == 1 and not out.exists()
    # case folders with different modality sets
    _tiny_case(tmp_path / "P1_2", "P1_2", flair, seg, modalities=("flair", "t1ce"))
    assert main(["compare", str(tmp_path / "P1_1"), str(tmp_path / "P1_2"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "different modality sets" in err and len(err.strip().splitlines()) == 1 and not out.exists()
    # a registration that fails: the follow-up "scan" is noise on another grid
    noise = np.random.default_rng(0).uniform(1, 100, flair.shape)
    moved = _tiny_case(tmp_path / "P1_3", "P1_3", noise, seg, affine=np.diag([1.1, 1.1, 1.1, 1.0]))
    assert main(["compare", str(a), str(moved), "-o", str(out), "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert "registration onto P1_1_flair.nii.gz failed" in err and "P1_3_flair.nii.gz" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    assert not any(p.name.startswith(".out.") for p in tmp_path.iterdir())  # no temporary folder left


def test_timepoints_named_after_different_patients_warn(tmp_path, capsys):
    flair, seg = _blob()
    a = _tiny_case(tmp_path / "P1_1", "P1_1", flair, seg)
    b = tmp_path / "other" / "P2_1_seg.nii.gz"
    b.parent.mkdir()
    shutil.copy(a, b)
    assert main(["compare", str(a), str(b), "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "different patients (P1, P2)" in err
    report = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert report["followups"][0]["bidimensional"]["category"] == "stable disease"
    assert report["followups"][0]["new"] == [] and report["followups"][0]["resolved"] == []
