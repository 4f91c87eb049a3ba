"""Last check on an unpickled result: only plain types, no cycles, bounded once expanded.

Why: pickle memo references can build a cycle (a dict inside itself) or a "billion laughs"
structure (a list of 2 references to a list of 2 references ...). Both are tiny in memory but make
every later consumer (key mapping, JSON output, `==`, the finiteness check of every tensor) recurse
forever or explode. One post-order walk over the distinct containers (linear time: each container's
children are listed once, however many parents share it) finds cycles and computes, per container,
its size, its depth and the bytes of tensor values below it *as a consumer would see them* with
shared references expanded; all three are bounded (the tensor bytes by the read's budget).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch

from .budget import Budget
from .errors import ObjectGraphError, ObjectGraphLimitError
from .standins import ScriptObject

_LEAVES = (str, bytes, int, float, bool, complex, type(None), torch.dtype, torch.device, torch.Tensor)
_CONTAINERS = (dict, OrderedDict, list, tuple, set, frozenset, torch.Size)


def check_graph(obj: Any, budget: Budget, *, standins: bool = False) -> Any:
    """Validate `obj` in place (large `memoryview` values in dicts/lists become bytes); return it.

    standins: accept TorchScript `ScriptObject` stand-ins as containers of their attribute dict
    (only while reading a TorchScript archive, before its tree is flattened).
    """
    limits = budget.limits
    if _is_leaf(obj, standins):
        _check_view_bytes(_tensor_bytes(obj), budget)
        return obj
    done: dict[int, tuple[int, int, int]] = {}  # id -> (expanded size, depth below, tensor bytes below)
    open_ids: set[int] = set()
    own: dict[int, tuple[int, int]] = {}  # id -> (leaf children, their tensor bytes), while open
    keep_alive: list[Any] = []  # ids stay unique while we hold the objects
    copies: dict[int, bytes] = {}  # a large bytes value (a view of the file) copied once, however shared
    stack: list[tuple[Any, list[Any] | None]] = [(obj, None)]
    while stack:
        node, children = stack[-1]
        if children is None:
            if id(node) in done:  # pushed by two parents: finished through the other one
                stack.pop()
                continue
            if id(node) in open_ids:
                raise ObjectGraphError("object graph contains a cycle")
            open_ids.add(id(node))
            keep_alive.append(node)
            members = _children(node, copies, budget)
            children = [c for c in members if not _is_leaf(c, standins)]
            stack[-1] = (node, children)
            own[id(node)] = (len(members) - len(children),
                             sum(_tensor_bytes(c) for c in members if isinstance(c, torch.Tensor)))
            pending = {id(c): c for c in children if id(c) not in done}
            for child in pending.values():
                if id(child) in open_ids:
                    raise ObjectGraphError("object graph contains a cycle")
                stack.append((child, None))
            if pending:
                continue
        stack.pop()
        leaves, leaf_bytes = own.pop(id(node))
        size = 1 + leaves + sum(done[id(c)][0] for c in children)
        depth = 1 + max((done[id(c)][1] for c in children), default=0)
        tbytes = leaf_bytes + sum(done[id(c)][2] for c in children)
        if size > limits.max_graph_nodes:
            raise ObjectGraphLimitError(f"object graph exceeds {limits.max_graph_nodes} objects once shared "
                                        "references are expanded")
        if depth > limits.max_graph_depth:
            raise ObjectGraphLimitError(f"containers nested deeper than {limits.max_graph_depth}")
        _check_view_bytes(tbytes, budget)
        done[id(node)] = (size, depth, tbytes)
        open_ids.discard(id(node))
    return obj


def _tensor_bytes(node: Any) -> int:
    return node.numel() * node.element_size() if isinstance(node, torch.Tensor) else 0


def _check_view_bytes(nbytes: int, budget: Budget) -> None:
    if nbytes > budget.max_view_bytes:
        raise ObjectGraphLimitError(f"the file hands out {nbytes} bytes of tensor values once shared references "
                                    f"are expanded (limit {budget.max_view_bytes} for a file of {budget.file_size} "
                                    "bytes): every one would be checked above the reader")


def _is_leaf(node: Any, standins: bool = False) -> bool:
    if isinstance(node, _LEAVES) and not isinstance(node, torch.Size):
        return True
    if isinstance(node, memoryview):
        raise ObjectGraphError("large bytes value inside a tuple or set is not supported")
    if standins and type(node) is ScriptObject:
        return False
    if type(node) not in _CONTAINERS:
        raise ObjectGraphError(f"object of type {type(node).__name__} in the result")
    return False


def _children(node: Any, copies: dict[int, bytes], budget: Budget) -> list[Any]:
    def as_bytes(view: memoryview) -> bytes:
        if id(view) not in copies:
            budget.charge(len(view), ObjectGraphLimitError, "large bytes value")
            copies[id(view)] = bytes(view)
        return copies[id(view)]

    if type(node) is ScriptObject:
        return [] if node.state is None else [node.state]
    if isinstance(node, dict):
        for key, value in list(node.items()):
            if isinstance(value, memoryview):
                node[key] = as_bytes(value)
        children = list(node.keys()) + list(node.values())
        meta = getattr(node, "_metadata", None)
        if meta is not None:
            children.append(meta)
        return children
    if isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, memoryview):
                node[i] = as_bytes(value)
        return list(node)
    return list(node)
