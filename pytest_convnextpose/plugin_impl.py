"""pytest sub-plugin: implementations under test, expectation files, baseline gating.

Options (group "convnextpose"; docs/reimplementers.md):
    --impl MODULE:FACTORY     implementation under test (repeatable)
    --onnx PATH               ONNX file under test, run with onnxruntime (repeatable)
    --atol / --rtol           parity tolerance in heatmap units (defaults: defaults.DEFAULT_ATOL/RTOL);
                              a test may override with @pytest.mark.convnextpose_tolerance(atol=..., rtol=...)
    --xfails-file FILE        known failures, `<test id prefix>  # <reason>` per line (repeatable)
    --baseline PATH           baseline checkpoint to compare each --ckpt with
    --max-output-drift MM     fail when the output drift exceeds this (default 1.0 mm)
    --max-mpjpe-regression MM fail when MPJPE grows by more than this (default 0.5 mm; needs --h36m-root)

Start-up checks (one usage error, not an error per test): each `--impl` module is imported
and its factory looked up, each `--onnx` file is opened with onnxruntime, `--baseline` is
loaded with the same loader as the checkpoints. The results are kept for the fixtures, so
nothing is imported or loaded twice. (Skipped on xdist workers: the controller checked.)

Failures to build an implementation (a factory that raises, an ONNX file exported from
another checkpoint) are reported once per implementation and checkpoint: the first test
that needs it errors with the one-line message; the others skip, pointing at it (a
session fixture's exception would otherwise repeat, traceback and all, in every test).

Results for the JSON report: each baseline comparison is stored in
`config.stash[BASELINE_RESULTS_KEY][<ckpt id>]` and, when the report plugin describes the
checkpoint on the test report (`convnextpose_ckpt`), attached as its "baseline" field.

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

from .defaults import DEFAULT_ATOL, DEFAULT_RTOL
from .plugin import OPTION_GROUP

TOLERANCE_MARKER = "convnextpose_tolerance"
DEFAULT_MAX_OUTPUT_DRIFT_MM = 1.0
DEFAULT_MAX_MPJPE_REGRESSION_MM = 0.5

BASELINE_RESULTS_KEY = pytest.StashKey[dict]()
XFAIL_ENTRIES_KEY = pytest.StashKey[list]()
_IMPL_CACHE_KEY = pytest.StashKey[dict]()
_CHECKED_KEY = pytest.StashKey[dict]()  # what the start-up checks loaded: ("impl"|"onnx"|"baseline", value) -> object
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


# --------------------------------------------------------------------------- options
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(OPTION_GROUP)
    group.addoption("--impl", action="append", dest="convnextpose_impl", default=[], metavar="MODULE:FACTORY",
                    help="implementation under test (repeatable): FACTORY(checkpoint) returns a torch.nn.Module or "
                         "a callable mapping float32 (B,3,H,W) to (B,J,3); MODULE may be a dotted name or a .py path")
    group.addoption("--onnx", action="append", dest="convnextpose_onnx", default=[], metavar="PATH",
                    help="ONNX file under test, run with onnxruntime (repeatable); see `convnextpose export-onnx`")
    group.addoption("--atol", type=float, dest="convnextpose_atol", default=None, metavar="X",
                    help=f"absolute parity tolerance in heatmap units (default {DEFAULT_ATOL:g})")
    group.addoption("--rtol", type=float, dest="convnextpose_rtol", default=None, metavar="X",
                    help=f"relative parity tolerance (default {DEFAULT_RTOL:g}); pass if |a-e| <= atol + rtol*|e|")
    group.addoption("--xfails-file", action="append", dest="convnextpose_xfails", default=[], metavar="FILE",
                    help="expected failures: one `<test id prefix>  # <reason>` per line (reason required)")
    group.addoption("--baseline", dest="convnextpose_baseline", default=None, metavar="PATH",
                    help="baseline checkpoint: report architecture, weight and output drift of each --ckpt against it")
    group.addoption("--max-output-drift", type=float, dest="convnextpose_max_output_drift",
                    default=DEFAULT_MAX_OUTPUT_DRIFT_MM, metavar="MM",
                    help="with --baseline: largest per-joint output drift allowed, mm at the Human3.6M scale "
                         f"(default {DEFAULT_MAX_OUTPUT_DRIFT_MM:g})")
    group.addoption("--max-mpjpe-regression", type=float, dest="convnextpose_max_mpjpe_regression",
                    default=DEFAULT_MAX_MPJPE_REGRESSION_MM, metavar="MM",
                    help="with --baseline and --h36m-root: largest MPJPE increase allowed in mm "
                         f"(default {DEFAULT_MAX_MPJPE_REGRESSION_MM:g})")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{TOLERANCE_MARKER}(atol=None, rtol=None): parity tolerance for this test "
                                       "(overrides --atol/--rtol)")
    config.stash[BASELINE_RESULTS_KEY] = {}
    config.stash[_IMPL_CACHE_KEY] = {}
    for name in ("convnextpose_atol", "convnextpose_rtol", "convnextpose_max_output_drift",
                 "convnextpose_max_mpjpe_regression"):
        value = config.getoption(name)
        if value is not None and not value >= 0:
            raise pytest.UsageError(f"--{name.removeprefix('convnextpose_').replace('_', '-')} must be >= 0, got {value}")
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
    from .plugin_core import COLLECTOR_NAME

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
    """Import each --impl factory, open each --onnx file, load --baseline: a bad value is one usage error."""
    checked = config.stash[_CHECKED_KEY]
    for source in impl_sources(config):
        checked[(source.kind, source.target)] = _check_source(source)
    path = config.getoption("convnextpose_baseline")
    if path:
        loaded = _load_baseline(config, path)
        if isinstance(loaded, str):
            raise pytest.UsageError(loaded)
        checked[("baseline", path)] = loaded


def _check_source(source: ImplSource) -> Any:
    """The factory (`impl`) or session (`onnx`) of one source; a usage error naming it otherwise."""
    from .impl import ImplementationError, load_factory  # imported here: they import numpy
    from .onnx_runner import load_onnx

    try:
        return load_factory(source.target) if source.kind == "impl" else load_onnx(source.target)
    except ImplementationError as exc:
        message = str(exc)
    except Exception as exc:  # the user's module raised while importing: say where, in one line
        from .impl import one_line_error

        message = f"--{source.kind} {source.target!r}: loading it raised {one_line_error(exc)}"
    raise pytest.UsageError(message)


def _load_baseline(config: pytest.Config, path: str) -> Any:
    """The baseline `Checkpoint` (same --joints / --head-upsample as the checkpoints), or the error line."""
    from .checkpoint import load_checkpoint
    from .errors import CheckpointError
    from .session_state import state

    opts = state(config).options
    try:
        return load_checkpoint(path, joint_num=opts.joints, head_upsample=opts.head_upsample)
    except CheckpointError as exc:
        return f"--baseline: cannot be loaded: {exc}"


def impl_sources(config: pytest.Config) -> list[ImplSource]:
    return ([ImplSource("impl", t) for t in config.getoption("convnextpose_impl") or []]
            + [ImplSource("onnx", t) for t in config.getoption("convnextpose_onnx") or []])


def pytest_report_header(config: pytest.Config) -> list[str]:
    checked = config.stash.get(_CHECKED_KEY, {})
    lines = []
    for source in impl_sources(config):
        loaded = checked.get((source.kind, source.target))
        axes = f" ({loaded.fixed_axes})" if source.kind == "onnx" and loaded is not None else ""
        lines.append(f"convnextpose: implementation under test: {source.display}{axes}")
    if config.getoption("convnextpose_baseline"):
        lines.append(f"convnextpose: baseline {config.getoption('convnextpose_baseline')} "
                     f"(max output drift {config.getoption('convnextpose_max_output_drift'):g} mm, "
                     f"max MPJPE regression {config.getoption('convnextpose_max_mpjpe_regression'):g} mm)")
    return lines


# --------------------------------------------------------------------------- collection
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "impl_source" in metafunc.fixturenames:
        sources = impl_sources(metafunc.config)
        params = sources or [None]
        ids = [s.id for s in sources] or ["no-impl"]
        metafunc.parametrize("impl_source", params, ids=ids, scope="session")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the expectation file's entries xfail (before -k/-m deselection, so counts are honest)."""
    from .xfails import matching, unmatched

    entries = config.stash.get(XFAIL_ENTRIES_KEY, [])
    if not entries:
        return
    for item in items:
        hits = matching(entries, item.nodeid)
        for entry in hits:
            entry.matched += 1
        if hits:
            reason = "; ".join(f"{e.reason} ({e.source})" for e in hits)
            item.add_marker(pytest.mark.xfail(reason=reason, strict=False))
    for entry in unmatched(entries):
        warnings.warn(pytest.PytestConfigWarning(
            f"{entry.source}: xfails entry {entry.prefix!r} matches no collected test (stale entry?)"))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any):
    """Report a failed implementation build once; put the baseline comparison into the
    checkpoint's description on the report."""
    outcome = yield
    report = outcome.get_result()
    key = getattr(call.excinfo.value, _FAILURE_ATTR, None) if call.excinfo is not None else None
    if key is not None and report.failed:
        reported = item.config.stash[_REPORTED_KEY]
        if key in reported:
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0,
                               f"Skipped: {key[0]} could not be built for {key[1]}: reported once, by {reported[key]}")
        else:
            reported[key] = item.nodeid
    results = item.config.stash.get(BASELINE_RESULTS_KEY, {})
    info = getattr(report, "convnextpose_ckpt", None)
    if isinstance(info, dict) and info.get("id") in results:
        info["baseline"] = results[info["id"]]


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def implementation(request: pytest.FixtureRequest, impl_source: Optional[ImplSource], ckpt: Any,
                   ckpt_source: Any) -> Any:
    """The implementation under test for this checkpoint (`Implementation`), or a skip."""
    if impl_source is None:
        pytest.skip("no --impl or --onnx given: these tests check an implementation under test against the "
                    "reference model (see docs/reimplementers.md)")
    cache = request.config.stash[_IMPL_CACHE_KEY]
    key = (impl_source, ckpt_source.id)
    if key not in cache:
        cache[key] = _load(request.config, impl_source, ckpt, ckpt_source)
    return cache[key]


def _load(config: pytest.Config, source: ImplSource, ckpt: Any, ckpt_source: Any) -> Any:
    from .impl import ImplementationError, build_implementation, load_factory
    from .onnx_runner import exported_from, load_onnx
    from .session_state import get_checkpoints

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
    origin = exported_from(impl)
    if origin and origin != ckpt.sha256:
        if any(s.sha256 == origin for s in get_checkpoints(config)):
            pytest.skip(f"{source.target} was exported from another --ckpt (sha256 {origin[:8]}), not this one")
        _fail_once(source, ckpt_source, f"{source.target} was exported from a checkpoint with sha256 {origin[:8]}..., "
                                        f"which is none of the --ckpt files (this one is {ckpt.sha256[:8]}...)")
    return impl


def _fail_once(source: ImplSource, ckpt_source: Any, message: str) -> None:
    """Fail without a traceback, tagged so that only the first test reports it (see makereport)."""
    exc = pytest.fail.Exception(message, pytrace=False)
    setattr(exc, _FAILURE_ATTR, (source.display, ckpt_source.id))
    raise exc


@pytest.fixture
def impl_tolerance(request: pytest.FixtureRequest) -> Tolerance:
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
def golden_for_ckpt(request: pytest.FixtureRequest, ckpt: Any, ckpt_source: Any) -> Any:
    """The golden case (`parity_inputs.GoldenCase`) matching this checkpoint, or None."""
    from .parity_inputs import find_golden
    from .session_state import state

    from .expected import provenance_hashes

    hashes = provenance_hashes(ckpt.sha256, ckpt.metadata)
    return find_golden(ckpt_source.path, hashes, state(request.config).options.golden_dirs)


@pytest.fixture(scope="session")
def baseline_checkpoint(request: pytest.FixtureRequest) -> Any:
    """`--baseline` loaded like the checkpoints under test (same --joints / --head-upsample)."""
    path = request.config.getoption("convnextpose_baseline")
    if not path:
        pytest.skip("no --baseline given: these tests compare each checkpoint with a baseline checkpoint")
    checked = request.config.stash.get(_CHECKED_KEY, {})
    if ("baseline", path) not in checked:  # xdist worker: the controller checked it, this process loads it
        checked[("baseline", path)] = _load_baseline(request.config, path)
    loaded = checked[("baseline", path)]
    if isinstance(loaded, str):
        pytest.fail(loaded, pytrace=False)
    return loaded


@pytest.fixture(scope="session")
def baseline_coords(baseline_checkpoint: Any, sample_inputs: Any) -> Any:
    """The baseline's reference output on `sample_inputs`, `(B, J, 3)` numpy: computed once per
    run, not once per checkpoint compared with it (the baseline never changes within a run)."""
    import torch

    from .fixtures import build_reference_model

    model = build_reference_model(baseline_checkpoint, sample_inputs.device)
    with torch.no_grad():
        return model(sample_inputs).cpu().numpy()


@pytest.fixture(scope="session")
def baseline_comparison(request: pytest.FixtureRequest, baseline_checkpoint: Any, ckpt: Any, ckpt_source: Any,
                        sample_inputs: Any, ref_coords: Any) -> Any:
    """`baseline.BaselineComparison` of this checkpoint against --baseline, on `sample_inputs`."""
    from .baseline import compare_checkpoints
    from .fixtures import SAMPLE_SEED

    images = sample_inputs.detach().cpu().numpy()
    same_joints = ckpt.spec.joint_num == baseline_checkpoint.spec.joint_num
    # Requested only when the outputs are compared (compare_checkpoints skips other joint counts).
    base = request.getfixturevalue("baseline_coords") if same_joints else None
    result = compare_checkpoints(
        ckpt, baseline_checkpoint, images=images, candidate_coords=ref_coords.detach().cpu().numpy(),
        baseline_coords=base,
        inputs=f"sample_inputs ({images.shape[0]} seeded images {images.shape[2]}x{images.shape[3]}, "
               f"seed {SAMPLE_SEED})")
    result.mpjpe = _mpjpe(request.config, ckpt, baseline_checkpoint)
    request.config.stash[BASELINE_RESULTS_KEY][ckpt_source.id] = result.to_dict()
    return result


def _mpjpe(config: pytest.Config, candidate: Any, baseline: Any) -> dict[str, Any]:
    """MPJPE of both checkpoints on Human3.6M, or the reason it was not computed."""
    from .baseline_mpjpe import mpjpe_difference

    root = config.getoption("--h36m-root", default=None)
    return mpjpe_difference(root, candidate, baseline)
