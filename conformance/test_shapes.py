"""Shapes: every tensor has the shape the checkpoint's spec implies (docs/spec.md §1)."""

from __future__ import annotations

import pytest

from pytest_convnextpose.checkpoint.shapes import canonical_shapes

pytestmark = pytest.mark.conformance


def test_every_tensor_has_the_shape_its_spec_implies(convnextpose_ckpt):
    """Keys absent on either side are the load tests' business (missing/unexpected)."""
    want = canonical_shapes(convnextpose_ckpt.spec)
    wrong = [
        f"{k}: expected {list(want[k])}, got {list(t.shape)}"
        for k, t in convnextpose_ckpt.state_dict.items()
        if k in want and tuple(t.shape) != want[k]
    ]
    assert not wrong, (
        f"{len(wrong)} tensor(s) with the wrong shape for {convnextpose_ckpt.spec.summary()}: " + "; ".join(wrong[:10])
    )
