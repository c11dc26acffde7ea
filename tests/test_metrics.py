"""BraTS metrics: hand-computed cases, empty rules, and agreement with an independent implementation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from gliomask.evaluation.lesionwise import lesionwise
from gliomask.evaluation.metrics import EMPTY_HD95, dice, hd95, sensitivity, specificity, surface


def test_ground_truth_against_itself():
    rng = np.random.default_rng(0)
    ref = np.zeros((30, 30, 20), bool)
    ref[5:20, 8:25, 3:15] = rng.random((15, 17, 12)) > 0.3
    assert dice(ref, ref) == 1.0
    assert hd95(ref, ref, (1.0, 1.0, 2.5)) == 0.0
    assert sensitivity(ref, ref) == 1.0 and specificity(ref, ref) == 1.0


def test_empty_rules():
    empty = np.zeros((10, 10, 10), bool)
    some = empty.copy()
    some[2:4, 2:4, 2:4] = True
    assert dice(empty, empty) == 1.0 and hd95(empty, empty) == 0.0 and hd95(empty, empty, standard="legacy") == 0.0
    assert dice(some, empty) == 0.0 and hd95(some, empty) == EMPTY_HD95["brats2023"] == 374.0
    assert dice(empty, some) == 0.0 and hd95(empty, some, standard="legacy") == EMPTY_HD95["legacy"] == 373.13


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("axis,spacing", [(0, (1.0, 1.0, 1.0)), (2, (0.8, 0.8, 3.0)), (1, (1.2, 0.5, 2.0))])
def test_boxes_offset_by_k_voxels(k, axis, spacing):
    shape = (40, 40, 40)
    a = np.zeros(shape, bool)
    a[10:20, 10:20, 10:20] = True
    b = np.roll(a, k, axis=axis)
    # Overlap of two 10-voxel boxes shifted by k along one axis: (10 - k) / 10 of each box.
    assert dice(a, b) == pytest.approx((10 - k) / 10)
    # Parallel one-voxel planes k voxels apart: every surface point is exactly k * spacing away.
    p = np.zeros(shape, bool)
    index = [slice(5, 35)] * 3
    index[axis] = 10
    p[tuple(index)] = True
    q = np.roll(p, k, axis=axis)
    # brats-evaluation's legacy HD95 measures in voxels whatever the spacing.
    assert hd95(p, q, spacing, standard="legacy") == pytest.approx(k)
    assert dice(p, q) == 0.0


def _reference_pooled_hd95(a, b):
    """Independent implementation of medpy's pooled HD95 in voxel units: k-d trees over surface points."""
    pa, pb = np.argwhere(surface(a)), np.argwhere(surface(b))
    d_ab = cKDTree(pb).query(pa)[0]
    d_ba = cKDTree(pa).query(pb)[0]
    return np.percentile(np.concatenate([d_ab, d_ba]), 95)


def _reference_surface(mask):
    """Surface by explicit neighbour checks (6-connectivity, outside the volume counts as background)."""
    padded = np.pad(mask, 1)
    out = np.zeros_like(mask)
    core = padded[1:-1, 1:-1, 1:-1]
    for axis in range(3):
        for shift in (-1, 1):
            out |= core & ~np.roll(padded, shift, axis=axis)[1:-1, 1:-1, 1:-1]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_random_shapes_agree_with_independent_implementation(seed):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    spacing = tuple(rng.uniform(0.5, 3.0, 3))
    a = ndimage.gaussian_filter(rng.random((24, 28, 20)), 2) > 0.52
    b = ndimage.gaussian_filter(rng.random((24, 28, 20)), 2) > 0.52
    assert a.any() and b.any()
    assert np.array_equal(surface(a), _reference_surface(a))
    assert hd95(a, b, spacing, standard="legacy") == pytest.approx(_reference_pooled_hd95(a, b), rel=1e-6)
    inter = np.logical_and(a, b).sum()
    assert dice(a, b) == pytest.approx(2 * inter / (a.sum() + b.sum()))
    assert sensitivity(a, b) == pytest.approx(inter / b.sum())
    assert specificity(a, b) == pytest.approx(np.logical_and(~a, ~b).sum() / (~b).sum())


def _ball(shape, centre, radius):
    grid = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius ** 2


def test_lesionwise_counts_tp_fp_fn_and_ignores_small_lesions():
    shape = (60, 60, 40)
    ref = _ball(shape, (15, 15, 20), 6) | _ball(shape, (45, 45, 20), 6) | _ball(shape, (45, 12, 20), 1.5)
    pred = _ball(shape, (15, 16, 20), 6) | _ball(shape, (30, 45, 8), 3)  # one hit, one miss, one FP
    out = lesionwise(pred, ref)
    assert (out["tp"], out["fn"], out["fp"]) == (1, 1, 1)
    hit_dice = dice(_ball(shape, (15, 16, 20), 6), _ball(shape, (15, 15, 20), 6))
    assert out["lesion_dice"] == pytest.approx(hit_dice / 3)
    perfect = lesionwise(ref, ref)
    assert perfect["lesion_dice"] == 1.0 and perfect["fp"] == 0 and perfect["tp"] == 2 and perfect["fn"] == 0
    empty = np.zeros(shape, bool)
    assert lesionwise(empty, empty)["lesion_dice"] == 1.0
