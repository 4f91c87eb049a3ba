"""A `torch.jit.save` archive read as data: its module tree flattened into a state dict.

Why this is safe: only `data.pkl` is read, with the same allowlist machine as every other pickle
plus one extension (`unpickler.py`, TorchScript mode): `__torch__.*` classes become inert
stand-ins (`standins.py`) that can only be created empty and given one attribute dict. `code/`,
`constants.pkl`, `bytecode.pkl` and `traced_inputs.pkl` are never read: no TorchScript is
compiled or run. The stand-in tree is checked like any unpickled graph (cycles, expanded size,
depth) and then flattened into `{"dotted.attribute.path": tensor}`, which is what
`module.state_dict()` would give for a model whose buffers are all persistent.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from .errors import ObjectGraphError
from .graph import check_graph
from .limits import Limits
from .pickles import load_record_archive
from .standins import ScriptObject

WHAT = "TorchScript data.pkl"


def load_torchscript(records: Mapping[str, memoryview], offsets: Mapping[str, int], *,
                     limits: Limits) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict of a TorchScript archive's module, and metadata naming the module's class."""
    obj = load_record_archive(records, offsets, limits=limits, what=WHAT, torchscript=True)
    if type(obj) is not ScriptObject:
        raise ObjectGraphError(f"{WHAT} holds a {type(obj).__name__}, not a scripted module")
    check_graph(obj, limits, standins=True)
    state: dict[str, torch.Tensor] = {}
    _flatten(obj, "", state)
    return state, {"torchscript": True, "module_class": obj.qualname}


def _flatten(node: ScriptObject, prefix: str, out: dict[str, torch.Tensor]) -> None:
    """Tensor attributes as `prefix + name`, stand-in attributes recursively; others skipped.

    Recursion depth is bounded by `check_graph` (the graph's depth limit) before we get here.
    """
    if node.state is None:
        raise ObjectGraphError(f"{WHAT}: {node.qualname} stand-in was never given its attributes")
    for name, value in node.state.items():
        if not name or "." in name:
            raise ObjectGraphError(f"{WHAT}: attribute name {name[:40]!r} of {node.qualname} "
                                   "is empty or dotted")
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value.detach()
        elif type(value) is ScriptObject:
            _flatten(value, f"{prefix}{name}.", out)
