"""The verdict lines at the end of a run: PASS / FAIL / NOT CHECKED per checkpoint, exit 5 when a
named checkpoint had nothing checked, skips grouped by cause, a re-run command that works from
another folder, and the report path (pytester, as a user runs it)."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_convnextpose.plugin.verdict import skip_cause

pytest_plugins = ["pytester"]

TINY = Path(__file__).resolve().parent / "data" / "tiny_snapshot_83.pth.tar"


def test_a_file_with_nothing_checked_is_not_green(pytester):
    copy = pytester.path / "mine.pth"
    shutil.copy(TINY, copy)  # no manifest beside it: no golden case, so the parity tests skip
    result = pytester.runpytest(f"--ckpt={copy}", "-k", "parity", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["*convnextpose verdict*",
                                 "mine.pth-63144b81: NOT CHECKED (no check passed or failed: all 3 skipped*",
                                 "3 skipped: not a golden case and no --expected file (3)"])


def test_quiet_runs_keep_the_verdict_and_group_skips_by_cause(pytester):
    report = pytester.path / "r.json"
    result = pytester.runpytest(f"--ckpt={TINY}", "-q", "-p", "no:cacheprovider", f"--conformance-report={report}",
                                "-k", "not latency and not accuracy")
    assert result.ret == pytest.ExitCode.OK
    out = result.stdout.str()
    assert re.search(r"tiny_snapshot_83\.pth\.tar-63144b81: PASS \(\d+ check\(s\)\)", out), out
    line = next(ln for ln in out.splitlines() if " skipped: " in ln)
    assert "--impl/--onnx not given (9)" in line and "--baseline not given (3)" in line, line
    assert f"report: {report}" in out


def test_a_failure_prints_a_command_that_reruns_it_from_another_folder(pytester, tmp_path):
    copy = pytester.path / "model_L.pth"  # the name claims L; the tensors are the tiny network
    shutil.copy(TINY, copy)
    result = pytester.runpytest(f"--ckpt={copy}", "-k", "variant", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["model_L.pth-63144b81: FAIL (1 check(s)): test_variant::test_file_name_agrees*"])
    command = next(ln for ln in result.stdout.lines if "re-run one:" in ln).split("re-run one:", 1)[1]
    words = shlex.split(command)
    assert words[0] == "pytest"
    proc = subprocess.run([sys.executable, "-m", *words, "-p", "no:cacheprovider", "-q"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert "1 failed" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "file name says L" in proc.stdout


@pytest.mark.parametrize("reason, cause", [
    ("no --impl or --onnx given: these tests check ...", "--impl/--onnx not given"),
    ("checkpoint x.pth-1234: nonfinite problem at key 'a' (reported by test_load.py::test_all_values_are_finite)",
     "a check they depend on failed"),
    ("needs a batch of at least two images", "needs a batch of at least two images"),
])
def test_skip_causes(reason, cause):
    assert skip_cause(reason) == cause
