"""`--xfails-file`: parsing, prefix matching, stale-entry warnings, required reasons."""
from __future__ import annotations

from pathlib import Path

import pytest

from pytest_convnextpose.plugin.xfails import XfailsFileError, matching, parse_line, parse_text

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent
TINY = TESTS / "data" / "tiny_snapshot_83.pth.tar"
PORT = TESTS / "wrong_impls.py"


@pytest.mark.parametrize("line, want", [
    ("a/test_x.py::test_y  # flaky on ARM", ("a/test_x.py::test_y", "flaky on ARM")),
    ("test_x.py::test_y[p#1]\t# reason with # inside", ("test_x.py::test_y[p#1]", "reason with # inside")),
    ("   # only a comment", None),
    ("", None),
])
def test_lines_parse_into_prefix_and_reason(line, want):
    assert parse_line(line) == want


@pytest.mark.parametrize("line, message", [
    ("test_x.py::test_y", "missing reason"),
    ("test_x.py::test_y  #   ", "empty reason"),
    ("test x.py  # spaces", "contains whitespace"),
])
def test_entries_without_a_reason_are_refused_with_file_and_line(line, message):
    with pytest.raises(XfailsFileError, match=rf"xf\.txt:2: .*{message}"):
        parse_text("# header\n" + line, "xf.txt")


def test_prefix_matches_from_any_folder_depth():
    entries = parse_text("conformance/test_impl.py::test_flip  # r\ntest_load.py::  # r", "f")
    nodeid = "../site-packages/conformance/test_impl.py::test_flip_test_matches_reference[x]"
    assert [e.prefix for e in matching(entries, nodeid)] == ["conformance/test_impl.py::test_flip"]
    # run from a user's folder the printed id has no folder; the file on disk still has one
    short = "test_impl.py::test_flip_test_matches_reference[x]"
    assert matching(entries, short) == []
    assert [e.prefix for e in matching(entries, short, Path("/site-packages/conformance/test_impl.py"))] == [
        "conformance/test_impl.py::test_flip"]
    assert [e.prefix for e in matching(entries, "test_load.py::test_checkpoint_file_loads")] == ["test_load.py::"]
    assert matching(entries, "conformance/test_shapes.py::test_every") == []


def test_listed_failures_become_xfail_and_stale_entries_warn(pytester):
    from pytest_convnextpose.plugin.core import conformance_dir

    xf = pytester.makefile(".txt", xfails="""
        # our port swaps x and y until PR 7 lands
        conformance/test_impl.py::test_matches_reference_model  # x/y swapped in our port (PR 7)
        test_impl.py::test_flip_test_matches_reference  # follows from the x/y swap
        test_impl.py::test_that_does_not_exist  # stale
    """)
    result = pytester.runpytest(str(conformance_dir() / "test_impl.py"), f"--ckpt={TINY}", f"--impl={PORT}:xy_swapped",
                                f"--xfails-file={xf}", "-p", "no:cacheprovider", "-rx")
    # the second-size parity case skips: a NumPy port is not a graph that declares a dynamic size
    result.assert_outcomes(passed=2, xfailed=6, skipped=1)
    result.stdout.fnmatch_lines(["*xfails.txt:4: xfails entry 'test_impl.py::test_that_does_not_exist' matches no "
                                 "collected test*",
                                 "*x/y swapped in our port (PR 7) (*xfails.txt:2)*"])


def test_missing_reason_stops_the_run_with_a_usage_error(pytester):
    xf = pytester.makefile(".txt", xfails="test_impl.py::test_matches_reference_model\n")
    result = pytester.runpytest(f"--xfails-file={xf}", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*xfails.txt:1: missing reason*"])
