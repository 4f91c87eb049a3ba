"""Last check on an unpickled result: only plain types, no cycles, bounded once expanded.

Why: pickle memo references can build a cycle (a dict inside itself) or a "billion laughs"
structure (a list of 2 references to a list of 2 references ...). Both are tiny in memory but make
every later consumer (key mapping, JSON output, `==`) recurse forever or explode. Walking the
result once, with shared references counted each time they are reached, bounds that work.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch

from .errors import ObjectGraphError, ObjectGraphLimitError
from .limits import Limits

_LEAVES = (str, bytes, int, float, bool, complex, type(None), torch.dtype, torch.device, torch.Tensor)
_CONTAINERS = (dict, OrderedDict, list, tuple, set, frozenset, torch.Size)


def check_graph(obj: Any, limits: Limits) -> Any:
    """Validate `obj` in place (large `memoryview` values in dicts/lists become bytes); return it."""
    visited = 0
    # stack of (object, depth); `open_ids` holds containers on the current path (cycle check)
    stack: list[tuple[Any, int, bool]] = [(obj, 0, False)]
    open_ids: set[int] = set()
    while stack:
        node, depth, leaving = stack.pop()
        if leaving:
            open_ids.discard(id(node))
            continue
        visited += 1
        if visited > limits.max_graph_nodes:
            raise ObjectGraphLimitError(f"object graph exceeds {limits.max_graph_nodes} nodes once "
                                        "shared references are expanded")
        if isinstance(node, _LEAVES) and not isinstance(node, torch.Size):
            continue
        if isinstance(node, memoryview):
            raise ObjectGraphError("large bytes value inside a tuple or set is not supported")
        if type(node) not in _CONTAINERS:
            raise ObjectGraphError(f"object of type {type(node).__name__} in the result")
        if depth >= limits.max_graph_depth:
            raise ObjectGraphLimitError(f"containers nested deeper than {limits.max_graph_depth}")
        if id(node) in open_ids:
            raise ObjectGraphError("object graph contains a cycle")
        open_ids.add(id(node))
        stack.append((node, depth, True))
        for child in _children(node):
            stack.append((child, depth + 1, False))
    return obj


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        for key, value in list(node.items()):
            if isinstance(value, memoryview):
                node[key] = bytes(value)
        children = list(node.keys()) + list(node.values())
        meta = getattr(node, "_metadata", None)
        if meta is not None:
            children.append(meta)
        return children
    if isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, memoryview):
                node[i] = bytes(value)
        return list(node)
    return list(node)
