"""The package layout as docs/architecture.md states it: which package may import which, no circles.

Read from the source with `ast` (every import, also those inside functions, since a lazy
import is still a dependency), so a new import that crosses a layer the wrong way, or closes
a circle between modules, fails here with the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_convnextpose"
REFERENCE = PACKAGE.parent / "reference_model"

#: package -> the packages of ours it may import (besides itself); lowest layer first
ALLOWED = {
    "_lazy": set(),
    "errors": set(),
    "reading": {"_lazy", "errors"},
    "checkpoint": {"_lazy", "errors", "reading"},
    "testing": {"_lazy", "checkpoint"},
    "h36m": {"_lazy", "errors", "checkpoint"},
    "implementations": {"_lazy", "errors", "reading", "checkpoint"},
    "convert": {"_lazy", "errors", "reading", "checkpoint", "implementations"},
    "baseline": {"_lazy", "checkpoint", "implementations", "h36m"},
    "cli": {"_lazy", "errors", "reading", "checkpoint", "h36m", "implementations", "convert", "baseline"},
    "plugin": {
        "_lazy",
        "errors",
        "reading",
        "checkpoint",
        "testing",
        "h36m",
        "implementations",
        "convert",
        "baseline",
        "cli",
    },
    "__init__": {"_lazy", "errors", "checkpoint"},
    "__main__": {"cli"},
}
TOP_LEVEL_LIMIT = 8


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[str, int]]:
    """Absolute names of the modules of ours that `path` imports, with line numbers."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            candidates = [f"{target}.{a.name}" for a in node.names] + [target]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        for cand in candidates:
            if cand == "pytest_convnextpose.__version__":  # the package root's version string
                out.append((cand, node.lineno))
                break
            if cand.startswith(("pytest_convnextpose", "reference_model")) and _exists(cand):
                out.append((cand, node.lineno))
                break
    return out


def _exists(dotted: str) -> bool:
    p = PACKAGE.parent.joinpath(*dotted.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def top_package(dotted: str) -> str:
    parts = dotted.split(".")
    if parts[0] == "reference_model":
        return "reference_model"
    return parts[1] if len(parts) > 1 else "__init__"


def all_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_at_most_eight_top_level_modules_and_five_sub_packages():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert len(modules) <= TOP_LEVEL_LIMIT, f"expected at most {TOP_LEVEL_LIMIT} top-level modules, got {modules}"
    assert len(packages) >= 5, f"expected at least 5 sub-packages, got {packages}"
    assert set(packages) | {m.removesuffix(".py") for m in modules} <= set(ALLOWED), (
        f"every package and top-level module has a row in ALLOWED (and docs/architecture.md): {packages} {modules}"
    )


def test_each_package_imports_only_the_packages_below_it():
    wrong = []
    for path in all_modules():
        own = top_package(module_name(path))
        for target, line in imports_of(path):
            other = top_package(target)
            if other in (own, "reference_model") or target == "pytest_convnextpose.__version__":
                continue
            if other not in ALLOWED[own]:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {own} imports {target} ({other})")
    assert not wrong, "imports against the layering of docs/architecture.md:\n" + "\n".join(wrong)


def test_no_import_circles_between_modules():
    # (a module's own parent packages are imported before it by Python itself: not edges we add)
    graph = {module_name(p): {t for t, _ in imports_of(p)} for p in all_modules()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                cycles.append(
                    " -> ".join(stack[stack.index(nxt) :] + [node, nxt]) if nxt in stack else f"{node} -> {nxt}"
                )
            elif nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import circles:\n" + "\n".join(cycles)


def test_reference_model_imports_nothing_of_ours():
    found = [
        f"{p.name}:{n.lineno}"
        for p in REFERENCE.rglob("*.py")
        for n in ast.walk(ast.parse(p.read_text()))
        if isinstance(n, (ast.Import, ast.ImportFrom))
        and any(
            (getattr(n, "module", None) or "").startswith("pytest_convnextpose")
            or a.name.startswith("pytest_convnextpose")
            for a in n.names
        )
    ]
    assert not found, f"reference_model must not import pytest_convnextpose: {found}"
