"""Inert stand-ins for the `__torch__.*` objects a TorchScript archive's `data.pkl` pickles.

Why stand-ins: `torch.jit.save` pickles the module tree as objects of classes named
`__torch__.<module path>.<Class>` (compiled from `code/`). We never import, compile or run those
classes; a stand-in only records the class name the file claims and the attribute dict that
`BUILD` hands it. They exist only while reading a TorchScript archive (`torchscript.py`) and
never leave the reader: the tree is flattened into a plain state dict of tensors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

TORCHSCRIPT_PREFIX = "__torch__"


def is_script_class_name(module: str) -> bool:
    """True for a module path TorchScript compiles into (`__torch__` or `__torch__.<path>`)."""
    return module == TORCHSCRIPT_PREFIX or module.startswith(TORCHSCRIPT_PREFIX + ".")


@dataclass(frozen=True)
class QualifiedName:
    """`module.name` as a pickle names a global; subclasses say what the reader may do with it."""

    module: str
    name: str

    def __repr__(self) -> str:
        return f"{self.module}.{self.name}"


class ScriptClass(QualifiedName):
    """A `__torch__.*` class named by the file: only usable with `NEWOBJ` and empty arguments."""


@dataclass(eq=False)
class ScriptObject:
    """A stand-in instance: its claimed class name and the attribute dict `BUILD` gave it (once)."""

    qualname: str
    state: Optional[dict] = None

    def __repr__(self) -> str:
        return f"<stand-in {self.qualname}>"
