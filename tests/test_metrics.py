"""Metrics against hand-computed cases and against independent formulations (scipy)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as scipy_linalg  # [test] extra: the independent reference, so never a skip
import scipy.spatial as scipy_spatial

from pytest_convnextpose.h36m import metrics


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _pose(rng: np.random.Generator, joints: int = 17) -> np.ndarray:
    return rng.normal(scale=300.0, size=(joints, 3))  # mm, a body-sized cloud


def test_known_offset_gives_that_offset():
    gt = _pose(np.random.default_rng(0))
    pred = gt + np.array([3.0, 4.0, 0.0])  # every joint 5 mm away (3-4-5 triangle)
    assert metrics.mpjpe(pred, gt) == pytest.approx(5.0, abs=1e-12)


def test_one_joint_off_counts_once_in_the_mean():
    gt = _pose(np.random.default_rng(1))
    pred = gt.copy()
    pred[7, 2] += 17.0  # one of 17 joints, 17 mm in depth -> 1 mm mean
    assert metrics.mpjpe(pred, gt) == pytest.approx(1.0, abs=1e-12)
    errs = metrics.joint_errors(pred, gt)
    assert errs.shape == (1, 17) and errs[0, 7] == pytest.approx(17.0)


@pytest.mark.parametrize("seed", range(5))
def test_rigidly_moved_pose_has_zero_pa_error_both_ways(seed):
    rng = np.random.default_rng(seed)
    gt = _pose(rng)
    pred = gt @ _rotation(rng).T + rng.normal(scale=500.0, size=3)
    assert metrics.mpjpe(pred, gt) > 1.0, "the test pose must actually be moved"
    assert metrics.pa_mpjpe_authors(pred, gt) == pytest.approx(0.0, abs=1e-8)
    assert metrics.pa_mpjpe_scaled(pred, gt) == pytest.approx(0.0, abs=1e-8)


def test_scaled_pose_is_zero_only_for_the_scaled_metric():
    rng = np.random.default_rng(7)
    gt = _pose(rng)
    pred = 1.5 * gt @ _rotation(rng).T
    assert metrics.pa_mpjpe_scaled(pred, gt) == pytest.approx(0.0, abs=1e-8)
    # Without scale, the best rotation of a 1.5x pose leaves each centred joint 0.5x its
    # length off: error_j = 0.5 * |gt_j - mean| exactly (rotation aligns, scale cannot).
    centred = np.linalg.norm(gt - gt.mean(axis=0), axis=1)
    assert metrics.pa_mpjpe_authors(pred, gt) == pytest.approx(0.5 * centred.mean(), rel=1e-9)


def test_reflection_is_not_allowed():
    gt = _pose(np.random.default_rng(3))
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    assert metrics.pa_mpjpe_authors(mirrored, gt) > 1.0, "a mirror image must not align to 0 with a proper rotation"


@pytest.mark.parametrize("seed", range(8))
def test_scaled_alignment_matches_scipy_orthogonal_procrustes(seed):
    rng = np.random.default_rng(100 + seed)
    gt = _pose(rng)
    pred = 0.9 * gt @ _rotation(rng).T + rng.normal(scale=40.0, size=gt.shape) + 100.0
    p0, g0 = pred - pred.mean(0), gt - gt.mean(0)
    rot, sing_sum = scipy_linalg.orthogonal_procrustes(p0, g0)  # min ||p0 @ rot - g0||
    assert np.linalg.det(rot) > 0, "noise this small must not make a reflection optimal"
    aligned = (sing_sum / (p0 ** 2).sum()) * p0 @ rot + gt.mean(0)
    expected = np.linalg.norm(aligned - gt, axis=1).mean()
    assert metrics.pa_mpjpe_scaled(pred, gt) == pytest.approx(expected, rel=1e-9)
    # without scale: same rotation, unit scale
    aligned_rigid = p0 @ rot + gt.mean(0)
    expected_rigid = np.linalg.norm(aligned_rigid - gt, axis=1).mean()
    assert metrics.pa_mpjpe_authors(pred, gt) == pytest.approx(expected_rigid, rel=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_scaled_residual_matches_scipy_spatial_procrustes_disparity(seed):
    rng = np.random.default_rng(200 + seed)
    gt = _pose(rng)
    pred = 1.2 * gt @ _rotation(rng).T + rng.normal(scale=60.0, size=gt.shape)
    _, _, disparity = scipy_spatial.procrustes(gt, pred)  # pred fitted to gt, both standardised
    aligned = metrics.align(pred, gt, with_scale=True)[0]
    g0 = gt - gt.mean(0)
    assert ((aligned - gt) ** 2).sum() / (g0 ** 2).sum() == pytest.approx(disparity, rel=1e-9)


def test_batch_and_single_pose_agree():
    rng = np.random.default_rng(9)
    gts = np.stack([_pose(rng) for _ in range(4)])
    preds = gts + rng.normal(scale=20.0, size=gts.shape)
    batch = metrics.pa_joint_errors_authors(preds, gts)
    singles = np.concatenate([metrics.pa_joint_errors_authors(p, g) for p, g in zip(preds, gts)])
    np.testing.assert_allclose(batch, singles, rtol=1e-12)


def test_mean_by_group_averages_each_action_separately():
    out = metrics.mean_by_group([1.0, 3.0, 10.0, 5.0], ["Walking", "Walking", "Eating", "Walking"])
    assert out == {"Walking": 3.0, "Eating": 10.0}


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.mpjpe(np.zeros((17, 3)), np.zeros((18, 3)))
