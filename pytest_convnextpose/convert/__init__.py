"""Verified conversions: safetensors, the authors' layouts, ONNX; all written atomically.

`to_safetensors.convert_file` (via `safetensors_writer`, deterministic bytes),
`authors_layouts.export_file` (torch.save files the authors' scripts load),
`onnx_export.export_onnx` (the reference model as an ONNX graph, checked with onnxruntime).
`verification` proves a copy exact before it is published; `atomic_output` publishes it so
that no reader ever sees half a file.
"""
from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "convert_file": "to_safetensors", "convert_checkpoint": "to_safetensors",
    "ConversionReport": "to_safetensors", "VerificationError": "to_safetensors",
    "export_file": "authors_layouts", "LAYOUTS": "authors_layouts",
    "export_onnx": "onnx_export", "OnnxExportError": "onnx_export",
})
