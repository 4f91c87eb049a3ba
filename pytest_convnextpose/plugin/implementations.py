"""pytest sub-plugin: implementations under test (`--impl`, `--onnx`) and expectation files.

Options (`options.py`; docs/reimplementers.md): `--impl MODULE:FACTORY`, `--onnx PATH`,
`--atol`/`--rtol` (a test may override with @pytest.mark.convnextpose_tolerance(atol=..., rtol=...)),
`--xfails-file FILE`.

Start-up checks (one usage error, not an error per test): each `--impl` module is imported
and its factory looked up, each `--onnx` file is opened with onnxruntime. The results are
kept for the fixtures, so nothing is imported twice. (Skipped on xdist workers: the
controller checked.) An ONNX file whose metadata names the checkpoint it was exported from
must match one of the checkpoints under test: otherwise that is the start-up error, once.

Failures to build an implementation (a factory that raises) are reported once per
implementation and checkpoint: the first test that needs it errors with the one-line
message; the others skip, pointing at it (a session fixture's exception would otherwise
repeat, traceback and all, in every test).

Import cost: this module is imported by every pytest run (the plugin is an entry point), so
it imports nothing heavy at module level; numpy, torch and the model come in inside hooks
and fixtures, when a run actually uses them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from ..implementations.tolerances import DEFAULT_ATOL, DEFAULT_RTOL

TOLERANCE_MARKER = "convnextpose_tolerance"

XFAIL_ENTRIES_KEY = pytest.StashKey[list]()
_IMPL_CACHE_KEY = pytest.StashKey[dict]()
_CHECKED_KEY = pytest.StashKey[dict]()  # what the start-up checks loaded: ("impl"|"onnx", value) -> object
_REPORTED_KEY = pytest.StashKey[dict]()  # build failure key -> node id of the test that reported it
#: attribute of the exception a failed implementation build raises (its report-once key)
_FAILURE_ATTR = "convnextpose_impl_failure"


@dataclass(frozen=True)
class ImplSource:
    """One implementation given on the command line: `impl` (module:factory) or `onnx` (path)."""

    kind: str
    target: str

    @property
    def id(self) -> str:
        if self.kind == "onnx":
            return f"onnx-{Path(self.target).name}"
        mod, _, attr = self.target.rpartition(":")
        return f"impl-{Path(mod).name if mod.endswith('.py') else mod}:{attr}"

    @property
    def display(self) -> str:
        return f"onnx:{self.target}" if self.kind == "onnx" else self.target


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    source: str  # default | command line | marker


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{TOLERANCE_MARKER}(atol=None, rtol=None): parity tolerance for this test (overrides --atol/--rtol)"
    )
    config.stash[_IMPL_CACHE_KEY] = {}
    from .xfails import XfailsFileError, read_file

    entries = []
    for path in config.getoption("convnextpose_xfails") or []:
        try:
            entries += read_file(path)
        except XfailsFileError as exc:
            raise pytest.UsageError(str(exc)) from None
    config.stash[XFAIL_ENTRIES_KEY] = entries
    config.stash[_CHECKED_KEY] = {}
    config.stash[_REPORTED_KEY] = {}
    # Checked once, on the controller, and not for --help/--version (which must always work).
    if not hasattr(config, "workerinput") and not (config.option.help or config.option.version):
        _check_sources(config)
        _describe_sources_in_report(config)


def _describe_sources_in_report(config: pytest.Config) -> None:
    """The JSON report's `implementations`: each source and, for ONNX files, which axes are fixed."""
    from .core import COLLECTOR_NAME

    collector = config.pluginmanager.get_plugin(COLLECTOR_NAME)
    if collector is None:
        return
    checked = config.stash[_CHECKED_KEY]
    entries = []
    for source in impl_sources(config):
        loaded = checked.get((source.kind, source.target))
        entry = {"source": source.display, "kind": source.kind}
        if source.kind == "onnx" and loaded is not None:
            entry.update(loaded.describe())
        entries.append(entry)
    if entries:
        collector.meta["implementations"] = entries


def _check_sources(config: pytest.Config) -> None:
    """Import each --impl factory, open each --onnx file: a bad value is one usage error."""
    checked = config.stash[_CHECKED_KEY]
    for source in impl_sources(config):
        checked[(source.kind, source.target)] = loaded = _check_source(source)
        if source.kind == "onnx":
            _check_onnx_origin(config, source, loaded)


def _check_onnx_origin(config: pytest.Config, source: ImplSource, session: Any) -> None:
    """An ONNX file exported from none of the checkpoints under test fails every parity test
    alike: say so once, at start-up. (Only when every checkpoint's digest is known from its
    file; a folder checkpoint's digest is known once loaded, and `_load` checks it then.)"""
    from ..implementations.onnx_runner import exported_from
    from .state import get_checkpoints

    origin = exported_from(session)
    if not origin:
        return
    sources = get_checkpoints(config)
    digests = {s.sha256 for s in sources}
    if None in digests or origin in digests or any(origin in _answers_to(config, s) for s in sources):
        return
    under_test = ", ".join(f"{s.path.name} ({s.sha256[:8]})" for s in sources)
    raise pytest.UsageError(
        f"--onnx {source.target}: exported from a checkpoint with sha256 {origin[:8]}..., which "
        f"is none of the checkpoints under test: {under_test}; pass that checkpoint with --ckpt"
    )


def _answers_to(config: pytest.Config, source: Any) -> list[str]:
    """The hashes a checkpoint under test answers to: its own and, for a file made by `convnextpose
    convert` (tensors verified bit-equal to the source's), its source's. Loads it (once per run)."""
    from ..errors import CheckpointError
    from ..implementations.golden import provenance_hashes
    from .state import load_cached

    loaded = load_cached(config, source)
    return [] if isinstance(loaded, CheckpointError) else provenance_hashes(loaded.sha256, loaded.metadata)


def _check_source(source: ImplSource) -> Any:
    """The factory (`impl`) or session (`onnx`) of one source; a usage error naming it otherwise."""
    from ..implementations.adapter import ImplementationError, load_factory  # imported here: they import numpy
    from ..implementations.onnx_runner import load_onnx

    try:
        return load_factory(source.target) if source.kind == "impl" else load_onnx(source.target)
    except ImplementationError as exc:
        message = str(exc)
    except Exception as exc:  # the user's module raised while importing: say where, in one line
        from ..implementations.adapter import one_line_error

        message = f"--{source.kind} {source.target!r}: loading it raised {one_line_error(exc)}"
    raise pytest.UsageError(message)


def impl_sources(config: pytest.Config) -> list[ImplSource]:
    return [ImplSource("impl", t) for t in config.getoption("convnextpose_impl") or []] + [
        ImplSource("onnx", t) for t in config.getoption("convnextpose_onnx") or []
    ]


def pytest_report_header(config: pytest.Config) -> list[str]:
    checked = config.stash.get(_CHECKED_KEY, {})
    lines = []
    for source in impl_sources(config):
        loaded = checked.get((source.kind, source.target))
        axes = f" ({loaded.fixed_axes})" if source.kind == "onnx" and loaded is not None else ""
        lines.append(f"convnextpose: implementation under test: {source.display}{axes}")
    return lines


# --------------------------------------------------------------------------- collection
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "convnextpose_impl_source" in metafunc.fixturenames:
        sources = impl_sources(metafunc.config)
        params = sources or [None]
        ids = [s.id for s in sources] or ["no-impl"]
        metafunc.parametrize("convnextpose_impl_source", params, ids=ids, scope="session")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the expectation file's entries xfail (before -k/-m deselection, so counts are honest)."""
    from .xfails import matching, unmatched

    entries = config.stash.get(XFAIL_ENTRIES_KEY, [])
    if not entries:
        return
    for item in items:
        hits = matching(entries, item.nodeid, item.path)
        for entry in hits:
            entry.matched += 1
        if hits:
            reason = "; ".join(f"{e.reason} ({e.source})" for e in hits)
            item.add_marker(pytest.mark.xfail(reason=reason, strict=False))
    for entry in unmatched(entries):
        warnings.warn(
            pytest.PytestConfigWarning(
                f"{entry.source}: xfails entry {entry.prefix!r} matches no collected test (stale entry?)"
            ),
            stacklevel=2,
        )


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any):
    """Report a failed implementation build once: later tests needing it skip, naming the first."""
    outcome = yield
    report = outcome.get_result()
    key = getattr(call.excinfo.value, _FAILURE_ATTR, None) if call.excinfo is not None else None
    if key is not None and report.failed:
        reported = item.config.stash[_REPORTED_KEY]
        if key in reported:
            report.outcome = "skipped"
            report.longrepr = (
                str(item.path),
                item.location[1] or 0,
                f"Skipped: {key[0]} could not be built for {key[1]}: reported once, by {reported[key]}",
            )
        else:
            reported[key] = item.nodeid


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def convnextpose_implementation(
    request: pytest.FixtureRequest,
    convnextpose_impl_source: Optional[ImplSource],
    convnextpose_ckpt: Any,
    convnextpose_ckpt_source: Any,
) -> Any:
    """The implementation under test for this checkpoint (`Implementation`), or a skip."""
    if convnextpose_impl_source is None:
        pytest.skip(
            "no --impl or --onnx given: these tests check an implementation under test against the "
            "reference model (see docs/reimplementers.md)"
        )
    cache = request.config.stash[_IMPL_CACHE_KEY]
    key = (convnextpose_impl_source, convnextpose_ckpt_source.id)
    if key not in cache:
        cache[key] = _load(request.config, convnextpose_impl_source, convnextpose_ckpt, convnextpose_ckpt_source)
    return cache[key]


def _load(config: pytest.Config, source: ImplSource, ckpt: Any, ckpt_source: Any) -> Any:
    from ..implementations.adapter import ImplementationError, build_implementation, load_factory
    from ..implementations.onnx_runner import exported_from, load_onnx
    from .state import get_checkpoints

    checked = config.stash.get(_CHECKED_KEY, {}).get((source.kind, source.target))
    try:
        if source.kind == "impl":
            factory = checked if checked is not None else load_factory(source.target)
            return build_implementation(factory, source.target, ckpt)
        impl = checked if checked is not None else load_onnx(source.target)
    except ImplementationError as exc:
        message = str(exc)
    else:
        message = None
    if message is not None:  # raised outside the except: no "during handling of" chain in the report
        _fail_once(source, ckpt_source, message)
    from ..implementations.golden import provenance_hashes

    origin = exported_from(impl)
    if origin and origin not in provenance_hashes(ckpt.sha256, ckpt.metadata):
        if any(origin in ([s.sha256] + _answers_to(config, s)) for s in get_checkpoints(config)):
            pytest.skip(f"{source.target} was exported from another --ckpt (sha256 {origin[:8]}), not this one")
        _fail_once(
            source,
            ckpt_source,
            f"{source.target} was exported from a checkpoint with sha256 {origin[:8]}..., "
            f"which is none of the --ckpt files (this one is {ckpt.sha256[:8]}...)",
        )
    return impl


def _fail_once(source: ImplSource, ckpt_source: Any, message: str) -> None:
    """Fail without a traceback, tagged so that only the first test reports it (see makereport)."""
    exc = pytest.fail.Exception(message, pytrace=False)
    setattr(exc, _FAILURE_ATTR, (source.display, ckpt_source.id))
    raise exc


@pytest.fixture
def convnextpose_impl_tolerance(request: pytest.FixtureRequest) -> Tolerance:
    """Parity tolerance: the test's `convnextpose_tolerance` marker, else --atol/--rtol, else defaults."""
    config = request.config
    atol, rtol = config.getoption("convnextpose_atol"), config.getoption("convnextpose_rtol")
    source = "command line" if atol is not None or rtol is not None else "default"
    atol = DEFAULT_ATOL if atol is None else atol
    rtol = DEFAULT_RTOL if rtol is None else rtol
    marker = request.node.get_closest_marker(TOLERANCE_MARKER)
    if marker is not None:
        atol = float(marker.kwargs.get("atol", atol))
        rtol = float(marker.kwargs.get("rtol", rtol))
        source = "marker"
    return Tolerance(atol, rtol, source)


@pytest.fixture(scope="session")
def convnextpose_golden_for_ckpt(
    request: pytest.FixtureRequest, convnextpose_ckpt: Any, convnextpose_ckpt_source: Any
) -> Any:
    """The golden case (`implementations.inputs.GoldenCase`) matching this checkpoint, or None."""
    from ..implementations.golden import golden_case_for
    from ..implementations.inputs import golden_inputs
    from .state import state

    case = golden_case_for(
        convnextpose_ckpt_source.path,
        convnextpose_ckpt.sha256,
        convnextpose_ckpt.metadata,
        state(request.config).options.golden_dirs,
    )
    return None if case is None else golden_inputs(case)
