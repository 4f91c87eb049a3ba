"""Shared fixtures: the golden cases (skipped, with the reason, when `../shared/golden` is
absent) and the tiny golden case copied into `tests/data/` (always present)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# pytester's in-process runs snapshot sys.modules and drop whatever a run imported. A C
# extension cannot be initialised twice: if onnx (or onnxruntime) is first imported inside
# such a run, the next import in this worker finds a half-dead module (AttributeError on
# `onnx_cpp2py_export.checker.CheckerContext`, or a crashed xdist worker). Importing them
# here, before any snapshot, keeps them in sys.modules for the whole session.
for _ext in ("onnx", "onnxruntime", "onnx.checker", "torch.onnx"):
    try:
        __import__(_ext)
    except ImportError:
        pass

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
DATA_DIR = TESTS_DIR / "data"
GOLDEN_DIR = REPO_ROOT.parent / "shared" / "golden"


@dataclass(frozen=True)
class GoldenCase:
    """One golden case: checkpoint, expected outputs and its manifest entry."""

    name: str
    checkpoint: Path
    expected: Path
    manifest: dict[str, Any]


def load_cases(directory: Path) -> dict[str, GoldenCase]:
    manifest = json.loads((directory / "manifest.json").read_text())
    return {name: GoldenCase(name, directory / m["checkpoint"], directory / m["expected"], m)
            for name, m in manifest.items()}


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    """`../shared/golden`; tests using it skip with the reason when it is not there (it is, in CI)."""
    if not (GOLDEN_DIR / "manifest.json").is_file():
        pytest.skip(f"golden files not present at {GOLDEN_DIR} (../shared/golden); "
                    "only the tiny case in tests/data runs")
    return GOLDEN_DIR


@pytest.fixture(scope="session")
def golden_cases(golden_dir: Path) -> dict[str, GoldenCase]:
    return load_cases(golden_dir)


@pytest.fixture(scope="session")
def tiny_case() -> GoldenCase:
    """The tiny golden case, copied into tests/data so it runs without ../shared."""
    return load_cases(DATA_DIR)["tiny"]
