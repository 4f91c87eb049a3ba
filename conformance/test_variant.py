"""Variant: the name a checkpoint goes by agrees with what its tensors are.

A file or folder whose name claims a published variant (`ConvNeXtPose_L.tar`, `model_S.pth`,
`ConvNeXtPose_XS/snapshot_68.pth`) must hold that variant: the released files taught the field
that names lie. Names that claim nothing pass. (The variant's own figures, parameter count and
GMAC, are properties of the reference model, checked in the project's tests.)
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.conformance


def test_file_name_agrees_with_the_tensors(convnextpose_ckpt, record_property):
    record_property("variant", convnextpose_ckpt.variant)
    record_property("nearest_variant", convnextpose_ckpt.nearest_variant)
    wrong = [p for p in convnextpose_ckpt.problems if p.kind == "name"]
    assert not wrong, f"{wrong[0].key}: {wrong[0].detail}"
