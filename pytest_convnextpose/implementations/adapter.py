"""Implementations under test: load `--impl module:factory` and give every kind one call.

Why an adapter: a reimplementation may be a `torch.nn.Module`, a function over NumPy
arrays (JAX, TensorFlow, plain NumPy ports), or an ONNX file. The conformance suite
should not care which, so each is wrapped in an `Implementation` whose `__call__`
takes a float32 NumPy batch `(B, 3, H, W)` and returns a NumPy array `(B, J, 3)`,
while `raw()` keeps the implementation's own return value for the dtype check.

Factory contract (docs/reimplementers.md):
    factory(checkpoint) -> torch.nn.Module | callable
`checkpoint` is the loaded `pytest_convnextpose.Checkpoint` (`.state_dict` canonical,
`.spec` an `ArchSpec`). A module is called with a torch tensor on its own device under
`torch.no_grad()`, in eval mode. A plain callable gets a NumPy array unless it has the
attribute `accepts = "torch"`. The result may be anything `numpy.asarray` understands.
An implementation may offer `flip_test(images)`; the suite then checks it too.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

INPUT_NUMPY, INPUT_TORCH = "numpy", "torch"


class ImplementationError(Exception):
    """`--impl`/`--onnx` could not be turned into something callable. One line, names the target."""


@dataclass
class Implementation:
    """One implementation under test behind a common call: NumPy in, NumPy out."""

    name: str
    kind: str  # "module" | "callable" | "onnx"
    fn: Callable[[Any], Any]
    accepts: str = INPUT_NUMPY
    #: (H, W) when the implementation takes only one input size (an ONNX file with fixed dims)
    input_size: Optional[tuple[int, int]] = None
    flip_fn: Optional[Callable[[Any], Any]] = None
    device: Any = None
    metadata: dict[str, str] = field(default_factory=dict)

    def _to_input(self, images: Any) -> Any:
        arr = np.ascontiguousarray(np.asarray(images, dtype=np.float32))
        if self.accepts == INPUT_TORCH:
            import torch
            tensor = torch.from_numpy(arr.copy())
            return tensor.to(self.device) if self.device is not None else tensor
        return arr

    def _call(self, fn: Callable[[Any], Any], images: Any) -> Any:
        if self.accepts == INPUT_TORCH:
            import torch
            with torch.no_grad():
                return fn(self._to_input(images))
        return fn(self._to_input(images))

    def raw(self, images: Any) -> Any:
        """What the implementation itself returns for `images` (tensor, array, ...)."""
        return self._call(self.fn, images)

    def __call__(self, images: Any) -> np.ndarray:
        """Coordinates `(B, J, 3)` as a NumPy array (dtype as returned, not cast)."""
        return to_numpy(self.raw(images))

    @property
    def has_flip_test(self) -> bool:
        return self.flip_fn is not None

    def flip_test(self, images: Any) -> np.ndarray:
        if self.flip_fn is None:
            raise ImplementationError(f"{self.name}: has no flip_test")
        return to_numpy(self._call(self.flip_fn, images))


def to_numpy(value: Any) -> np.ndarray:
    """Torch tensors (any device, with grad), lists and array-likes -> NumPy, dtype kept."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def dtype_name(value: Any) -> str:
    """Readable dtype of a raw output: 'torch.float32', 'float64', ..."""
    dt = getattr(value, "dtype", None)
    return str(dt) if dt is not None else type(value).__name__


def is_float32(value: Any) -> bool:
    dt = getattr(value, "dtype", None)
    if dt is None:
        return False
    return str(dt) in ("float32", "torch.float32")


# -- loading -------------------------------------------------------------------

def parse_target(target: str) -> tuple[str, str]:
    """`module:factory` or `path/to/file.py:factory` -> (module or path, attribute)."""
    mod, sep, attr = target.rpartition(":")
    if not sep or not mod or not attr:
        raise ImplementationError(f"--impl {target!r}: expected MODULE:FACTORY, e.g. my_port.convnextpose:build")
    return mod, attr


def _import(module: str, target: str) -> Any:
    if module.endswith(".py"):
        path = Path(module)
        if not path.is_file():
            raise ImplementationError(f"--impl {target!r}: no such file {module}")
        name = f"_convnextpose_impl_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImplementationError(f"--impl {target!r}: cannot import {module}")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        return mod
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise ImplementationError(
                f"--impl {target!r}: module {module!r} not found (is it installed or on sys.path?)") from exc
        raise


def load_factory(target: str) -> Callable[[Any], Any]:
    """Import the factory named by `target`. Importing runs the user's own module, by design."""
    module, attr = parse_target(target)
    mod = _import(module, target)
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ImplementationError(f"--impl {target!r}: {module!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ImplementationError(f"--impl {target!r}: {attr!r} is not callable")
    return obj


def wrap(obj: Any, name: str) -> Implementation:
    """Wrap what a factory returned (module or callable) as an `Implementation`."""
    try:
        import torch
        is_module = isinstance(obj, torch.nn.Module)
    except ImportError:  # pragma: no cover - torch is a dependency
        is_module = False
    flip = getattr(obj, "flip_test", None)
    flip = flip if callable(flip) else None
    if is_module:
        obj.eval()
        param = next(iter(obj.parameters()), None)
        device = param.device if param is not None else None
        return Implementation(name=name, kind="module", fn=obj, accepts=INPUT_TORCH, flip_fn=flip, device=device)
    if not callable(obj):
        raise ImplementationError(f"{name}: the factory returned {type(obj).__name__}, "
                                  "expected a torch.nn.Module or a callable")
    accepts = getattr(obj, "accepts", INPUT_NUMPY)
    if accepts not in (INPUT_NUMPY, INPUT_TORCH):
        raise ImplementationError(f"{name}: attribute accepts={accepts!r}, expected 'numpy' or 'torch'")
    size = getattr(obj, "input_size", None)
    return Implementation(name=name, kind="callable", fn=obj, accepts=accepts, flip_fn=flip,
                          input_size=tuple(size) if size else None)


def load_implementation(target: str, checkpoint: Any) -> Implementation:
    """`--impl module:factory` applied to a loaded checkpoint -> `Implementation`."""
    factory = load_factory(target)
    return wrap(factory(checkpoint), name=target)
