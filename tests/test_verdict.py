"""The verdict lines at the end of a run: PASS / FAIL / NOT CHECKED per checkpoint, exit 5 when a
named checkpoint had nothing checked, skips grouped by cause, a re-run command that works from
another folder, and the report path (pytester, as a user runs it)."""
from __future__ import annotations

import json
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
    report = pytester.path / "r.json"
    result = pytester.runpytest(f"--ckpt={copy}", "-k", "parity", "-p", "no:cacheprovider",
                                f"--conformance-report={report}")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["*convnextpose verdict*",
                                 "mine.pth-63144b81: NOT CHECKED (no check passed or failed: 3 skipped)",
                                 "3 skipped: not a golden case and no --expected file (3)"])
    data = json.loads(report.read_text())  # the report says what the run exits with
    assert data["exit_status"] == pytest.ExitCode.NO_TESTS_COLLECTED and data["verdict"] == "no-tests", data


def test_a_checkpoint_from_the_ini_file_does_not_fail_a_projects_own_unit_tests(pytester):
    """The ini key supplies checkpoints for the suite; `pytest test_unit.py` in that project runs no test
    of the suite, so it gets no verdict line and keeps its exit 0. With the suite, nothing checked is 5."""
    shutil.copy(TINY, pytester.path / "mine.pth")  # no manifest beside it: not a golden case
    pytester.makeini("[pytest]\nconvnextpose_ckpt = mine.pth\n")
    pytester.makepyfile(test_unit="def test_unit():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest("test_unit.py", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "convnextpose verdict" not in result.stdout.str()
    suite = pytester.runpytest("--pyargs", "conformance", "-k", "parity", "-p", "no:cacheprovider")
    assert suite.ret == pytest.ExitCode.NO_TESTS_COLLECTED, suite.stdout.str()  # 3 skipped: not a golden case


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
    proc = rerun(result, tmp_path)
    assert "1 failed" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "file name says L" in proc.stdout
    # the run is rooted in the user's folder (pytest's cache lands there, not beside the installed suite)
    assert f"rootdir: {pytester.path}" in proc.stdout, proc.stdout[:2000]


def rerun(result: pytest.RunResult, elsewhere: Path) -> subprocess.CompletedProcess:
    """Paste the printed re-run command into a shell started in another folder."""
    command = next(ln for ln in result.stdout.lines if "re-run one:" in ln).split("re-run one:", 1)[1].strip()
    cd, _, run = command.partition(" && ")
    words = shlex.split(run)
    assert shlex.split(cd)[0] == "cd" and words[0] == "pytest", command
    python = shlex.join([sys.executable, "-m", "pytest"])  # the console script of this interpreter
    return subprocess.run(f"{cd} && {python} {shlex.join(words[1:])}", shell=True, cwd=elsewhere,
                          capture_output=True, text=True, timeout=300)


def test_the_rerun_command_carries_the_options_the_failure_depends_on(pytester, tmp_path):
    port = Path(__file__).resolve().parent / "wrong_impls.py"
    result = pytester.runpytest(f"--ckpt={TINY}", f"--impl={port}:xy_swapped", "--atol=0.001", "-p", "no:cacheprovider",
                                "-k", "test_matches_reference_model and seeded and not flipped and not second")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    proc = rerun(result, tmp_path)
    assert "1 failed" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "coordinates in order (y, x, z)" in proc.stdout, proc.stdout[-3000:]
    assert "(command line)" in proc.stdout or "--atol" in proc.stdout  # the tolerance came along too


def test_expected_failures_are_not_counted_as_skips(pytester):
    port = Path(__file__).resolve().parent / "wrong_impls.py"
    xf = pytester.makefile(".txt", xfails="test_impl.py::test_matches_reference_model  # x/y swapped\n")
    result = pytester.runpytest(f"--ckpt={TINY}", f"--impl={port}:xy_swapped", f"--xfails-file={xf}",
                                "-p", "no:cacheprovider", "-k", "test_matches_reference_model and seeded")
    out = result.stdout.str()
    assert "xfailed" in out and "x/y swapped" not in "".join(ln for ln in result.stdout.lines if " skipped: " in ln)
    assert not any(" skipped: " in ln and "wrong_impls" in ln for ln in result.stdout.lines), out


@pytest.mark.parametrize("reason, cause", [
    ("no --impl or --onnx given: these tests check ...", "--impl/--onnx not given"),
    ("checkpoint x.pth-1234: nonfinite problem at key 'a' (reported by test_load.py::test_all_values_are_finite)",
     "a check they depend on failed"),
    ("needs a batch of at least two images", "needs a batch of at least two images"),
    ("my_port declares no dynamic height x width: only ONNX graphs that do are run at a second size",
     "second size: the graph's size is not dynamic"),
    ("mine.pth-1234 is not a golden case (no manifest.json entry ...)", "not a golden case"),
])
def test_skip_causes(reason, cause):
    assert skip_cause(reason) == cause


def test_the_rerun_command_keeps_the_runs_ini_file_and_pytest_addopts(pytester, tmp_path, monkeypatch):
    """The suite's path alone would make pytest read the ini file beside the installed suite, not the
    user's: their golden folder (ini) and an --impl given in PYTEST_ADDOPTS must come along."""
    port = Path(__file__).resolve().parent / "wrong_impls.py"
    golden = Path(__file__).resolve().parent / "data"  # the tiny golden case's manifest lives here
    shutil.copy(TINY, pytester.path / "t.pth.tar")
    pytester.makeini(f"[pytest]\nconvnextpose_golden_dir = {golden}\n")
    monkeypatch.setenv("PYTEST_ADDOPTS", f"--impl={port}:xy_swapped -pno:cacheprovider")
    result = pytester.runpytest_subprocess("--ckpt=t.pth.tar", "-k", "test_matches_reference_model and golden "
                                           "and not flipped")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()[-3000:]
    command = next(ln for ln in result.stdout.lines if "re-run one:" in ln)
    assert "--config-file=" in command and "--impl=" in command and "-pno:cacheprovider" in command, command
    monkeypatch.delenv("PYTEST_ADDOPTS")  # pasted into another shell, without the variable
    proc = rerun(result, tmp_path)
    assert "1 failed" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "test_impl::test_matches_reference_model" in proc.stdout  # the verdict names the file
