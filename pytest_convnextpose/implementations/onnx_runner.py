"""Run an ONNX file through onnxruntime as an `Implementation` (`--onnx PATH`).

Why a separate runner: ONNX files come from many exporters, so nothing but the graph's
first input and first output is assumed. Their input axes may be fixed: the authors'
`main/torch2onnx.py` exports a 1x3x256x256 input with no dynamic axes, so a fixed batch is
run in chunks of its size (one image at a time for 1) and a fixed height x width is the
only size tested; a graph that declares its height and width dynamic is tested at a
second size too (traced shape constants make some graphs right at their export size only).
A file written by `convnextpose export-onnx` also carries metadata
(`convnextpose.checkpoint_sha256`, `convnextpose.spec`), which lets the suite pair it with
the checkpoint it was exported from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..checkpoint import metadata_keys as keys
from .adapter import INPUT_NUMPY, Implementation, ImplementationError


def _session(path: Path) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ImplementationError(
            f"--onnx {path}: onnxruntime is not installed (pip install onnxruntime, or the package's onnx extra)"
        ) from exc
    if not path.is_file():
        raise ImplementationError(f"--onnx {path}: no such file")
    opts = ort.SessionOptions()
    # fatal only: warnings about unused initialisers are noise, and a failed run's error is logged to
    # stderr besides being raised (the raised one is reported)
    opts.log_severity_level = 4
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        msg = " ".join(str(exc).split())[:300]
        raise ImplementationError(f"--onnx {path}: onnxruntime cannot load it: {msg}") from exc


def _fixed(dim: Any) -> Optional[int]:
    """A fixed (positive integer) axis length of an onnxruntime shape, else None (symbolic/unknown)."""
    return dim if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 else None


def _fixed_size(shape: list[Any]) -> Optional[tuple[int, int]]:
    """(H, W) when both are fixed integers in the graph's input shape, else None."""
    if len(shape) != 4:
        return None
    h, w = _fixed(shape[2]), _fixed(shape[3])
    return (h, w) if h and w else None


def _dynamic_size(shape: list[Any]) -> bool:
    """True when the graph declares both height and width dynamic (symbolic or unknown)."""
    return len(shape) == 4 and _fixed(shape[2]) is None and _fixed(shape[3]) is None


def load_onnx(path: str | Path) -> Implementation:
    """An `Implementation` that runs `path` with onnxruntime on the CPU."""
    path = Path(path)
    sess = _session(path)
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    if not inputs or not outputs:
        raise ImplementationError(f"--onnx {path}: the graph has no input or no output")
    in_name, out_name = inputs[0].name, outputs[0].name
    # a graph converted to float16 end to end takes float16 images (its output dtype is then checked)
    in_dtype = np.float16 if inputs[0].type == "tensor(float16)" else np.float32

    def run(images: np.ndarray) -> np.ndarray:
        return sess.run([out_name], {in_name: np.ascontiguousarray(images, dtype=in_dtype)})[0]

    meta = dict(sess.get_modelmeta().custom_metadata_map)
    shape = list(inputs[0].shape)
    return Implementation(
        name=f"onnx:{path.name}",
        kind="onnx",
        fn=run,
        accepts=INPUT_NUMPY,
        input_size=_fixed_size(shape),
        metadata=meta,
        fixed_batch=_fixed(shape[0]) if shape else None,
        dynamic_size=_dynamic_size(shape),
        path=path,
    )


def exported_from(impl: Implementation) -> Optional[str]:
    """SHA-256 of the checkpoint an ONNX file says it was exported from, if it says."""
    return impl.metadata.get(keys.CHECKPOINT_SHA256) or None
