"""Core of the pytest plugin: options, markers, checkpoint parametrization, header, report.

`pytest --ckpt=PATH` with no test paths runs the installed `conformance/` suite; with test
paths (or `--pyargs conformance`) it runs those. Without any checkpoint the suite runs on
the embedded synthetic default. Runs that neither give a checkpoint nor select the suite
are left alone: nothing is written, loaded or imported beyond this module (and the light
modules it imports: no numpy, torch or Hypothesis at start-up; see tests/test_plugin_startup.py).

"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from . import hypothesis_profiles, verdict
from .fixtures import selected_name
from .report import REPORT_ATTR, ReportCollector, describe_checkpoint
from .state import (
    STATE_KEY,
    WORKERINPUT_DEFAULT_DIR,
    State,
    get_checkpoints,
    load_cached,
    read_options,
    resolve_device,
    state,
    uses_default,
)
from .verdict import CKPT_ID_ATTR, TEST_FILE_ATTR

MARKERS = {
    "conformance": "a conformance check of a ConvNeXtPose checkpoint (pytest-convnextpose)",
    "slow": "takes more than a few seconds; deselect with -m 'not slow'",
    "gpu": "needs CUDA; skipped when no GPU is available",
    "benchmark": "a performance measurement (pytest-benchmark), not a pass/fail gate",
    "accuracy": "an accuracy gate on real data (Human3.6M); skipped when the data is absent",
}
COLLECTOR_NAME = "convnextpose-report"


def conformance_dir() -> Path:
    """Folder of the installed `conformance` package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("conformance")
    if spec is None or not spec.submodule_search_locations:
        raise pytest.UsageError("the 'conformance' package of pytest-convnextpose is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


# --------------------------------------------------------------------------- configure
@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    hypothesis_profiles.register_if_selected(config)  # tryfirst: before Hypothesis' own configure loads it
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    config.stash[STATE_KEY] = State(read_options(config))
    opts = state(config).options
    if opts.ckpt_origin in ("option", "env") and config.args_source != pytest.Config.ArgsSource.ARGS:
        # `pytest --ckpt=X` with no test paths: run the installed suite, wherever it lives.
        config.args = [str(conformance_dir())]
    if opts.report_path is not None and not hasattr(config, "workerinput"):
        collector = ReportCollector(opts.report_path)
        collector.meta = _report_meta(config)
        config.pluginmanager.register(collector, COLLECTOR_NAME)


def targets_conformance(config: pytest.Config) -> bool:
    """Whether this run collects the conformance suite (by path or by `--pyargs conformance`)."""
    try:
        suite = conformance_dir().resolve()
    except pytest.UsageError:
        return False
    for arg in config.args:
        text = str(arg).split("::", 1)[0]
        if config.getoption("pyargs", False) and (text == "conformance" or text.startswith("conformance.")):
            return True
        path = Path(text) if Path(text).is_absolute() else Path(config.invocation_params.dir) / text
        try:
            resolved = path.resolve()
        except OSError:
            continue
        if resolved == suite or suite in resolved.parents or resolved in suite.parents:
            return True
    return False


def _checkpoints_in_play(config: pytest.Config) -> bool:
    return not uses_default(config) or targets_conformance(config)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: write the default once and hand its folder to every worker."""
    config = node.config
    if uses_default(config) and targets_conformance(config):
        get_checkpoints(config)
        node.workerinput[WORKERINPUT_DEFAULT_DIR] = str(state(config).default_dir)


def _report_meta(config: pytest.Config) -> dict[str, Any]:
    from .. import __version__

    meta: dict[str, Any] = {"pytest_convnextpose_version": __version__, "device_option": state(config).options.device}
    try:
        import torch

        meta["torch_version"] = torch.__version__
        meta["device"] = str(resolve_device(state(config).options.device))
    except Exception as exc:  # the report must still be written
        meta["torch_version"] = f"unavailable: {exc}"
    return meta


# --------------------------------------------------------------------------- header
def pytest_report_header(config: pytest.Config) -> list[str]:
    if STATE_KEY not in config.stash or not _checkpoints_in_play(config):
        return []
    import torch

    opts = state(config).options
    sources = get_checkpoints(config)
    lines = [
        f"convnextpose: torch {torch.__version__}, device {resolve_device(opts.device)} "
        f"(--device={opts.device}); {len(sources)} checkpoint(s)"
        + (" [embedded synthetic default: not trained weights]" if uses_default(config) else "")
    ]
    for src in sources:
        lines.extend(_header_lines(src, load_cached(config, src)))
    return lines


def _header_lines(src: Any, loaded: Any) -> list[str]:
    head = f"  {src.id}: {src.path}"
    if isinstance(loaded, Exception):
        return [head, f"    NOT LOADED: {loaded}"]
    variant = loaded.variant or f"none (nearest {loaded.nearest_variant})"
    dialect = loaded.dialect.summary() if hasattr(loaded.dialect, "summary") else str(loaded.dialect)
    return [
        head,
        f"    variant {variant}; {loaded.spec.summary()} (upsample from {loaded.head_upsample_source})",
        f"    container {loaded.container}, wrapper {loaded.wrapper}, dialect: {dialect}",
        f"    sha256 {loaded.sha256}" + (f"; {len(loaded.problems)} problem(s)" if loaded.problems else ""),
        *(f"    NAME: {p.detail}" for p in loaded.problems if p.kind == "name"),
    ]


# --------------------------------------------------------------------------- collection
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "convnextpose_ckpt_source" not in metafunc.fixturenames:
        return
    if any(
        m.name == "parametrize" and "convnextpose_ckpt_source" in str(m.args[0])
        for m in metafunc.definition.iter_markers()
    ):
        return  # the test parametrizes it itself
    sources = get_checkpoints(metafunc.config)
    metafunc.parametrize(
        "convnextpose_ckpt_source", sources, ids=[s.id for s in sources], indirect=True, scope="session"
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Remember which tests run for which checkpoint (after -k/-m deselection)."""
    if STATE_KEY not in config.stash:
        return
    selected = state(config).selected
    for item in items:
        source = _item_source(item)
        if source is not None:
            selected.add(selected_name(item.nodeid, source.id))


def _item_source(item: Any) -> Any:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("convnextpose_ckpt_source") if callspec is not None else None


# --------------------------------------------------------------------------- running
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") is not None:
        import torch

        if not torch.cuda.is_available():
            pytest.skip("needs CUDA (marked gpu); no CUDA device is available")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any):
    """Tag each report with its checkpoint (for the verdict lines) and, when a JSON report is
    asked for, the checkpoint's description (plain data: xdist carries both to the controller)."""
    outcome = yield
    source = _item_source(item) if STATE_KEY in item.config.stash else None
    if source is None:
        return
    report = outcome.get_result()
    setattr(report, CKPT_ID_ATTR, source.id)
    setattr(report, TEST_FILE_ATTR, str(item.path))
    if state(item.config).options.report_path is not None:
        setattr(report, REPORT_ATTR, describe_checkpoint(source, state(item.config).loads.get(source.path)))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Keep Hypothesis' storage out of the current directory when the suite runs (here, not in
    configure: pytest's cache folder exists by now), then seed the report with every
    checkpoint, in order, so one whose tests were all deselected still appears (runs on the
    xdist controller too, which collects nothing itself)."""
    if STATE_KEY in session.config.stash and targets_conformance(session.config):
        hypothesis_profiles.keep_storage_out_of_cwd(session.config)
    if STATE_KEY not in session.config.stash or not _checkpoints_in_play(session.config):
        return
    verdict.install(session.config, get_checkpoints(session.config))
    collector = session.config.pluginmanager.get_plugin(COLLECTOR_NAME)
    if collector is None:
        return
    for src in get_checkpoints(session.config):
        collector.known.setdefault(src.id, describe_checkpoint(src, state(session.config).loads.get(src.path)))
