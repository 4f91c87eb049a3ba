"""A file converted by `convnextpose convert` is held to its source's expected outputs.

The converter verifies the converted tensors are bit-equal to the source's, and records the
source's sha256 in the metadata; the parity tests look a golden case up by either hash."""
from __future__ import annotations

import json
from pathlib import Path

import conformance
from pytest_convnextpose.implementations.golden import expected_file_case, find_golden_case, provenance_hashes

pytest_plugins = ["pytester"]

DATA = Path(__file__).resolve().parent / "data"
TINY_SHA = json.loads((DATA / "manifest.json").read_text())["tiny"]["checkpoint_sha256"]
PARITY = str(Path(conformance.__file__).resolve().parent / "test_parity.py")


def test_provenance_is_the_file_then_its_recorded_source():
    assert provenance_hashes("aa", {}) == ["aa"]
    assert provenance_hashes("aa", {"convnextpose.source_sha256": "bb"}) == ["aa", "bb"]
    assert provenance_hashes("aa", {"convnextpose.source_sha256": "aa"}) == ["aa"]
    assert provenance_hashes(None, {"convnextpose.source_sha256": "bb"}) == ["bb"]
    assert provenance_hashes("aa", {"convnextpose.source_sha256": 7}) == ["aa"], "non-string metadata ignored"


def test_golden_case_is_found_by_the_source_hash_and_not_by_an_unrelated_one():
    assert find_golden_case(["0" * 64, TINY_SHA], [DATA]).name == "tiny"
    assert find_golden_case(["0" * 64], [DATA]) is None
    assert find_golden_case(TINY_SHA, [DATA]).name == "tiny", "a single hash still works"


def test_hash_pinned_expected_file_applies_through_provenance(tmp_path):
    import torch

    pinned = tmp_path / "pinned.pt"
    torch.save({**torch.load(DATA / "tiny_expected.pt", weights_only=True), "checkpoint_sha256": TINY_SHA}, pinned)
    assert expected_file_case(pinned, ["f" * 64, TINY_SHA]) is not None
    assert expected_file_case(pinned, ["f" * 64]) is None


def test_converted_golden_file_runs_and_passes_the_golden_parity_tests(pytester, tiny_safetensors):
    converted = tiny_safetensors  # `convnextpose convert` of tests/data's tiny file (conftest)
    result = pytester.runpytest(f"--ckpt={converted}", PARITY, f"--golden-dir={DATA}", "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=3)  # coords, flip test, heatmap shape: none skipped
    # without the golden folder the same file has no expected outputs: the tests skip and say why
    pytester.runpytest(f"--ckpt={converted}", PARITY, "-p", "no:cacheprovider").assert_outcomes(skipped=3)
