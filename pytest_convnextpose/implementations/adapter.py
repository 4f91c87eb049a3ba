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
An implementation may offer `flip_test(images)`; the suite then checks it too, and
`input_size = (H, W)` (read from modules and callables alike) when it takes one size only.

ONNX graphs (onnx_runner) may fix the batch axis (the authors' `torch2onnx.py` exports a
1x3x256x256 input): such a graph is run on chunks of its batch, one image at a time for
batch 1, and its fixed axes are described in `fixed_axes` for the report and the messages.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

INPUT_NUMPY, INPUT_TORCH = "numpy", "torch"


class ImplementationError(Exception):
    """`--impl`/`--onnx` could not be turned into something callable. One line, names the target."""


@dataclass
class Implementation:
    """One implementation under test behind a common call: NumPy in, NumPy out.

    The user's objects are kept out of the repr (`repr=False`): a failure message must never
    dump a module's repr or a graph session."""

    name: str
    kind: str  # "module" | "callable" | "onnx"
    fn: Callable[[Any], Any] = field(repr=False)
    accepts: str = INPUT_NUMPY
    #: (H, W) when the implementation takes only one input size (an ONNX file with fixed dims)
    input_size: Optional[tuple[int, int]] = None
    flip_fn: Optional[Callable[[Any], Any]] = field(default=None, repr=False)
    device: Any = None
    metadata: dict[str, str] = field(default_factory=dict, repr=False)
    #: the batch size a graph is fixed to (images then go through in chunks of it), else None
    fixed_batch: Optional[int] = None
    #: True when the implementation declares dynamic height and width (an ONNX graph with
    #: symbolic H, W): it is then also tested at a second size
    dynamic_size: bool = False
    #: what the factory returned (a module is inspected when its outputs are wrong)
    obj: Any = field(default=None, repr=False)
    #: the ONNX file, for its initializers
    path: Optional[Path] = None

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
        """What the implementation itself returns for `images` (tensor, array, ...).

        A graph with a fixed batch N gets the images N at a time (the last chunk padded with
        copies of the last image, whose outputs are dropped); the outputs are concatenated."""
        n = self.fixed_batch
        if not n or len(images) == n:
            return self._call(self.fn, images)
        images = np.asarray(images, dtype=np.float32)
        outs = []
        for start in range(0, len(images), n):
            chunk = images[start:start + n]
            pad = n - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            out = to_numpy(self._call(self.fn, chunk))
            outs.append(out[:len(out) - pad] if pad else out)
        return np.concatenate(outs)

    def __call__(self, images: Any) -> np.ndarray:
        """Coordinates `(B, J, 3)` as a NumPy array (dtype as returned, not cast)."""
        return to_numpy(self.raw(images))

    @property
    def has_flip_test(self) -> bool:
        return self.flip_fn is not None

    @property
    def fixed_axes(self) -> str:
        """Which input axes are fixed, in words (for the report header and the messages)."""
        parts = []
        if self.fixed_batch:
            parts.append(f"fixed batch {self.fixed_batch}" +
                         (" (images run one at a time)" if self.fixed_batch == 1 else
                          f" (images run {self.fixed_batch} at a time)"))
        if self.input_size:
            parts.append(f"fixed input {self.input_size[0]}x{self.input_size[1]}")
        elif self.dynamic_size:
            parts.append("dynamic height x width (also tested at a second size)")
        return ", ".join(parts) if parts else "no fixed axes"

    @property
    def axes_note(self) -> str:
        """`; <fixed axes>` for a message's parenthesis, or "" when nothing is fixed."""
        return "" if self.fixed_axes == "no fixed axes" else f"; {self.fixed_axes}"

    def describe(self) -> dict[str, Any]:
        """JSON description for the conformance report."""
        return {"name": self.name, "kind": self.kind, "fixed_batch": self.fixed_batch,
                "input_size": list(self.input_size) if self.input_size else None,
                "dynamic_size": self.dynamic_size, "fixed_axes": self.fixed_axes}

    def flip_test(self, images: Any) -> np.ndarray:
        if self.flip_fn is None:
            raise ImplementationError(f"{self.name}: has no flip_test")
        return to_numpy(self._call(self.flip_fn, images))


def to_numpy(value: Any) -> np.ndarray:
    """Torch tensors (any device, with grad), lists and array-likes -> NumPy, dtype kept (bfloat16,
    which NumPy lacks, becomes float32: the dtype check reads the raw output)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        value = value.numpy()
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
        if not (exc.name and module.startswith(exc.name)):
            raise  # the user's module was found and failed to import one of its own dependencies
        if _add_invocation_folder(module):
            return _import(module, target)
        file_form = module.replace(".", "/") + ".py"
        raise ImplementationError(
            f"--impl {target!r}: module {module!r} not found: not installed, not on sys.path and not in "
            f"{Path.cwd()}; name the file instead: --impl path/to/{file_form}:{target.rpartition(':')[2]}") from exc


def _add_invocation_folder(module: str) -> bool:
    """Put the folder pytest (or the CLI) was started from on sys.path when `module` lives there.

    `python -m pytest` does this by itself and plain `pytest` does not, so the same
    `--impl my_port:build` worked with one and not the other; users expect the folder they run
    from to be searched. True when the folder was added (and was not there before)."""
    here = Path.cwd()
    top = module.partition(".")[0]
    if str(here) in sys.path or not ((here / f"{top}.py").is_file() or (here / top).is_dir()):
        return False
    sys.path.insert(0, str(here))
    importlib.invalidate_caches()
    return True


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
        return Implementation(name=name, kind="module", fn=obj, accepts=INPUT_TORCH, flip_fn=flip, device=device,
                              input_size=_input_size(obj, name), obj=obj)
    if not callable(obj):
        raise ImplementationError(f"{name}: the factory returned {type(obj).__name__}, "
                                  "expected a torch.nn.Module or a callable")
    accepts = getattr(obj, "accepts", INPUT_NUMPY)
    if accepts not in (INPUT_NUMPY, INPUT_TORCH):
        raise ImplementationError(f"{name}: attribute accepts={accepts!r}, expected 'numpy' or 'torch'")
    return Implementation(name=name, kind="callable", fn=obj, accepts=accepts, flip_fn=flip,
                          input_size=_input_size(obj, name), obj=obj)


def _input_size(obj: Any, name: str) -> Optional[tuple[int, int]]:
    """The optional `input_size = (H, W)` attribute of what a factory returned (any kind)."""
    try:
        size = getattr(obj, "input_size", None)
    except Exception:  # a TorchScript module or a proxy may raise for unknown attributes
        return None
    if size is None:
        return None
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ImplementationError(f"{name}: input_size={size!r}, expected (H, W)") from None
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise ImplementationError(f"{name}: input_size={size!r}, expected (H, W) positive multiples of 32")
    return (h, w)


def load_implementation(target: str, checkpoint: Any) -> Implementation:
    """`--impl module:factory` applied to a loaded checkpoint -> `Implementation`."""
    return build_implementation(load_factory(target), target, checkpoint)


def build_implementation(factory: Callable[[Any], Any], target: str, checkpoint: Any) -> Implementation:
    """Call the factory and wrap its result; anything it raises becomes one `ImplementationError`:
    the exception in one line at the user's own frame, then what a load error means in the
    checkpoint's terms (load_errors)."""
    try:
        obj = factory(checkpoint)
    except Exception as exc:
        from .load_errors import explain_load_error, summarize_load_error

        lines = [f"--impl {target!r}: the factory raised {one_line_error(exc, summarize_load_error(exc))}"]
        lines += explain_load_error(exc, checkpoint.spec)
        raise ImplementationError("\n".join(lines)) from None
    return wrap(obj, name=target)


#: frames inside these packages are not the user's: the message names the first frame above them
_LIBRARY_PARTS = ("/torch/", "/numpy/", "/onnxruntime/", "/pytest_convnextpose/", "/importlib/", "/_pytest/",
                  "/pluggy/", "<frozen ")


def user_frame(exc: BaseException) -> Optional[traceback.FrameSummary]:
    """The innermost traceback frame in the user's own code (not torch, numpy, this plugin, ...)."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ is not None else []
    for frame in reversed(frames):
        if not any(part in frame.filename.replace("\\", "/") for part in _LIBRARY_PARTS):
            return frame
    return None  # raised inside a library (onnxruntime running a graph): its message says enough


def one_line_error(exc: BaseException, text: Optional[str] = None) -> str:
    """`Type: message (file:line)` of an exception, at the user's frame; the message (or `text`)
    on one line and cut at 400 characters."""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({exc.filename}:{exc.lineno})"
    else:
        frame = user_frame(exc)
        if frame is not None:
            where = f" ({frame.filename}:{frame.lineno})"
    if text is None:
        text = str(exc.msg if isinstance(exc, SyntaxError) else exc)
    text = " ".join(text.split())
    if len(text) > 400:
        text = text[:400] + " ..."
    return f"{type(exc).__name__}: {text}{where}" if text else f"{type(exc).__name__}{where}"
