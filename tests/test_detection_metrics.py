"""Lesion detection figures (FROC, AP at lesion IoU 0.1) on constructed cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from gliomask.evaluation.detection import average_precision, froc, match_lesions


def _cube(shape, corner, size=6):
    m = np.zeros(shape, bool)
    m[tuple(slice(c, c + size) for c in corner)] = True
    return m


SHAPE = (60, 60, 30)


def _case():
    """Three ground-truth lesions; predictions hit A (score 0.9) and B (0.7), a false positive scores 0.8,
    lesion C is missed."""
    a, b, c = _cube(SHAPE, (5, 5, 5)), _cube(SHAPE, (30, 5, 5)), _cube(SHAPE, (5, 40, 15))
    fp = _cube(SHAPE, (45, 45, 20), 4)
    pred = a | b | fp
    scores = np.zeros(SHAPE, np.float32)
    scores[a], scores[b], scores[fp] = 0.9, 0.7, 0.8
    return match_lesions(pred, a | b | c, scores)


def test_matching_ranks_by_score_and_counts_misses():
    case = _case()
    assert case["gt"] == 3
    assert case["candidates"] == [(pytest.approx(0.9), True), (pytest.approx(0.8), False), (pytest.approx(0.7), True)]


def test_ap_of_three_lesions_one_false_positive():
    # Ranked: hit (P 1, R 1/3), FP (P 1/2), hit (P 2/3, R 2/3). Envelope: 1 up to R 1/3, 2/3 up to 2/3.
    assert average_precision([_case()]) == pytest.approx(1 / 3 * 1 + 1 / 3 * 2 / 3)


def test_froc_sensitivity_at_false_positive_rates():
    two_cases = [_case(), _case()]  # 2 cases: the one false positive each is 1 FP per case at 0.8
    out = froc(two_cases)
    # Below 1 FP/case only the 0.9 hits count (2 of 6 lesions); from 1 FP/case on, both hits (4 of 6).
    assert out["0.125"] == out["0.5"] == pytest.approx(2 / 6)
    assert out["1"] == out["8"] == pytest.approx(4 / 6)


def test_low_overlap_is_not_a_hit_and_empty_cases_are_defined():
    ref = _cube(SHAPE, (10, 10, 10), 10)
    barely = _cube(SHAPE, (19, 19, 19), 10)  # 1 voxel of overlap: IoU far below 0.1
    scores = np.ones(SHAPE, np.float32)
    case = match_lesions(barely, ref, scores)
    assert case["candidates"] == [(1.0, False)] and case["gt"] == 1
    empty = np.zeros(SHAPE, bool)
    nothing = match_lesions(empty, empty, scores)
    assert average_precision([nothing]) is None and froc([nothing])["1"] is None
    assert average_precision([match_lesions(empty, ref, scores)]) == 0.0
