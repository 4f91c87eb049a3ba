"""Export the reference model of a checkpoint to ONNX (coordinates out, dynamic batch).

Why the legacy TorchScript exporter (`dynamo=False`): it ships with torch and needs no
`onnxscript`, it runs offline, and for this network (convs, BatchNorm, bilinear resize,
softmax, reductions) its output matches the reference to float32 rounding. Height and
width stay fixed at `input_size` (traced shapes feed the soft-argmax index ranges), so
only the batch axis is dynamic; the size is stored in the file's metadata.

The file is verified with onnxruntime against the reference model before it is moved
into place, and written atomically: a failed export leaves no file behind.

Opsets: 11 to 20. Below 11 the exporter cannot express the head's bilinear resize with
`align_corners=True`; above 20 torch's TorchScript exporter is not supported (torch 2.13:
`ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET`). The exporter prints whole Torch IR graphs on stdout
when it fails, so its output is captured and shown only with CONVNEXTPOSE_DEBUG=1.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Optional

import numpy as np
import torch
from torch import nn

from reference_model import ArchSpec
from reference_model.softargmax import soft_argmax_reference

from ..checkpoint import metadata_keys as keys
from ..checkpoint.model import reference_model_for
from ..implementations.onnx_runner import load_onnx
from .atomic_output import atomic_write_bytes

DEFAULT_OPSET = 17
#: opsets this network exports at with the TorchScript exporter (see the module docstring)
MIN_OPSET, MAX_OPSET = 11, 20
DEFAULT_INPUT_SIZE = (256, 256)
#: export check: largest |ONNX - reference| accepted, in heatmap units (float32 rounding is ~1e-5)
VERIFY_ATOL = 1e-3
INPUT_NAME, OUTPUT_NAME = "images", "coords"


class OnnxExportError(Exception):
    """Export failed or the exported graph does not reproduce the reference. Nothing was written."""


def _soft_argmax(heatmaps: torch.Tensor, joint_num: int, depth_dim: int) -> torch.Tensor:
    """The straight softmax formulation: plain ONNX ops, same values as the model's own."""
    return soft_argmax_reference(heatmaps.contiguous(), joint_num, depth_dim)


class _CoordsGraph(nn.Module):
    """backbone -> head -> soft-argmax, without the shape checks that confuse the tracer."""

    def __init__(self, model: nn.Module, spec: ArchSpec) -> None:
        super().__init__()
        self.model = model
        self.joint_num, self.depth_dim = spec.joint_num, spec.depth_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        heatmaps = self.model.head(self.model.backbone(images))
        return _soft_argmax(heatmaps, self.joint_num, self.depth_dim)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    input_size: tuple[int, int]
    opset: int
    verified_max_abs: Optional[float]  # None when verification was skipped


def onnx_bytes(spec: ArchSpec, state_dict: Mapping[str, torch.Tensor], *,
                 input_size: tuple[int, int] = DEFAULT_INPUT_SIZE, opset: int = DEFAULT_OPSET,
                 checkpoint_sha256: Optional[str] = None, model: Optional[nn.Module] = None) -> bytes:
    """Serialized ONNX model: input `images` (B, 3, H, W) float32 -> output `coords` (B, J, 3).

    `model` is `reference_model_for(spec, state_dict)` when the caller already built it (built here if not).
    Raises ValueError for an opset outside MIN_OPSET..MAX_OPSET and OnnxExportError (one line)
    when torch's exporter fails."""
    _check_arguments(spec, opset, input_size)
    graph = _CoordsGraph(model if model is not None else reference_model_for(spec, state_dict), spec).eval()
    example = torch.zeros(1, 3, *input_size)
    buf = io.BytesIO()
    with _exporter_output():
        try:
            with warnings.catch_warnings():
                # the legacy exporter announces its own deprecation and traced-shape notes; neither applies
                warnings.simplefilter("ignore")
                torch.onnx.export(graph, (example,), buf, dynamo=False, opset_version=opset,
                                  input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                  dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0].split("  [Caused by")[0][:300]
            raise OnnxExportError(f"torch.onnx.export failed at opset {opset}: {type(exc).__name__}: {first}") from exc
    meta = {keys.SPEC: spec.to_json(), keys.INPUT_SIZE: f"{input_size[0]}x{input_size[1]}",
            keys.OUTPUT: "coords (B, J, 3) in heatmap units: x (width), y (height), z (depth)"}
    if checkpoint_sha256:
        meta[keys.CHECKPOINT_SHA256] = checkpoint_sha256
    return _with_metadata(buf.getvalue(), meta)


def _check_arguments(spec: ArchSpec, opset: int, input_size: tuple[int, int]) -> None:
    """The cheap refusals, before any model is built."""
    check_opset(opset)
    spec.heatmap_size(input_size)  # raises for sizes not divisible by 32


def check_opset(opset: int) -> None:
    """Refuse opsets this network cannot be exported at, before torch gets to print its graph dump."""
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(opset_range_message(opset))


def opset_range_message(opset: object) -> str:
    return (f"opset {opset} is not supported: choose {MIN_OPSET} to {MAX_OPSET} (the head's bilinear resize "
            f"needs {MIN_OPSET}; torch's TorchScript exporter stops at {MAX_OPSET})")


@contextlib.contextmanager
def _exporter_output() -> Iterator[None]:
    """Capture everything written to stdout/stderr (Python and C++ alike) while the exporter runs.

    The captured text is dropped when the block exits (also when it raises), unless
    CONVNEXTPOSE_DEBUG=1: then it is written to stderr, so the graph dump is there when needed.
    """
    text = io.StringIO()
    with tempfile.TemporaryFile() as sink:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
                yield
        finally:
            _restore(saved)
            if os.environ.get("CONVNEXTPOSE_DEBUG"):
                sink.seek(0)
                sys.stderr.write(sink.read().decode("utf-8", "replace") + text.getvalue())


def _restore(saved: list[int]) -> None:
    """Point fds 1 and 2 back at the saved originals (closing them), after flushing C's buffers."""
    _flush_c_stdio()
    for fd, original in zip((1, 2), saved):
        os.dup2(original, fd)
        os.close(original)


def _flush_c_stdio() -> None:
    """fflush(NULL): C/C++ output buffered during the export must land in the capture, not after it."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).fflush(None)


def _with_metadata(data: bytes, meta: dict[str, str]) -> bytes:
    try:
        import onnx
    except ImportError as exc:
        raise OnnxExportError("the onnx package is needed to write ONNX files "
                              "(pip install onnxruntime, or the package's onnx extra)") from exc
    model = onnx.load_from_string(data)
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "pytest-convnextpose"
    return model.SerializeToString()


def verify_file(path: Path, spec: ArchSpec, state_dict: Mapping[str, torch.Tensor],
                input_size: tuple[int, int], atol: float = VERIFY_ATOL,
                model: Optional[nn.Module] = None) -> float:
    """Run the ONNX file (batch of 2, seeded) and the reference; return max |diff| or raise.

    `model` is `reference_model_for(spec, state_dict)` when the caller already built it (built here if not)."""
    images = np.random.default_rng(0).standard_normal((2, 3, *input_size), dtype=np.float32)
    got = load_onnx(path)(images)
    if model is None:
        model = reference_model_for(spec, state_dict)
    with torch.no_grad():
        want = model(torch.from_numpy(images)).numpy()
    if got.shape != want.shape:
        raise OnnxExportError(f"exported graph returns shape {got.shape}, reference {want.shape}")
    err = float(np.max(np.abs(got.astype(np.float64) - want)))
    if not np.isfinite(err) or err > atol:
        raise OnnxExportError(f"exported graph differs from the reference by {err:.3g} heatmap units (limit {atol})")
    return err


def export_onnx(spec: ArchSpec, state_dict: Mapping[str, torch.Tensor], out: str | Path, *,
                input_size: tuple[int, int] = DEFAULT_INPUT_SIZE, opset: int = DEFAULT_OPSET,
                checkpoint_sha256: Optional[str] = None, verify: bool = True,
                force: bool = False) -> ExportResult:
    """Write `out` atomically; with `verify`, onnxruntime must reproduce the reference first."""
    _check_arguments(spec, opset, input_size)
    model = reference_model_for(spec, state_dict)  # once: exported, then the yardstick for verification
    data = onnx_bytes(spec, state_dict, input_size=input_size, opset=opset, checkpoint_sha256=checkpoint_sha256,
                        model=model)
    measured: list[float] = []

    def check(tmp: Path) -> None:
        measured.append(verify_file(tmp, spec, state_dict, input_size, model=model))

    path = atomic_write_bytes(out, data, force=force, verify=check if verify else None)
    return ExportResult(path=Path(path), input_size=input_size, opset=opset,
                        verified_max_abs=measured[0] if measured else None)
