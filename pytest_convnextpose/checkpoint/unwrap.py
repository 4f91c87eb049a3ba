"""Find the state dict inside a loaded object; keep everything else as JSON-safe metadata.

Checkpoints in the wild wrap the same state dict in different ways (`network`, `state_dict`,
`model_state_dict`, `model`, nested, or bare) beside training state (epoch, optimizer). This
module only finds the tensors; their key spelling is `dialects`' concern. Optimizer tensors are
never copied into the metadata: only a summary of their groups.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import torch

from ..errors import UnknownFormatError

#: wrapper keys, in the order they are tried
WRAPPER_KEYS = ("network", "state_dict", "model_state_dict", "model")
_MAX_WRAPPER_DEPTH = 3


@dataclass
class Unwrapped:
    """The state dict found inside a loaded object, and everything else kept as metadata."""

    state_dict: dict[str, torch.Tensor]
    wrapper: Optional[str]
    metadata: dict[str, Any] = field(default_factory=dict)


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and any(isinstance(v, torch.Tensor) for v in obj.values())


def unwrap(obj: Any) -> Unwrapped:
    """Find the state dict in `obj`: `network`/`state_dict`/`model_state_dict`/`model` (nested
    up to 3 levels, recorded as e.g. `model.state_dict`) or bare; the rest becomes metadata."""
    if not isinstance(obj, Mapping):
        raise UnknownFormatError(f"top-level object is a {type(obj).__name__}, not a dict of tensors")
    path: list[str] = []
    metadata: dict[str, Any] = {}
    current: Mapping = obj
    for _ in range(_MAX_WRAPPER_DEPTH):
        key = next((k for k in WRAPPER_KEYS if k in current and isinstance(current[k], Mapping)), None)
        if key is None or (_looks_like_state_dict(current) and not _is_tensor_dict(current[key])):
            break
        metadata.update(_describe_extras(current, skip=key))
        path.append(key)
        current = current[key]
    state, extras = _split_tensors(current, where=".".join(path) or "top level")
    metadata.update(extras)
    metadata.setdefault("has_optimizer", False)
    return Unwrapped(state, ".".join(path) or None, metadata)


def _looks_like_state_dict(obj: Mapping) -> bool:
    tensors = sum(isinstance(v, torch.Tensor) for v in obj.values())
    return tensors > 0 and tensors >= len(obj) // 2


def _split_tensors(obj: Mapping, where: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        example = next(iter(obj), None)
        what = f"e.g. key {example!r}" if example is not None else "it is empty"
        raise UnknownFormatError(f"no tensors found at {where} ({what}); not a checkpoint state dict")
    extras = {k: v for k, v in obj.items() if not isinstance(v, torch.Tensor)}
    return state, _describe_extras(extras, skip=None)


def _describe_extras(obj: Mapping, skip: Optional[str]) -> dict[str, Any]:
    """JSON-safe metadata from the wrapper's other entries; optimizer tensors are never copied."""
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if k == skip:
            continue
        name = str(k)
        if name in ("optimizer", "optimizer_state_dict", "optim", "optimizer_states"):
            out["has_optimizer"] = True
            out[f"{name}_summary"] = _optimizer_summary(v)
        else:
            out[name] = _json_safe(v)
    return out


def _optimizer_summary(opt: Any) -> Any:
    """A summary of whatever the file stores as optimizer state (its entries may be of any type)."""
    if isinstance(opt, (list, tuple)):
        return [_optimizer_summary(o) for o in opt[:4]]
    if not isinstance(opt, Mapping):
        return _json_safe(opt, depth=2)
    groups = opt.get("param_groups")
    groups = list(groups[:50]) if isinstance(groups, (list, tuple)) else []
    group_info = [{str(k): _json_safe(v) for k, v in g.items() if k != "params"} for g in groups
                  if isinstance(g, Mapping)]
    state = opt.get("state")
    return {"param_groups": group_info, "num_state_entries": len(state) if isinstance(state, Mapping) else None}


def _json_safe(v: Any, depth: int = 0) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, torch.Tensor):
        if v.numel() == 1:
            return v.item()
        return f"<tensor {list(v.shape)} {str(v.dtype).replace('torch.', '')}>"
    if depth >= 3:
        return f"<{type(v).__name__}>"
    if isinstance(v, Mapping):
        items = list(v.items())
        out = {str(k): _json_safe(x, depth + 1) for k, x in items[:50]}
        if len(items) > 50:
            out["..."] = f"{len(items) - 50} more entries"
        return out
    if isinstance(v, (list, tuple)):
        out_l = [_json_safe(x, depth + 1) for x in list(v)[:50]]
        if len(v) > 50:
            out_l.append(f"... {len(v) - 50} more")
        return out_l
    return f"<{type(v).__name__}>"
