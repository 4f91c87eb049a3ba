"""Every golden checkpoint reads bit for bit as torch's own weights-only loader reads it.

torch.load(weights_only=True) is the independent formulation here: it shares no code with our
reader, and it accepts these (zip) files. The large cases need ../shared/golden.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from hostile_corpus import assert_same
from pytest_convnextpose.reading import read_file

HERE = Path(__file__).parent
SHARED = HERE.parent.parent / "shared" / "golden"


def _cases() -> list:
    out = [pytest.param(HERE / "data" / "tiny_snapshot_83.pth.tar", "tiny", id="tiny")]
    for case in ("xs", "l"):
        manifest = SHARED / "manifest.json"
        if manifest.exists():
            out.append(pytest.param(SHARED / json.loads(manifest.read_text())[case]["checkpoint"], case, id=case))
        else:
            out.append(pytest.param(None, case, id=case, marks=pytest.mark.skip(
                reason=f"../shared/golden is absent: golden case {case} not checked")))
    return out


def _manifest(case: str) -> dict:
    path = HERE / "data" / "manifest.json" if case == "tiny" else SHARED / "manifest.json"
    return json.loads(path.read_text())[case]


@pytest.mark.parametrize("path,case", _cases())
def test_golden_file_reads_bit_for_bit_like_torch(path: Path, case: str) -> None:
    raw = read_file(path)
    expected = torch.load(path, map_location="cpu", weights_only=True)
    assert raw.container == "torch-zip", f"{case}: container {raw.container}, expected torch-zip"
    assert_same(expected, raw.obj, where=case)
    assert raw.sha256 == _manifest(case)["checkpoint_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert raw.size == path.stat().st_size


def test_released_layout_root_and_cuda_tags_are_handled() -> None:
    path = SHARED / "ConvNeXtPose_L.tar"
    if not path.exists():
        pytest.skip("../shared/golden is absent: the cuda:0-tagged L file is not checked")
    data = path.read_bytes()
    assert b"cuda:0" in data[:40000], "the golden L file was expected to carry cuda:0 storage tags"
    raw = read_file(path, map_location="cpu")
    assert raw.root == "snapshot_83.pth", raw.root
    devices = {t.device.type for t in raw.obj["network"].values()}
    assert devices == {"cpu"}, f"tensors on {devices}, expected cpu only"
