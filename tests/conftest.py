"""Shared fixtures: the golden cases (skipped, with the reason, when `../shared/golden` is
absent) and the tiny golden case copied into `tests/data/` (always present).

A skip is right on a developer's machine without `../shared`, but in CI it would hide a moved
or missing golden folder. With `CONVNEXTPOSE_REQUIRE_GOLDEN=1` (set by `.ci/run`) the golden
fixtures fail instead, and any test that skips giving a golden-file reason fails too.
`CONVNEXTPOSE_GOLDEN` points at another golden folder.

`golden_case("tiny")` comes from tests/data and so runs everywhere; the other names need the
golden folder. Work several tests only read (the tiny file converted to safetensors and to ONNX,
the hostile corpus) is done once per session here."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn

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
# The same holds for our own modules in a milder form: one first imported inside such a run is
# imported again later, and its classes (e.g. an error type a test expects) exist twice.
import pkgutil  # noqa: E402

import pytest_convnextpose  # noqa: E402

for _mod in pkgutil.walk_packages(pytest_convnextpose.__path__, "pytest_convnextpose."):
    __import__(_mod.name)

# The tool's own property tests explore new examples on every developer run (that is how they find
# bugs), but CI must give the same answer for the same commit: under CI they are derandomized
# (examples seeded from each test's own source), as Hypothesis advises for CI. "Under CI" is
# Hypothesis' own rule, `CI` set to anything (it then loads its `ci` profile, derandomized, itself),
# or `CONVNEXTPOSE_DERANDOMIZE=1`, which .ci/run exports for CI systems that set no `CI`. A bug a
# developer run finds is then fixed and kept as an explicit case, not left to turn a later CI run
# red by chance.
if "CI" in os.environ or os.environ.get("CONVNEXTPOSE_DERANDOMIZE", "").strip() not in ("", "0"):
    from hypothesis import settings as _settings

    _settings.register_profile("convnextpose-tests-ci", derandomize=True, print_blob=True)
    _settings.load_profile("convnextpose-tests-ci")

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
DATA_DIR = TESTS_DIR / "data"
GOLDEN_DIR = Path(os.environ.get("CONVNEXTPOSE_GOLDEN") or REPO_ROOT.parent / "shared" / "golden")
REQUIRE_GOLDEN_ENV = "CONVNEXTPOSE_REQUIRE_GOLDEN"


def golden_required() -> bool:
    """True when the golden files must be there (CI): their absence is then a failure."""
    return os.environ.get(REQUIRE_GOLDEN_ENV, "").strip() not in ("", "0")


def golden_missing(what: str) -> NoReturn:
    """Skip (developer machine) or, with CONVNEXTPOSE_REQUIRE_GOLDEN=1, fail: golden `what` is absent."""
    if golden_required():
        pytest.fail(f"{REQUIRE_GOLDEN_ENV}=1 but the golden files are missing: {what}", pytrace=False)
    pytest.skip(f"golden files not present: {what}; only the tiny case in tests/data runs")


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
    """`../shared/golden`; tests using it skip with the reason when it is not there (it is, in CI,
    where CONVNEXTPOSE_REQUIRE_GOLDEN=1 makes its absence a failure)."""
    if not (GOLDEN_DIR / "manifest.json").is_file():
        golden_missing(f"no manifest.json in {GOLDEN_DIR} (../shared/golden, or $CONVNEXTPOSE_GOLDEN)")
    return GOLDEN_DIR


@pytest.fixture(scope="session")
def golden_cases(golden_dir: Path) -> dict[str, GoldenCase]:
    cases = load_cases(golden_dir)
    absent = [str(p) for c in cases.values() for p in (c.checkpoint, c.expected) if not p.is_file()]
    if absent:
        golden_missing(f"{golden_dir / 'manifest.json'} lists files that are not there: {', '.join(absent)}")
    return cases


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """With CONVNEXTPOSE_REQUIRE_GOLDEN=1, a skip whose reason mentions the golden files (a
    collection-time skip marker, or a test's own `pytest.skip`) is reported as a failure."""
    report = yield
    if golden_required() and report.skipped and "golden" in _skip_reason(report).lower():
        report.outcome = "failed"
        report.longrepr = (f"{REQUIRE_GOLDEN_ENV}=1 but {item.nodeid} skipped for missing golden files: "
                           f"{_skip_reason(report)}")
    return report


def _skip_reason(report: pytest.TestReport) -> str:
    """The reason of a skipped report (longrepr is `(file, line, reason)` for skips)."""
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


@pytest.fixture(scope="session")
def tiny_case() -> GoldenCase:
    """The tiny golden case, copied into tests/data so it runs without ../shared."""
    return load_cases(DATA_DIR)["tiny"]


@pytest.fixture
def golden_case(request: pytest.FixtureRequest) -> Callable[[str], GoldenCase]:
    """Look a golden case up by name: "tiny" from tests/data (always there, never skips); the
    others through `golden_cases` (skip without ../shared/golden, fail with CONVNEXTPOSE_REQUIRE_GOLDEN=1)."""
    def lookup(name: str) -> GoldenCase:
        if name == "tiny":
            return request.getfixturevalue("tiny_case")
        return request.getfixturevalue("golden_cases")[name]
    return lookup


@pytest.fixture(scope="session")
def tiny_safetensors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny golden checkpoint converted (`convnextpose convert`) to safetensors, once per session,
    alone in its own folder. For tests that only read the result; tests that change it copy it first."""
    from pytest_convnextpose.cli.main import main

    out = tmp_path_factory.mktemp("tiny_st") / "tiny.safetensors"
    assert main(["convert", str(DATA_DIR / "tiny_snapshot_83.pth.tar"), str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, Path]:
    """The hostile corpus (tests/hostile_corpus.py), built once per session: (cases, marker).

    Every code-running payload would create `marker`; tests check it never appears. Read-only:
    tests write their outputs elsewhere."""
    from hostile_corpus import hostile_cases

    tmp = tmp_path_factory.mktemp("hostile")
    marker = tmp / "MARKER_payload_ran"
    return list(hostile_cases(tmp / "files", marker)), marker


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny golden checkpoint exported to ONNX at its 128x128 input, once per session.

    Tests that change this file must copy it first (it is shared)."""
    from pytest_convnextpose.cli.main import main

    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    assert main(["export-onnx", str(DATA_DIR / "tiny_snapshot_83.pth.tar"), str(out), "--input-size", "128"]) == 0
    return out
