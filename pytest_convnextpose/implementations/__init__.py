"""Checking another implementation (`--impl`, `--onnx`) against the reference model.

`adapter` turns a factory's module or callable, or (`onnx_runner`) an ONNX file, into one
`Implementation` call; `inputs` and `golden` give the input batches and expected outputs;
`compare` measures parity; `diagnose` names the porting mistake behind a failure; `checks`
assembles what the conformance tests print.
"""
from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "Implementation": "adapter", "ImplementationError": "adapter", "load_implementation": "adapter",
    "load_onnx": "onnx_runner", "compare_coords": "compare", "ParityStats": "compare",
})
