"""BraTS 2024 post-treatment labels: reading (label 4 = resection cavity), scoring by that year's rules,
preparing, and synthetic cavities. The cavity is never tumour: it is in no WT, TC or ET."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from conftest import expect_one_line_error, run_cli
from gliomask.data.instances import slice_instances
from gliomask.data.synth import synthesize
from gliomask.evaluation.brats2024 import tissue_lesions
from gliomask.evaluation.lesionwise import lesionwise
from gliomask.io.brats import discover_cases, load_case
from gliomask.labels import (ENHANCING, NECROTIC, OEDEMA, RESECTION_CAVITY, SCORED_REGIONS, label_edition,
                             regions_from_labels, to_convention, to_internal)


@pytest.fixture(scope="module")
def brats2024(tmp_path_factory):
    root = tmp_path_factory.mktemp("brats24") / "BraTS2024_GLI_post"
    synthesize(root, cases=3, seed=3, edition="2024", workers=2)
    return root


def _seg(root, case_id):
    path = next(root.glob(f"{case_id}/{case_id}-seg.nii.gz"))
    img = nib.load(str(path))
    return img, np.asarray(img.dataobj)


def test_2024_labels_round_trip_and_the_cavity_is_no_tumour():
    file_labels = np.array([0, 1, 2, 3, 4], np.uint8)
    internal = to_internal(file_labels, "brats2024")
    assert internal.tolist() == [0, NECROTIC, OEDEMA, ENHANCING, RESECTION_CAVITY]
    assert to_convention(internal, "brats2024").tolist() == [0, 1, 2, 3, 4]
    assert to_convention(internal, "brats2023").tolist() == [0, 1, 2, 3, 0]  # no cavity label there: background
    assert to_convention(internal, "brats2019").tolist() == [0, 1, 2, 4, 0]
    wt, tc, et = regions_from_labels(internal)
    assert not wt[4] and not tc[4] and not et[4]
    scored = dict(SCORED_REGIONS["brats2024"])
    assert list(scored) == ["WT", "TC", "NETC", "SNFH", "ET", "RC"]
    assert regions_from_labels(internal, SCORED_REGIONS["brats2024"])[-1].tolist() == [False] * 4 + [True]
    assert label_edition([0, 1, 2, 3], "brats2023") == "brats2023"
    assert label_edition([0, 1, 3, 4], "brats2023") == "brats2024"
    assert label_edition([0, 1, 4], "brats2019") == "brats2019"


def test_synthetic_2024_cases_have_cavities_read_as_such(brats2024):
    cases = discover_cases(brats2024)
    assert len(cases) == 3 and all(c.convention == "brats2023" for c in cases)  # 2023-style names
    with_cavity = 0
    for case in cases:
        _, stored = _seg(brats2024, case.case_id)
        assert set(np.unique(stored).tolist()) <= {0, 1, 2, 3, 4}
        loaded = load_case(case)
        assert np.array_equal(loaded.seg == RESECTION_CAVITY, stored == 4)
        assert np.array_equal(loaded.seg == ENHANCING, stored == 3)
        if (stored == 4).any():
            with_cavity += 1
            cavity = loaded.seg == RESECTION_CAVITY
            # fluid: darker than the tumour around it on FLAIR and T1, brighter than white matter on T2
            flair, t2 = loaded.images[3], loaded.images[2]
            oedema = loaded.seg == OEDEMA
            assert np.median(flair[cavity]) < 0.6 * np.median(flair[oedema])
            assert np.median(t2[cavity]) > np.median(t2[oedema])
    assert with_cavity >= 2


def test_a_label_5_in_a_file_is_refused(brats2024, tmp_path):
    case = discover_cases(brats2024)[0]
    img, stored = _seg(brats2024, case.case_id)
    bad = stored.copy()
    bad[bad == 4] = 5
    folder = tmp_path / case.case_id
    folder.mkdir()
    for path in (brats2024 / case.case_id).iterdir():
        (folder / path.name).symlink_to(path)
    (folder / f"{case.case_id}-seg.nii.gz").unlink()
    nib.save(nib.Nifti1Image(bad, img.affine, img.header), str(folder / f"{case.case_id}-seg.nii.gz"))
    result = run_cli("prepare", "--brats", folder, "--out", tmp_path / "prep", "--quiet")
    expect_one_line_error(result, f"{case.case_id}-seg.nii.gz", "unknown label(s) [5]")
    assert not (tmp_path / "prep").exists()


def _ball(shape, centre, radius):
    grid = np.indices(shape).astype(float)
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius ** 2


def test_lesions_join_across_tissues_as_the_2024_code_does():
    labels = np.zeros((40, 40, 40), np.uint8)
    labels[_ball(labels.shape, (20, 20, 20), 5)] = ENHANCING  # one ET lesion in the middle
    labels[13:15, 19:22, 19:22] = NECROTIC  # two NETC pieces touching it on either side, 10 voxels apart
    labels[26:28, 19:22, 19:22] = NECROTIC
    labels[2:4, 2:4, 2:4] = NECROTIC  # a NETC piece far from everything
    lesions = tissue_lesions(labels)
    netc = lesions["NETC"]
    left, right, far = netc[13, 20, 20], netc[26, 20, 20], netc[2, 2, 2]
    assert left == right != far  # joined through the ET lesion both touch; the far piece is its own
    assert len(np.unique(netc[netc > 0])) == 2
    # a single touching pair joins nothing (the official code relabels only for more than one pair)
    single = labels.copy()
    single[26:28] = 0
    single[2:4] = 0
    one = tissue_lesions(single)["NETC"]
    assert len(np.unique(one[one > 0])) == 1


def test_2024_lesion_size_limits_differ_by_region():
    ref = np.zeros((30, 30, 30), bool)
    ref[5:8, 5:8, 5:7] = True  # 18 mm3: counted by the 2024 ET rule (> 10), left out by the others (<= 20)
    pred = np.zeros_like(ref)
    assert lesionwise(pred, ref, min_mm3=10.0)["fn"] == 1
    assert lesionwise(pred, ref, min_mm3=20.0)["fn"] == 0
    assert lesionwise(pred, ref, min_mm3=50.0)["lesion_dice"] == 1.0  # 2023: nothing to score


def test_evaluate_picks_2024_rules_and_never_counts_the_cavity_as_tumour(brats2024, tmp_path):
    perfect, cavity_as_tumour, cavity_missed = (tmp_path / n for n in ("perfect", "as_tumour", "missed"))
    for folder in (perfect, cavity_as_tumour, cavity_missed):
        folder.mkdir()
    cases = discover_cases(brats2024)
    for case in cases:
        img, stored = _seg(brats2024, case.case_id)
        nib.save(nib.Nifti1Image(stored, img.affine, img.header), str(perfect / f"{case.case_id}_seg.nii.gz"))
        as_et = np.where(stored == 4, 3, stored).astype(stored.dtype)
        nib.save(nib.Nifti1Image(as_et, img.affine, img.header), str(cavity_as_tumour / f"{case.case_id}_seg.nii.gz"))
        none = np.where(stored == 4, 0, stored).astype(stored.dtype)
        nib.save(nib.Nifti1Image(none, img.affine, img.header), str(cavity_missed / f"{case.case_id}_seg.nii.gz"))
    result = run_cli("evaluate", "--pred", perfect, "--gt", brats2024, "-o", tmp_path / "ev", "--no-report", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "BraTS 2024 post-treatment" in result.stdout and "[auto:" in result.stdout
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["standard"] == "brats2024"
    for name in ("WT", "TC", "NETC", "SNFH", "ET", "RC"):
        assert summary[f"dice_{name}"]["mean"] == 1.0 and summary[f"lesion_dice_{name}"]["mean"] == 1.0

    result = run_cli("evaluate", "--pred", cavity_missed, "--gt", brats2024, "-o", tmp_path / "ev2", "--no-report", "--quiet")
    assert result.returncode == 0, result.stderr
    missed = json.loads((tmp_path / "ev2" / "summary.json").read_text())
    for name in ("WT", "TC", "NETC", "SNFH", "ET"):  # the tumour is exact: missing the cavity costs no tumour figure
        assert missed[f"dice_{name}"]["mean"] == 1.0
    assert missed["fn_RC"]["mean"] > 0 and missed["dice_RC"]["mean"] < 0.5

    result = run_cli("evaluate", "--pred", cavity_as_tumour, "--gt", brats2024, "-o", tmp_path / "ev3", "--no-report", "--quiet")
    as_tumour = json.loads((tmp_path / "ev3" / "summary.json").read_text())
    assert as_tumour["dice_WT"]["mean"] < 1.0 and as_tumour["dice_TC"]["mean"] < 1.0 and as_tumour["dice_ET"]["mean"] < 1.0
    assert as_tumour["dice_SNFH"]["mean"] == 1.0

    # the 2023 rules can still be asked for: three regions, the cavity unscored
    result = run_cli("evaluate", "--pred", perfect, "--gt", brats2024, "--standard", "brats2023", "-o", tmp_path / "ev4",
                     "--no-report", "--quiet")
    old = json.loads((tmp_path / "ev4" / "summary.json").read_text())
    assert old["standard"] == "brats2023" and "dice_RC" not in old and old["dice_WT"]["mean"] == 1.0


def test_prepare_2024_keeps_the_cavity_out_of_every_instance(brats2024, tmp_path):
    out = tmp_path / "prepared"
    result = run_cli("prepare", "--brats", brats2024, "--out", out, "--folds", "3", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "labels: brats2024" in result.stdout
    meta = json.loads((out / "prepared.json").read_text())
    assert meta["label_edition"] == "brats2024"
    checked = 0
    for case in meta["cases"]:
        seg = np.load(out / "cases" / f"{case['case']}.seg.npy")
        assert case["cavity_voxels"] == int((seg == RESECTION_CAVITY).sum())
        for s in case["slices"]:
            cavity = seg[s] == RESECTION_CAVITY
            if not cavity.any():
                continue
            masks, _, _ = slice_instances(seg[s], "regions", min_area=1)
            assert len(masks) == 0 or not np.any(masks[:, cavity])
            checked += 1
    assert checked > 0


def test_followup_with_surgery_reports_the_cavity_beside_the_lesions(tmp_path):
    from gliomask.followup.register import labels_onto
    from gliomask.followup.synthetic import synthesize_followup

    (first, second), = synthesize_followup(tmp_path / "f", timepoints=2, edition="2024")
    truth = json.loads((tmp_path / "f" / "followup_truth.json").read_text())["patient_0001"]
    assert truth["cavity_ml"][0] == 0 and truth["cavity_ml"][1] > 0.3  # lesion 2 operated on after the first scan
    segs = [tmp_path / "f" / c / f"{c}-seg.nii.gz" for c in (first, second)]
    assert (np.asarray(nib.load(str(segs[1])).dataobj) == 4).any()
    result = run_cli("compare", *segs, "-o", tmp_path / "cmp")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [t["cavity_ml"] for t in report["timepoints"]] == truth["cavity_ml"]
    measured = sum(r["wt_ml"] for r in report["timepoints"][1]["lesions"])
    # the cavity is no lesion: the tumour volume is the truth's, which leaves it out
    assert measured == pytest.approx(sum(v["wt_ml"] for v in truth["lesions"][1].values()), abs=0.01)
    # resampling labels between grids keeps the cavity, and never paints it over tumour
    labels = to_internal(np.asarray(nib.load(str(segs[1])).dataobj), "brats2024")
    same = labels_onto(labels, segs[1], segs[1])
    assert np.array_equal(same == RESECTION_CAVITY, labels == RESECTION_CAVITY)
    assert np.array_equal(regions_from_labels(same), regions_from_labels(labels))


def test_2024_predictions_lose_small_lesions_and_misses_cost_337(tmp_path):
    from gliomask.evaluation.brats2024 import MISS_HD95, tissue_lesions

    labels = np.zeros((40, 40, 40), np.uint8)
    labels[_ball(labels.shape, (20, 20, 20), 6)] = OEDEMA
    labels[30:32, 30:32, 30:32] = OEDEMA  # 8 voxels far away: a predicted lesion too small to count
    pred = tissue_lesions(labels, prediction=True)
    truth = tissue_lesions(labels)
    assert pred["SNFH"][31, 31, 31] == 0 and truth["SNFH"][31, 31, 31] > 0
    assert pred["WT"][20, 20, 20] > 0 and len(np.unique(pred["WT"][pred["WT"] > 0])) == 1
    ref = labels == OEDEMA
    none = np.zeros_like(ref)
    assert lesionwise(none, ref, min_mm3=20.0, miss_hd95=MISS_HD95)["lesion_hd95"] == MISS_HD95
