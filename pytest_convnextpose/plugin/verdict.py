"""One verdict line per checkpoint at the end of every run: PASS, FAIL (which checks) or NOT CHECKED.

Why: in CI, "3 skipped, exit 0" reads as a pass although nothing about the file was checked.
So each checkpoint under test gets a line of its own, and a checkpoint the user named (`--ckpt`,
`CONVNEXTPOSE_CKPT`, ini) on which no check passed or failed turns a green run into exit 5
(pytest's "no tests ran"). Skips are grouped by cause, failures come with a command that
re-runs one of them from any folder, and the JSON report's path is repeated.

Built from test reports only, on the controller, so it works unchanged under pytest-xdist:
workers tag each report with its checkpoint id (`CKPT_ID_ATTR`).
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest

from .report import outcome_and_message
from .state import state

#: attributes on test reports: the id of the checkpoint the test ran for, and the test's file
CKPT_ID_ATTR = "convnextpose_ckpt_id"
TEST_FILE_ATTR = "convnextpose_test_file"
VERDICT_PLUGIN_NAME = "convnextpose.verdict"

#: skip-reason prefixes -> the cause they are counted under (anything else: the reason's first clause)
_CAUSES = (
    ("no --impl or --onnx given", "--impl/--onnx not given"),
    ("no --baseline given", "--baseline not given"),
    ("no Human3.6M data", "--h36m-root not given"),
    ("no predictions file", "--h36m-preds not given"),
    ("latency benchmarks need CUDA", "no CUDA (latency: pass --device cpu)"),
    ("needs CUDA", "no CUDA"),
    ("no expected outputs for this checkpoint", "not a golden case and no --expected file"),
    ("MPJPE difference not computed", "--h36m-root not given"),
)
#: phrases inside skip reasons that begin with the implementation's or checkpoint's name -> cause
_CAUSES_WITHIN = (
    ("declares no dynamic height x width", "second size: the graph's size is not dynamic"),
    ("takes one input size", "second size: the implementation takes one size"),
    ("is not a golden case", "not a golden case"),
    ("; the golden input is", "the golden input is of another size"),
    ("could not be built for", "the implementation could not be built (reported once)"),
    ("was exported from another --ckpt", "ONNX file of another --ckpt"),
)


def skip_cause(reason: str) -> str:
    """The short cause a skip reason is counted under in the summary."""
    for prefix, cause in _CAUSES:
        if reason.startswith(prefix):
            return cause
    for phrase, cause in _CAUSES_WITHIN:
        if phrase in reason:
            return cause
    if reason.startswith("checkpoint ") and "(reported by " in reason:
        return "a check they depend on failed"
    head = reason.split(":", 1)[0].strip()
    return head if len(head) <= 60 else head[:57] + "..."


@dataclass
class CheckpointTally:
    """What the tests of one checkpoint came to."""

    ckpt_id: str
    path: str
    origin: str  # option | env | ini | default (sources.CheckpointSource.origin)
    passed: int = 0
    failed: list[str] = field(default_factory=list)  # node ids, first failure of each test
    rerun: Optional[str] = None  # absolute `file::test[id]` of the first failure
    skipped: int = 0
    xfailed: int = 0

    @property
    def ran_nothing(self) -> bool:
        """No report at all: none of the suite's tests was collected for it, or all were deselected."""
        return not (self.passed or self.failed or self.skipped or self.xfailed)

    @property
    def must_be_checked(self) -> bool:
        """A NOT CHECKED verdict fails the run (exit 5) for a checkpoint given for this run (`--ckpt`,
        `CONVNEXTPOSE_CKPT`), or for one from the ini file when the suite ran for it at all: a
        project that keeps a checkpoint in its ini and runs only its own unit tests is not failed."""
        return self.origin in ("option", "env") or (self.origin == "ini" and not self.ran_nothing)

    @property
    def shown(self) -> bool:
        return self.origin != "ini" or not self.ran_nothing

    @property
    def verdict(self) -> str:
        if self.failed:
            return "FAIL"
        return "PASS" if self.passed else "NOT CHECKED"

    def line(self) -> str:
        if self.failed:
            names = sorted({_test_name(n) for n in self.failed})
            return f"{self.ckpt_id}: FAIL ({len(names)} check(s)): {', '.join(names)}"
        if self.passed:
            return f"{self.ckpt_id}: PASS ({self.passed} check(s))"
        if self.ran_nothing:
            return f"{self.ckpt_id}: NOT CHECKED (no test of the suite ran for it: none collected, or all deselected)"
        parts = [f"{self.skipped} skipped"] + ([f"{self.xfailed} xfailed"] if self.xfailed else [])
        return f"{self.ckpt_id}: NOT CHECKED (no check passed or failed: {', '.join(parts)})"


def _test_name(nodeid: str) -> str:
    path, _, rest = nodeid.partition("::")
    return f"{Path(path).name.removesuffix('.py')}::{rest.split('[', 1)[0]}"


@dataclass(eq=False)  # a plugin object must stay hashable
class VerdictCollector:
    """Controller-side plugin object: tallies reports per checkpoint, prints the verdicts, sets exit 5."""

    config: pytest.Config
    tallies: dict[str, CheckpointTally] = field(default_factory=dict)
    skip_causes: dict[str, int] = field(default_factory=dict)
    _outcome: dict[str, str] = field(default_factory=dict)  # nodeid -> passed | failed | skipped

    def add_checkpoint(self, ckpt_id: str, path: str, origin: str) -> None:
        self.tallies.setdefault(ckpt_id, CheckpointTally(ckpt_id, path, origin))

    def pytest_runtest_logreport(self, report: Any) -> None:
        outcome, message = outcome_and_message(report)
        previous = self._outcome.get(report.nodeid)
        if outcome == "passed" and (report.when != "call" or previous is not None):
            return  # setup/teardown passing says nothing; a test counts once
        if previous in ("failed", "error"):
            return
        self._outcome[report.nodeid] = outcome
        tally = self.tallies.get(getattr(report, CKPT_ID_ATTR, None) or "")
        if outcome == "skipped" and hasattr(report, "wasxfail"):  # an expected failure, not a skip
            if tally is not None:
                tally.xfailed += 1
        elif outcome == "skipped":
            cause = skip_cause(message)
            self.skip_causes[cause] = self.skip_causes.get(cause, 0) + 1
            if tally is not None:
                tally.skipped += 1
        elif tally is not None and outcome == "passed":
            tally.passed += 1
        elif tally is not None:  # failed, or an error in setup/teardown
            if previous == "passed":
                tally.passed -= 1  # a teardown error after a pass: the test failed after all
            test_file = getattr(report, TEST_FILE_ATTR, None)
            # a test file outside the rootdir given by path has ids `::test[...]`: name the file
            tally.failed.append(report.nodeid if not report.nodeid.startswith("::") or not test_file
                                else f"{Path(test_file).name}{report.nodeid}")
            if tally.rerun is None and test_file:
                tally.rerun = f"{test_file}::{report.nodeid.partition('::')[2]}"

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        unchecked = [t for t in self.tallies.values() if t.must_be_checked and t.verdict == "NOT CHECKED"]
        if unchecked and exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        shown = [t for t in self.tallies.values() if t.shown]
        if not shown:
            return
        write = terminalreporter.write_line
        terminalreporter.ensure_newline()  # end the progress line first: no blank line under the header
        terminalreporter.section("convnextpose verdict")
        for tally in shown:
            write(tally.line(), red=bool(tally.failed), green=tally.verdict == "PASS",
                  yellow=tally.verdict == "NOT CHECKED")
            if tally.rerun:
                write(f"    re-run one: {self.rerun_command(tally)}")
        if self.skip_causes:
            total = sum(self.skip_causes.values())
            causes = sorted(self.skip_causes.items(), key=lambda kv: (-kv[1], kv[0]))
            write(f"{total} skipped: " + ", ".join(f"{cause} ({n})" for cause, n in causes))
        report = state(self.config).options.report_path
        if report is not None:
            write(f"report: {report}")

    def rerun_command(self, tally: CheckpointTally) -> str:
        """A command that re-runs the first failure of this checkpoint: from the folder the run was
        started in (so relative paths in the options still hold, and pytest's cache lands there, not
        beside the installed suite), with every option of this plugin the run was given (`--impl`,
        `--baseline`, `--expected`, `--joints`, ...) and `-p` plugin choices, whether given on the
        command line or in PYTEST_ADDOPTS, and this checkpoint. The run's ini file is named with `--config-file`:
        given only the installed suite's path, pytest would look for one beside the suite instead."""
        inifile = self.config.inipath
        words = ["pytest", f"--rootdir={self.config.invocation_params.dir}",
                 *([f"--config-file={inifile}"] if inifile is not None else []), f"--ckpt={tally.path}",
                 *_carried_options(self.config), str(tally.rerun)]
        return f"cd {shlex.quote(str(self.config.invocation_params.dir))} && {shlex.join(words)}"


def _carried_options(config: pytest.Config) -> list[str]:
    """The run's own command-line words for this plugin's options (all but `--ckpt`, given apart) and
    for `-p`, in their order. Option names come from the plugin's option group."""
    takes_value, flags = _plugin_option_names(config)
    args = shlex.split(os.environ.get("PYTEST_ADDOPTS", "")) + list(config.invocation_params.args)
    out, i = [], 0
    while i < len(args):
        word = args[i]
        name = "-p" if word.startswith("-p") else word.split("=", 1)[0]
        if name == "--ckpt":
            i += 1 if "=" in word else 2
            continue
        if name in takes_value or name == "-p":
            if "=" in word or (name == "-p" and len(word) > 2):  # --opt=value, -pNAME
                out.append(word)
            elif i + 1 < len(args):
                out += [word, args[i + 1]]
                i += 1
        elif name in flags:
            out.append(word)
        i += 1
    return out


def _plugin_option_names(config: pytest.Config) -> tuple[set[str], set[str]]:
    """(long options taking a value, flag options) of the plugin's group in `pytest --help`."""
    from .options import OPTION_GROUP

    parser = getattr(config, "_parser", None)  # pytest keeps its Parser here; no public accessor
    group = parser.getgroup(OPTION_GROUP) if parser is not None else None
    takes_value: set[str] = set()
    flags: set[str] = set()
    for option in getattr(group, "options", []):
        action = option.attrs().get("action")
        (flags if action in ("store_true", "store_false", "count") else takes_value).update(option.names())
    return takes_value, flags


def install(config: pytest.Config, sources: list[Any]) -> Optional[VerdictCollector]:
    """Register the collector on the controller (not on xdist workers) for these checkpoints."""
    if hasattr(config, "workerinput"):
        return None
    collector = config.pluginmanager.get_plugin(VERDICT_PLUGIN_NAME)
    if collector is None:
        collector = VerdictCollector(config)
        config.pluginmanager.register(collector, VERDICT_PLUGIN_NAME)
    for src in sources:
        collector.add_checkpoint(src.id, str(src.path), src.origin)
    return collector
