"""`gliomask evaluate` reproduces the official BraTS metric code on 90 label-map pairs.

The pairs and the official code's values were copied from the project's shared metrics reference
into tests/data/metrics_reference (see its README): ``reference_brats2023.csv`` from the BraTS 2023
lesion-wise metrics code, ``reference_brats_evaluation.csv`` from ``brats-evaluation`` 0.0.10.
"""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from gliomask.evaluation.evaluate import evaluate_case
from gliomask.evaluation.lesionwise import lesionwise, matched_counts
from gliomask.io.brats import Case
from gliomask.evaluation.metrics import hd95, region_metrics
from gliomask.labels import REGION_NAMES, regions_from_labels

DATA = Path(__file__).parent / "data" / "metrics_reference"
PAIRS = [row["pair"] for row in csv.DictReader(open(DATA / "pairs.csv"))]


def _table(name: str) -> dict:
    return {(r["pair"], r["region"]): r for r in csv.DictReader(open(DATA / name))}


BRATS2023 = _table("reference_brats2023.csv")
BRATS_EVALUATION = _table("reference_brats_evaluation.csv")


def _load(pair: str):
    gt = nib.load(DATA / "pairs" / f"{pair}_gt.nii.gz")
    pred = nib.load(DATA / "pairs" / f"{pair}_pred.nii.gz")
    spacing = tuple(float(z) for z in gt.header.get_zooms()[:3])
    return regions_from_labels(np.asarray(pred.dataobj)), regions_from_labels(np.asarray(gt.dataobj)), spacing


def test_every_pair_is_there():
    assert len(PAIRS) == 90 and len(BRATS2023) == 270 and len(BRATS_EVALUATION) == 270


@pytest.mark.parametrize("pair", PAIRS)
def test_brats2023_standard_matches_the_official_code(pair):
    """Through `evaluate_case`, from the files, as `gliomask evaluate` computes it (cropped to the tumour)."""
    case = Case(pair, {}, DATA / "pairs" / f"{pair}_gt.nii.gz", "brats2019")
    ours = evaluate_case(DATA / "pairs" / f"{pair}_pred.nii.gz", case, "brats2023")
    for r, name in enumerate(REGION_NAMES):
        ref = BRATS2023[(pair, name)]
        les = {k: ours[f"{k}_{name}"] for k in ("lesion_dice", "lesion_hd95", "tp", "fp", "fn")}
        for key in ("dice", "sensitivity", "specificity"):
            assert ours[f"{key}_{name}"] == pytest.approx(float(ref[key]), abs=1e-9), (name, key)
        assert ours[f"hd95_{name}"] == pytest.approx(float(ref["hd95"]), abs=1e-3), name
        assert les["lesion_dice"] == pytest.approx(float(ref["lesion_dice"]), abs=1e-9), name
        assert les["lesion_hd95"] == pytest.approx(float(ref["lesion_hd95"]), abs=1e-3), name
        assert (les["tp"], les["fp"], les["fn"]) == tuple(int(float(ref[k])) for k in ("tp", "fp", "fn")), name


@pytest.mark.parametrize("pair", PAIRS)
def test_brats2023_functions_on_whole_volumes_match_too(pair):
    """The metric functions on the uncropped arrays give the same official numbers."""
    pred, gt, spacing = _load(pair)
    ours = region_metrics(pred, gt, spacing, standard="brats2023")
    for r, name in enumerate(REGION_NAMES):
        ref = BRATS2023[(pair, name)]
        les = lesionwise(pred[r], gt[r], spacing)
        assert ours[f"specificity_{name}"] == pytest.approx(float(ref["specificity"]), abs=1e-9), name
        assert ours[f"hd95_{name}"] == pytest.approx(float(ref["hd95"]), abs=1e-3), name
        assert les["lesion_hd95"] == pytest.approx(float(ref["lesion_hd95"]), abs=1e-3), name
        assert (les["tp"], les["fp"], les["fn"]) == tuple(int(float(ref[k])) for k in ("tp", "fp", "fn")), name


@pytest.mark.parametrize("pair", PAIRS)
def test_legacy_standard_matches_brats_evaluation_where_it_has_a_number(pair):
    pred, gt, spacing = _load(pair)
    case = Case(pair, {}, DATA / "pairs" / f"{pair}_gt.nii.gz", "brats2019")
    row = evaluate_case(DATA / "pairs" / f"{pair}_pred.nii.gz", case, "legacy")
    for r, name in enumerate(REGION_NAMES):
        ref = BRATS_EVALUATION[(pair, name)]
        assert matched_counts(pred[r], gt[r]) == {k: int(float(ref[k])) for k in ("tp", "fp", "fn")}, name
        assert {k: row[f"{k}_{name}"] for k in ("tp", "fp", "fn")} == {k: int(float(ref[k])) for k in ("tp", "fp", "fn")}
        if ref["hd95"] not in ("", "nan", "inf") and pred[r].any() and gt[r].any():
            assert row[f"hd95_{name}"] == pytest.approx(float(ref["hd95"]), abs=1e-3), name
        if ref["dice"] not in ("", "nan"):
            assert region_metrics(pred[r:r + 1], gt[r:r + 1], spacing, names=(name,), with_hd95=False)[
                f"dice_{name}"] == pytest.approx(float(ref["dice"]), abs=1e-9)
        # A number, not an empty-region placeholder (brats-evaluation: NaN, inf, or 373 where we write 373.13).
        if ref["hd95"] not in ("", "nan", "inf") and pred[r].any() and gt[r].any():
            assert hd95(pred[r], gt[r], spacing, standard="legacy") == pytest.approx(float(ref["hd95"]), abs=1e-3), name
