"""Last check on an unpickled result: only plain types, no cycles, bounded once expanded.

Why: pickle memo references can build a cycle (a dict inside itself) or a "billion laughs"
structure (a list of 2 references to a list of 2 references ...). Both are tiny in memory but make
every later consumer (key mapping, JSON output, `==`) recurse forever or explode. One post-order
walk over the distinct containers (linear time) finds cycles and computes, per container, its size
and depth *as a consumer would see them* with shared references expanded; both are bounded.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch

from .errors import ObjectGraphError, ObjectGraphLimitError
from .limits import Limits
from .standins import ScriptObject

_LEAVES = (str, bytes, int, float, bool, complex, type(None), torch.dtype, torch.device, torch.Tensor)
_CONTAINERS = (dict, OrderedDict, list, tuple, set, frozenset, torch.Size)


def check_graph(obj: Any, limits: Limits, *, standins: bool = False) -> Any:
    """Validate `obj` in place (large `memoryview` values in dicts/lists become bytes); return it.

    standins: accept TorchScript `ScriptObject` stand-ins as containers of their attribute dict
    (only while reading a TorchScript archive, before its tree is flattened).
    """
    if _is_leaf(obj, standins):
        return obj
    done: dict[int, tuple[int, int]] = {}  # id -> (expanded size, depth below)
    open_ids: set[int] = set()
    leaves: dict[int, int] = {}  # id -> leaf children, counted when the node's children are listed
    keep_alive: list[Any] = []  # ids stay unique while we hold the objects
    stack: list[tuple[Any, list[Any] | None]] = [(obj, None)]
    while stack:
        node, children = stack[-1]
        if children is None:
            if id(node) in open_ids:
                raise ObjectGraphError("object graph contains a cycle")
            open_ids.add(id(node))
            keep_alive.append(node)
            members = _children(node)
            children = [c for c in members if not _is_leaf(c, standins)]
            stack[-1] = (node, children)
            leaves[id(node)] = len(members) - len(children)
            pending = [c for c in children if id(c) not in done]
            for child in pending:
                if id(child) in open_ids:
                    raise ObjectGraphError("object graph contains a cycle")
                stack.append((child, None))
            if pending:
                continue
        stack.pop()
        if id(node) in done:  # listed twice by one parent: counted the first time
            open_ids.discard(id(node))
            leaves.pop(id(node), None)
            continue
        size = 1 + leaves.pop(id(node)) + sum(done[id(c)][0] for c in children)
        depth = 1 + max((done[id(c)][1] for c in children), default=0)
        if size > limits.max_graph_nodes:
            raise ObjectGraphLimitError(f"object graph exceeds {limits.max_graph_nodes} objects once shared "
                                        "references are expanded")
        if depth > limits.max_graph_depth:
            raise ObjectGraphLimitError(f"containers nested deeper than {limits.max_graph_depth}")
        done[id(node)] = (size, depth)
        open_ids.discard(id(node))
    return obj


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


def _children(node: Any) -> list[Any]:
    if type(node) is ScriptObject:
        return [] if node.state is None else [node.state]
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
