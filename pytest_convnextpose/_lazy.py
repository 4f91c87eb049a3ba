"""Lazy package attributes (PEP 562), so importing a package costs nothing until a name is used.

Why: the pytest plugin is imported by every pytest run in a user's environment, and the CLI's
`--help` must answer at once; neither may pay for torch or numpy because a package's
`__init__` re-exported a name from a heavy submodule. Each package lists its public names
and the submodule that defines each; an access imports that submodule (a dictionary lookup
once it is loaded). Values are deliberately not cached on the package: a cached value would
go stale if the submodule were ever re-imported (pytester's in-process runs restore
`sys.modules`), leaving two copies of a class such as an error type.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for `package`, whose name `n` lives in submodule `exports[n]`."""

    def __getattr__(name: str) -> Any:
        submodule = exports.get(name)
        if submodule is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{submodule}"), name)

    def __dir__() -> list[str]:
        return sorted(set(exports) | set(vars(sys.modules[package])))

    return __getattr__, __dir__
