"""The conformance suite through the plugin (pytester): a good checkpoint passes everything,
each defect fails the one test for its invariant, the JSON report, the embedded default,
`pytest --ckpt=X` from anywhere, and pytest-xdist giving the same outcomes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

import conformance

pytest_plugins = ["pytester"]

TINY = Path(__file__).resolve().parent / "data" / "tiny_snapshot_83.pth.tar"
SUITE = Path(conformance.__file__).resolve().parent
#: the modules this project's suite owns for checkpoint checks (others need --impl/--baseline/data)
CHECK_MODULES = [str(SUITE / f"test_{m}.py") for m in ("load", "shapes", "variant", "forward", "parity")]

# A key in each area of the tiny golden network, in the file's own (`module.`) spelling.
PW_WEIGHT = "module.backbone.stages.1.0.pwconv1.weight"
PW_BIAS = "module.backbone.stages.1.0.pwconv1.bias"
HEAD_VAR = "module.head.deconv_layers_2.norm.running_var"


def _nan_weight(net: dict) -> None:
    t = net[PW_WEIGHT].clone()
    t.view(-1)[3] = float("nan")
    net[PW_WEIGHT] = t


def _negative_variance(net: dict) -> None:
    t = net[HEAD_VAR].clone()
    t[0] = -1.0
    net[HEAD_VAR] = t


#: defect -> (how to make it, the one test that must fail)
DEFECTS = {
    "missing": (lambda n: n.pop(PW_BIAS), "test_load.py::test_no_missing_keys"),
    "unexpected": (
        lambda n: n.__setitem__("module.head.extra.weight", torch.zeros(3)),
        "test_load.py::test_no_unexpected_keys",
    ),
    "shape": (
        lambda n: n.__setitem__(PW_BIAS, torch.zeros(65)),
        "test_shapes.py::test_every_tensor_has_the_shape_its_spec_implies",
    ),
    "nonfinite": (_nan_weight, "test_load.py::test_all_values_are_finite"),
    "bn_variance": (_negative_variance, "test_load.py::test_batchnorm_variances_are_positive"),
}


def write_variant_of_tiny(directory: Path, name: str, mutate=None) -> Path:
    """The tiny golden snapshot re-saved (authors' layout) after `mutate(network)`."""
    snapshot = torch.load(TINY, map_location="cpu", weights_only=True)
    net = dict(snapshot["network"])
    if mutate is not None:
        mutate(net)
    path = directory / f"{name}.pth.tar"
    torch.save({"epoch": snapshot["epoch"], "network": net}, path)
    return path


def outcomes(reprec) -> dict[str, str]:
    """`<file>::<test>[<id>]` -> passed/failed/skipped/error from an inline run."""
    out: dict[str, str] = {}
    for rep in reprec.getreports("pytest_runtest_logreport"):
        key = Path(rep.nodeid.split("::", 1)[0]).name + "::" + rep.nodeid.split("::", 1)[1]
        if rep.when == "call" or not rep.passed:
            state = rep.outcome if rep.when == "call" or rep.skipped else "error"
            out.setdefault(key, state) if state == "passed" else out.__setitem__(key, state)
    return out


def failing_tests(reprec) -> set[str]:
    return {k.split("[", 1)[0] for k, v in outcomes(reprec).items() if v in ("failed", "error")}


def test_good_checkpoint_passes_everything(pytester):
    """The golden tiny case: every check passes, parity included (its manifest sits next to it)."""
    reprec = pytester.inline_run(f"--ckpt={TINY}", *CHECK_MODULES, "-p", "no:cacheprovider")
    got = outcomes(reprec)
    assert not failing_tests(reprec), got
    assert got["test_parity.py::test_outputs_match_expected_outputs[tiny_snapshot_83.pth.tar-63144b81]"] == "passed"
    assert set(got.values()) == {"passed"} and len(got) == 19, got


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_each_defect_fails_only_the_test_for_its_invariant(pytester, defect):
    mutate, owner = DEFECTS[defect]
    path = write_variant_of_tiny(pytester.path, defect, mutate)
    reprec = pytester.inline_run(f"--ckpt={path}", *CHECK_MODULES, "-p", "no:cacheprovider")
    assert failing_tests(reprec) == {owner}, outcomes(reprec)


def test_nan_weight_fails_naming_the_key(pytester):
    path = write_variant_of_tiny(pytester.path, "nan", _nan_weight)
    result = pytester.runpytest(f"--ckpt={path}", str(SUITE / "test_load.py"), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(["*non-finite values*backbone.stages.1.0.pwconv1.weight (1 of *"])


def test_unloadable_file_fails_the_load_test_and_dependants_skip_naming_it(pytester):
    broken = pytester.path / "broken.pth"
    broken.write_bytes(TINY.read_bytes()[:5000])
    result = pytester.runpytest(f"--ckpt={broken}", *CHECK_MODULES, "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(failed=1, skipped=18)
    result.stdout.fnmatch_lines(
        [
            "*_ test_checkpoint_file_loads[[]broken.pth-*",
            "checkpoint could not be loaded: *broken.pth: *",
            "*could not be loaded*(reported by test_load.py::test_checkpoint_file_loads)",
        ]
    )


def test_defect_is_not_hidden_when_its_test_is_deselected(pytester):
    """With the reporting test deselected, dependants fail instead of skipping."""
    path = write_variant_of_tiny(pytester.path, "nan", _nan_weight)
    result = pytester.runpytest(f"--ckpt={path}", str(SUITE / "test_forward.py"), "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*nonfinite problem at key*is not part of this run*"])


def test_report_has_every_test_and_checkpoint(pytester):
    good = write_variant_of_tiny(pytester.path, "good")
    nan = write_variant_of_tiny(pytester.path, "nan", _nan_weight)
    report = pytester.path / "out" / "report.json"
    pytester.inline_run(
        f"--ckpt={good}",
        f"--ckpt={nan}",
        str(SUITE / "test_load.py"),
        str(SUITE / "test_variant.py"),
        f"--conformance-report={report}",
        "-p",
        "no:cacheprovider",
    )
    data = json.loads(report.read_text())
    assert data["schema_version"] == 1 and data["verdict"] == "fail"
    by_name = {c["path"]: c for c in data["checkpoints"]}
    g, n = by_name[str(good)], by_name[str(nan)]
    assert g["sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()
    assert g["synthetic"] is False and g["variant"] is None and g["nearest_variant"] == "XS"
    assert g["spec"]["dims"] == [8, 16, 32, 64] and g["container"] == "torch-zip"
    assert g["counts"] == {"passed": 8, "failed": 0, "skipped": 0, "error": 0, "total": 8}, g["counts"]
    assert g["verdict"] == "pass" and n["verdict"] == "fail"
    failed = [t for t in n["tests"] if t["outcome"] == "failed"]
    assert [t["nodeid"].split("::")[1].split("[")[0] for t in failed] == ["test_all_values_are_finite"]
    assert "backbone.stages.1.0.pwconv1.weight" in failed[0]["message"]
    assert all(t["nodeid"].endswith(f"[{n['id']}]") for t in n["tests"])
    assert data["counts"]["total"] == 16


def test_ckpt_without_paths_runs_the_installed_suite_from_any_directory(pytester):
    result = pytester.runpytest(f"--ckpt={TINY}", "--collect-only", "-q", "-p", "no:cacheprovider")
    out = result.stdout.str()
    for module in (
        "test_load.py",
        "test_shapes.py",
        "test_variant.py",
        "test_forward.py",
        "test_parity.py",
        "test_impl.py",
        "test_baseline.py",
        "test_accuracy.py",
        "test_latency.py",
    ):
        assert f"{module}::" in out, f"{module} not collected from the installed suite"
    assert "[tiny_snapshot_83.pth.tar-63144b81]" in out


def test_pyargs_conformance_without_ckpt_runs_on_the_synthetic_default(pytester):
    report = pytester.path / "default.json"
    result = pytester.runpytest(
        "--pyargs",
        "conformance",
        "-k",
        "test_checkpoint_file_loads",
        f"--conformance-report={report}",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=4)
    for variant in ("XS", "S", "M", "L"):
        result.stdout.fnmatch_lines([f"*synthetic-{variant}.pth.tar-*: *{variant}.pth.tar", f"*variant {variant};*"])
    result.stdout.fnmatch_lines(["*embedded synthetic default: not trained weights*"])
    data = json.loads(report.read_text())
    assert [(c["variant"], c["synthetic"], c["id"].split("-")[0]) for c in data["checkpoints"]] == [
        ("XS", True, "synthetic"),
        ("S", True, "synthetic"),
        ("M", True, "synthetic"),
        ("L", True, "synthetic"),
    ]
    assert all(c["container"] == "torch-zip" and c["wrapper"] == "network" for c in data["checkpoints"])


def junit_outcomes(path: Path) -> dict[str, str]:
    """`classname::name` -> passed/failed/error/skipped from a --junitxml file (xdist writes one too)."""
    import xml.etree.ElementTree as ET

    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        out[f"{case.get('classname')}::{case.get('name')}"] = kinds[0] if kinds else "passed"
    return out


def test_xdist_gives_the_same_outcomes_and_report(pytester):
    """Checkpoint checks, forward passes and the Hypothesis input property give the same outcomes
    under -n 2, in the JSON report and in --junitxml."""
    good = write_variant_of_tiny(pytester.path, "good")
    nan = write_variant_of_tiny(pytester.path, "nan", _nan_weight)
    modules = [str(SUITE / f"test_{m}.py") for m in ("load", "shapes", "variant", "forward")]
    serial_report, xdist_report = pytester.path / "serial.json", pytester.path / "xdist.json"
    serial_xml, xdist_xml = pytester.path / "serial.xml", pytester.path / "xdist.xml"
    pytester.inline_run(
        f"--ckpt={good}",
        f"--ckpt={nan}",
        *modules,
        f"--conformance-report={serial_report}",
        f"--junitxml={serial_xml}",
        "-p",
        "no:cacheprovider",
    )
    result = pytester.runpytest_subprocess(
        f"--ckpt={good}",
        f"--ckpt={nan}",
        *modules,
        "-n",
        "2",
        f"--conformance-report={xdist_report}",
        f"--junitxml={xdist_xml}",
        "-p",
        "no:cacheprovider",
    )
    assert "2 workers" in result.stdout.str()

    def summary(path: Path) -> dict:
        data = json.loads(path.read_text())
        return {
            c["id"]: (c["variant"], c["counts"], sorted((t["nodeid"], t["outcome"]) for t in c["tests"]))
            for c in data["checkpoints"]
        }

    serial, parallel = summary(serial_report), summary(xdist_report)
    assert parallel == serial
    assert any(outcome == "failed" for _, _, tests in serial.values() for _, outcome in tests)
    forward = [n for _, _, tests in serial.values() for n, o in tests if "test_forward.py" in n and o == "passed"]
    assert forward, "no forward test passed in the serial run (they should for the good checkpoint)"
    serial_all, parallel_all = junit_outcomes(serial_xml), junit_outcomes(xdist_xml)
    assert parallel_all == serial_all
    prop = {k: v for k, v in serial_all.items() if "test_any_input_gives" in k}
    assert len(prop) == 2 and sorted(prop.values()) == ["passed", "skipped"], prop  # the NaN file: skipped


def test_expected_file_drives_the_parity_tests(pytester):
    """A re-saved copy is no golden case (other sha256); `--expected` supplies the outputs,
    and a wrong expectation fails naming the joint."""
    copy = write_variant_of_tiny(pytester.path, "copy")
    expected = torch.load(TINY.parent / "tiny_expected.pt", map_location="cpu", weights_only=True)
    good = pytester.path / "good_expected.pt"
    torch.save(expected, good)
    wrong = pytester.path / "wrong_expected.pt"
    bad = dict(expected)
    bad["coords"] = expected["coords"].clone()
    bad["coords"][1, 5, 2] += 0.01
    torch.save(bad, wrong)
    parity = str(SUITE / "test_parity.py")
    pytester.runpytest(f"--ckpt={copy}", parity, "-p", "no:cacheprovider").assert_outcomes(skipped=3)
    pytester.runpytest(f"--ckpt={copy}", parity, f"--expected={good}", "-p", "no:cacheprovider").assert_outcomes(
        passed=3
    )
    result = pytester.runpytest(f"--ckpt={copy}", parity, f"--expected={wrong}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*max abs 0.01* > 0.001; worst at image 1, joint 5, z*"])


def test_a_name_that_lies_fails_only_the_name_test(pytester):
    """The tiny network saved as `ConvNeXtPose_XS.pth.tar`: every check passes but the one for
    the name, which says what the name claims and what the tensors are."""
    path = write_variant_of_tiny(pytester.path, "ConvNeXtPose_XS")
    reprec = pytester.inline_run(f"--ckpt={path}", *CHECK_MODULES, "-p", "no:cacheprovider")
    assert failing_tests(reprec) == {"test_variant.py::test_file_name_agrees_with_the_tensors"}, outcomes(reprec)
    result = pytester.runpytest(f"--ckpt={path}", str(SUITE / "test_variant.py"), "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "*NAME: file name says XS; tensors are no published variant (nearest XS)*",
            "*ConvNeXtPose_XS.pth.tar: file name says XS; tensors are no published variant*",
        ]
    )


USER_CONFTEST = """
import pytest

# A pose project's own fixtures, with the names people give them (and other scopes).
@pytest.fixture
def ckpt():
    return "the user's checkpoint path"

@pytest.fixture
def ref_model():
    return "the user's model"

@pytest.fixture
def implementation():
    return "the user's implementation"

@pytest.fixture
def torch_device():
    return "the user's device"

@pytest.fixture
def sample_inputs():
    return "the user's inputs"
"""


def test_a_users_own_fixtures_neither_break_the_suite_nor_are_replaced(pytester):
    """Issue: a project whose conftest defines `ckpt` turned `pytest --ckpt=X` into failures and
    scope-mismatch errors. The plugin's fixtures are `convnextpose_*`: the suite runs as without the
    conftest, and the user's own tests still get their own fixtures."""
    pytester.makeconftest(USER_CONFTEST)
    pytester.makepyfile(
        test_mine="""
        def test_mine(ckpt, ref_model, convnextpose_ckpt):
            assert ckpt == "the user's checkpoint path" and ref_model == "the user's model"
            assert convnextpose_ckpt.spec.joint_num == 18
    """
    )
    result = pytester.runpytest(f"--ckpt={TINY}", *CHECK_MODULES, "test_mine.py", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert "failed" not in outcomes and "error" not in outcomes and "errors" not in outcomes, result.stdout.str()
    assert outcomes.get("passed") == 20, outcomes  # the 19 checks of the golden tiny case + the user's test
    assert result.ret == pytest.ExitCode.OK
