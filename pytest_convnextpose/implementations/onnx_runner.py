"""Run an ONNX file through onnxruntime as an `Implementation` (`--onnx PATH`).

Why a separate runner: ONNX files come from many exporters, so nothing but the graph's
first input and first output is assumed. A file written by `convnextpose export-onnx`
also carries metadata (`convnextpose.checkpoint_sha256`, `convnextpose.spec`), which
lets the suite pair it with the checkpoint it was exported from.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from .adapter import INPUT_NUMPY, Implementation, ImplementationError
from ..checkpoint import metadata_keys as keys



def _session(path: Path) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ImplementationError(
            f"--onnx {path}: onnxruntime is not installed (pip install 'pytest-convnextpose[onnx]')") from exc
    if not path.is_file():
        raise ImplementationError(f"--onnx {path}: no such file")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only: warnings about unused initialisers are noise here
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        msg = " ".join(str(exc).split())[:300]
        raise ImplementationError(f"--onnx {path}: onnxruntime cannot load it: {msg}") from exc


def _fixed_size(shape: list[Any]) -> Optional[tuple[int, int]]:
    """(H, W) when both are fixed integers in the graph's input shape, else None."""
    if len(shape) != 4:
        return None
    h, w = shape[2], shape[3]
    return (h, w) if isinstance(h, int) and isinstance(w, int) else None


def load_onnx(path: str | Path) -> Implementation:
    """An `Implementation` that runs `path` with onnxruntime on the CPU."""
    path = Path(path)
    sess = _session(path)
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    if not inputs or not outputs:
        raise ImplementationError(f"--onnx {path}: the graph has no input or no output")
    in_name, out_name = inputs[0].name, outputs[0].name

    def run(images: np.ndarray) -> np.ndarray:
        return sess.run([out_name], {in_name: np.ascontiguousarray(images, dtype=np.float32)})[0]

    meta = dict(sess.get_modelmeta().custom_metadata_map)
    return Implementation(name=f"onnx:{path.name}", kind="onnx", fn=run, accepts=INPUT_NUMPY,
                          input_size=_fixed_size(list(inputs[0].shape)), metadata=meta)


def exported_from(impl: Implementation) -> Optional[str]:
    """SHA-256 of the checkpoint an ONNX file says it was exported from, if it says."""
    return impl.metadata.get(keys.CHECKPOINT_SHA256) or None
