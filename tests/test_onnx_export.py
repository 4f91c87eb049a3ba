"""`convnextpose export-onnx`: the file reproduces the original code, batch is dynamic, writes are atomic."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_convnextpose.cli.main import main
from pytest_convnextpose.convert import onnx_export
from pytest_convnextpose.implementations.onnx_runner import exported_from, load_onnx

pytest_plugins = ["pytester"]

DATA = Path(__file__).resolve().parent / "data"
TINY = DATA / "tiny_snapshot_83.pth.tar"
TINY_SHA = "63144b818548af153928a4bead8fa875a9af95e263d8739747caaa3bfa9e08f5"


def test_exported_file_reproduces_the_original_code_at_any_batch_size(tiny_onnx):
    golden = torch.load(DATA / "tiny_expected.pt", weights_only=True)
    x, want = golden["input"].numpy(), golden["coords"].numpy()  # 3 images, from the authors' code
    impl = load_onnx(tiny_onnx)
    assert impl.input_size == (128, 128)
    for batch in (x, x[:1]):
        got = impl(batch)
        assert got.dtype == np.float32 and got.shape == (len(batch), 18, 3)
        err = float(np.abs(got - want[:len(batch)]).max())
        assert err <= 1e-4, f"ONNX vs golden coords: max error {err:.3g} for batch {len(batch)}"


def test_exported_file_names_its_checkpoint(tiny_onnx):
    impl = load_onnx(tiny_onnx)
    assert exported_from(impl) == TINY_SHA
    assert impl.metadata["convnextpose.checkpoint_sha256"] == TINY_SHA


def test_existing_output_is_refused_and_kept(tiny_onnx, capsys):
    before = tiny_onnx.read_bytes()
    assert main(["export-onnx", str(TINY), str(tiny_onnx), "--input-size", "128"]) == 2
    assert "output exists" in capsys.readouterr().err
    assert tiny_onnx.read_bytes() == before


def test_failed_verification_leaves_no_file(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise onnx_export.OnnxExportError("exported graph differs from the reference by 1 heatmap units")
    monkeypatch.setattr(onnx_export, "verify_file", broken)
    out = tmp_path / "bad.onnx"
    assert main(["export-onnx", str(TINY), str(out), "--input-size", "128"]) == 3
    assert "nothing written" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [], "a failed export must leave neither the file nor a temporary"


@pytest.mark.parametrize("size", ["100", "128x0", "abc"])
def test_input_size_must_be_a_multiple_of_32(size, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["export-onnx", str(TINY), str(tmp_path / "x.onnx"), "--input-size", size])
    assert exc.value.code == 2
    assert "input size" in capsys.readouterr().err
