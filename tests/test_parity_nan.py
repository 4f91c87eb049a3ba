"""Parity against expected outputs fails on NaN and inf, and `worst_position` points at them.

`nan > tol` is False, so a comparison written as "fail when the error exceeds the tolerance"
passes a NaN output. These tests call the suite's comparison directly with hand-made
tensors whose expected verdict is plain arithmetic.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conformance.test_parity import _compare
from pytest_convnextpose.implementations.compare import compare_coords, worst_position
from pytest_convnextpose.implementations.golden import ExpectedCase

CASE = ExpectedCase(name="tiny", path=Path("tiny_expected.pt"), max_abs=1e-4, mean_abs=None, origin="golden")
CASE_WITH_MEAN = ExpectedCase(name="full", path=Path("full_expected.pt"), max_abs=1e-3, mean_abs=5e-5,
                              origin="golden")


def _coords() -> torch.Tensor:
    """(2, 3, 3) coordinates with distinct finite values."""
    return torch.arange(18, dtype=torch.float32).reshape(2, 3, 3) / 7.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_output_fails_parity_and_names_the_value(bad):
    want = _coords()
    got = want.clone()
    got[1, 2, 1] = bad
    errors = _compare("coords", got, want, CASE)
    assert len(errors) == 1, f"expected one failure for an output holding {bad}, got {errors}"
    assert "1/18 values are NaN or infinite" in errors[0], errors[0]
    assert "worst at image 1, joint 2, y" in errors[0], errors[0]


def test_nan_in_expected_values_fails_parity():
    want = _coords()
    want[0, 0, 2] = float("nan")
    errors = _compare("coords_flip_test", _coords(), want, CASE)
    assert len(errors) == 1 and "NaN or infinite" in errors[0] and "image 0, joint 0, z" in errors[0], errors


def test_outputs_within_tolerance_pass():
    want = _coords()
    got = want.double() + 5e-5  # below max_abs 1e-4
    assert _compare("coords", got, want, CASE) == []


def test_finite_failure_keeps_its_wording():
    want = torch.zeros(2, 3, 3)
    got = want.clone()
    got[1, 2, 1] = 0.5
    assert _compare("coords", got, want, CASE) == [
        "coords vs golden tiny: max abs 0.5 > 0.0001; worst at image 1, joint 2, y: expected 0.000000, got 0.500000"]


def test_mean_tolerance_is_checked_on_its_own():
    want = torch.zeros(1, 2, 3)
    got = torch.full((1, 2, 3), 1e-4)  # every value within max_abs 1e-3, mean 1e-4 > 5e-5
    errors = _compare("coords", got, want, CASE_WITH_MEAN)
    assert len(errors) == 1 and "mean abs 0.0001 > 5e-05" in errors[0], errors


def test_shape_mismatch_is_reported_before_values():
    errors = _compare("coords", torch.zeros(2, 4, 3), torch.zeros(2, 3, 3), CASE)
    assert errors == ["coords vs tiny: expected shape (2, 3, 3), got (2, 4, 3)"]


def test_worst_position_counts_nan_as_the_largest_difference():
    diff = np.zeros((2, 3, 3))
    diff[0, 1, 0] = 100.0
    diff[1, 0, 2] = np.nan
    assert worst_position(diff) == (1, 0, 2)
    diff[1, 0, 2] = 0.0
    assert worst_position(-diff) == (0, 1, 0), "the largest |difference| wins, whatever its sign"


def test_compare_coords_reports_nan_as_infinite_error():
    want = np.zeros((1, 2, 3))
    got = want.copy()
    got[0, 1, 2] = np.nan
    stats = compare_coords(got, want)
    assert not stats.ok and stats.max_abs == float("inf") and (stats.worst_joint, stats.worst_coord) == (1, 2)
