"""A `torch.jit.save` archive read as data: its module tree flattened into a state dict.

Why this is safe: only `data.pkl` is read, with the same allowlist machine as every other pickle
plus one extension (`unpickler.py`, TorchScript mode): `__torch__.*` classes become inert
stand-ins (`standins.py`) that can only be created empty and given one attribute dict. `code/`,
`constants.pkl`, `bytecode.pkl` and `traced_inputs.pkl` are never read: no TorchScript is
compiled or run. The stand-in tree is checked like any unpickled graph (cycles, expanded size,
depth) and then flattened into `{"dotted.attribute.path": tensor}`, which is what
`module.state_dict()` would give for a model whose buffers are all persistent.

An archive torch.jit.load would refuse is refused too, as far as can be told without compiling
code: `constants.pkl` must be there, and a `code/` file for every `__torch__` module that a
stand-in's class or a code file names (names found by a text scan of `code/*.py`, which must be
UTF-8 text; nothing in them is compiled or run).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from .budget import OBJECT_BYTES, Budget
from .errors import ContainerUnsupportedError, ObjectGraphError, ObjectGraphLimitError
from .graph import check_graph
from .pickles import load_record_archive
from .standins import ScriptObject

WHAT = "TorchScript data.pkl"
_TORCH_NAME = re.compile(rb"__torch__(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def load_torchscript(records: Mapping[str, memoryview], offsets: Mapping[str, int], *,
                     budget: Budget) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict of a TorchScript archive's module, and metadata naming the module's class."""
    obj = load_record_archive(records, offsets, budget=budget, what=WHAT, torchscript=True)
    if type(obj) is not ScriptObject:
        raise ObjectGraphError(f"{WHAT} holds a {type(obj).__name__}, not a scripted module")
    check_graph(obj, budget, standins=True)
    state: dict[str, torch.Tensor] = {}
    _flatten(obj, "", state, budget)
    _check_code_records(records, obj, budget)
    return state, {"torchscript": True, "module_class": obj.qualname}


def _check_code_records(records: Mapping[str, memoryview], root: ScriptObject, budget: Budget) -> None:
    """The records torch.jit.load needs besides data.pkl: constants.pkl and the code of every module named."""
    if "constants.pkl" not in records:
        raise ContainerUnsupportedError("TorchScript archive without constants.pkl (torch.jit.load refuses it)")
    modules = {name[len("code/"):-len(".py")].replace("/", ".") for name in records
               if name.startswith("code/") and name.endswith(".py")}
    names = {node.qualname.encode() for node in _stand_ins(root)}
    for name, record in records.items():
        if name.startswith("code/") and name.endswith(".py"):
            budget.charge(2 * len(record), ObjectGraphLimitError, f"TorchScript {name}")
            text = bytes(record)
            try:
                text.decode("utf-8")
            except UnicodeDecodeError:
                raise ContainerUnsupportedError(f"TorchScript record {name!r} is not UTF-8 text (torch.jit.load "
                                                "refuses it)") from None
            names.update(_TORCH_NAME.findall(text))
    for qualname in sorted(names):  # `__torch__.<module path>.<class or function>`
        if qualname.decode().rsplit(".", 1)[0] not in modules:
            raise ContainerUnsupportedError(f"TorchScript archive names {qualname.decode()[:120]!r} but holds no code "
                                            "for it (torch.jit.load refuses it)")


def _stand_ins(root: ScriptObject) -> list[ScriptObject]:
    """Every distinct stand-in below `root` (the graph is already checked: finite, acyclic)."""
    seen: dict[int, ScriptObject] = {}
    pending = [root]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen[id(node)] = node
        pending.extend(v for v in (node.state or {}).values() if type(v) is ScriptObject)
    return list(seen.values())


def _flatten(node: ScriptObject, prefix: str, out: dict[str, torch.Tensor], budget: Budget) -> None:
    """Tensor attributes as `prefix + name`, stand-in attributes recursively; others skipped.

    Recursion depth is bounded by `check_graph` (the graph's depth limit) before we get here. A
    stand-in shared under many names is flattened under each (as torch's `state_dict()` would), so
    every key made is charged to the budget.
    """
    if node.state is None:
        raise ObjectGraphError(f"{WHAT}: {node.qualname} stand-in was never given its attributes")
    for name, value in node.state.items():
        if not name or "." in name:
            raise ObjectGraphError(f"{WHAT}: attribute name {name[:40]!r} of {node.qualname} "
                                   "is empty or dotted")
        if isinstance(value, torch.Tensor):
            budget.charge(OBJECT_BYTES + len(prefix) + len(name), ObjectGraphLimitError,
                          f"{WHAT}: flattened module attributes")
            out[prefix + name] = value.detach()
        elif type(value) is ScriptObject:
            budget.charge(OBJECT_BYTES + len(prefix) + len(name), ObjectGraphLimitError,
                          f"{WHAT}: flattened module attributes")
            _flatten(value, f"{prefix}{name}.", out, budget)
