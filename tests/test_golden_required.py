"""`CONVNEXTPOSE_REQUIRE_GOLDEN=1` (CI) turns a missing golden folder into failures, never skips.

Runs a copy of tests/conftest.py in a pytester folder whose golden folder does not exist, so the
check does not depend on ../shared/golden being absent on this machine."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")
TESTS = """
import pytest

def test_uses_the_golden_dir(golden_dir):
    pass

def test_uses_the_golden_cases(golden_cases):
    pass

@pytest.mark.skip(reason="../shared/golden is absent: golden case xs not checked")
def test_skipped_at_collection_for_golden_files():
    pass

def test_skips_itself_for_golden_files():
    pytest.skip("../shared/golden is absent: the cuda:0-tagged L file is not checked")

@pytest.mark.skip(reason="needs CUDA")
def test_skipped_for_another_reason():
    pass
"""


@pytest.fixture
def no_golden(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("CONVNEXTPOSE_GOLDEN", str(pytester.path / "moved-away"))
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_golden=TESTS)
    return pytester


def test_without_the_requirement_missing_golden_files_skip_with_the_path(no_golden, monkeypatch) -> None:
    monkeypatch.delenv("CONVNEXTPOSE_REQUIRE_GOLDEN", raising=False)
    result = no_golden.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=5)
    result.stdout.fnmatch_lines(["*golden files not present: no manifest.json in *moved-away*"])


def test_required_golden_files_that_are_missing_fail_naming_the_path(no_golden, monkeypatch) -> None:
    monkeypatch.setenv("CONVNEXTPOSE_REQUIRE_GOLDEN", "1")
    result = no_golden.runpytest("-p", "no:cacheprovider", "-rsfE")
    # fixtures fail in setup (errors); golden skips, at collection or in the test, become failures
    result.assert_outcomes(failed=1, errors=3, skipped=1)
    result.stdout.fnmatch_lines([
        "*CONVNEXTPOSE_REQUIRE_GOLDEN=1 but the golden files are missing: no manifest.json in *moved-away*",
        "*CONVNEXTPOSE_REQUIRE_GOLDEN=1 but *test_skips_itself_for_golden_files skipped for missing golden files*",
    ], consecutive=False)
    result.stdout.fnmatch_lines(["SKIPPED * needs CUDA"])


def test_required_golden_files_listed_but_absent_fail(pytester: pytest.Pytester, monkeypatch) -> None:
    golden = pytester.mkdir("golden")
    (golden / "manifest.json").write_text('{"xs": {"checkpoint": "xs.pth.tar", "expected": "xs_expected.pt"}}')
    monkeypatch.setenv("CONVNEXTPOSE_GOLDEN", str(golden))
    monkeypatch.setenv("CONVNEXTPOSE_REQUIRE_GOLDEN", "1")
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_golden="def test_uses_the_golden_cases(golden_cases):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*manifest.json lists files that are not there: *xs.pth.tar*xs_expected.pt*"])
