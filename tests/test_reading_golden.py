"""Every golden checkpoint reads bit for bit as torch's own weights-only loader reads it.

torch.load(weights_only=True) is the independent formulation here: it shares no code with our
reader, and it accepts these (zip) files. The large cases need ../shared/golden.
"""
from __future__ import annotations

import hashlib

import pytest
import torch
from hostile_corpus import assert_same

from pytest_convnextpose.reading import read_file


@pytest.mark.parametrize("case", ["tiny", "xs", "l"])
def test_golden_file_reads_bit_for_bit_like_torch(case: str, golden_case) -> None:
    """tiny is in tests/data; xs and l need ../shared/golden (skip, or fail in CI)."""
    golden = golden_case(case)
    path = golden.checkpoint
    raw = read_file(path)
    expected = torch.load(path, map_location="cpu", weights_only=True)
    assert raw.container == "torch-zip", f"{case}: container {raw.container}, expected torch-zip"
    assert_same(expected, raw.obj, where=case)
    assert raw.sha256 == golden.manifest["checkpoint_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert raw.size == path.stat().st_size


def test_released_layout_root_and_cuda_tags_are_handled(golden_cases) -> None:
    path = golden_cases["l"].checkpoint
    assert path.name == "ConvNeXtPose_L.tar", f"golden case l is {path.name}, expected the released ConvNeXtPose_L.tar"
    data = path.read_bytes()
    assert b"cuda:0" in data[:40000], "the golden L file was expected to carry cuda:0 storage tags"
    raw = read_file(path, map_location="cpu")
    assert raw.root == "snapshot_83.pth", raw.root
    devices = {t.device.type for t in raw.obj["network"].values()}
    assert devices == {"cpu"}, f"tensors on {devices}, expected cpu only"
