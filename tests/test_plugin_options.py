"""The plugin's options, their ini/env fallbacks, markers, Hypothesis profiles, and that it
stays out of runs that do not ask for it (pytester; users' test files, no conformance suite)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch

pytest_plugins = ["pytester"]

TINY = Path(__file__).resolve().parent / "data" / "tiny_snapshot_83.pth.tar"

# A user's own test module, reusing the plugin's fixtures.
SHOW_IDS = """
def test_show(convnextpose_ckpt_path):
    pass
"""


def sha8(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


def collected_ids(result: pytest.RunResult) -> list[str]:
    return [
        line.split("[", 1)[1].rstrip("]") for line in result.outlines if line.startswith("test_user.py::test_show[")
    ]


@pytest.fixture
def two_files(pytester: pytest.Pytester) -> tuple[Path, Path]:
    a, b = pytester.path / "a.pth", pytester.path / "b.pth"
    a.write_bytes(b"first")
    b.write_bytes(b"second")
    return a, b


@pytest.fixture
def user_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=SHOW_IDS)


def test_options_are_in_their_own_help_group(pytester):
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    assert "ConvNeXtPose checkpoint conformance" in out
    for option in (
        "--ckpt",
        "--joints",
        "--head-upsample",
        "--device",
        "--conformance-report",
        "--expected",
        "--golden-dir",
    ):
        assert option in out, f"{option} missing from --help"


def test_two_ckpt_options_give_two_parametrized_sets(pytester, user_tests, two_files):
    a, b = two_files
    result = pytester.runpytest("--ckpt", str(a), "--ckpt", str(b), "test_user.py", "--collect-only", "-q")
    assert collected_ids(result) == [f"a.pth-{sha8(a)}", f"b.pth-{sha8(b)}"]


def test_env_var_is_the_fallback_for_ckpt(pytester, user_tests, two_files, monkeypatch):
    a, b = two_files
    monkeypatch.setenv("CONVNEXTPOSE_CKPT", f"{a}{os.pathsep}{b}")
    result = pytester.runpytest("test_user.py", "--collect-only", "-q")
    assert collected_ids(result) == [f"a.pth-{sha8(a)}", f"b.pth-{sha8(b)}"]


def test_ini_is_the_fallback_when_neither_option_nor_env_is_given(pytester, user_tests, two_files, monkeypatch):
    monkeypatch.delenv("CONVNEXTPOSE_CKPT", raising=False)
    a, _ = two_files
    pytester.makeini("[pytest]\nconvnextpose_ckpt =\n    a.pth\n")  # relative to the ini file
    result = pytester.runpytest("test_user.py", "--collect-only", "-q")
    assert collected_ids(result) == [f"a.pth-{sha8(a)}"]


def test_option_beats_env_beats_ini(pytester, user_tests, two_files, monkeypatch):
    a, b = two_files
    pytester.makeini("[pytest]\nconvnextpose_ckpt = a.pth\n")
    monkeypatch.setenv("CONVNEXTPOSE_CKPT", str(b))
    assert collected_ids(pytester.runpytest("test_user.py", "--collect-only", "-q")) == [f"b.pth-{sha8(b)}"]
    only_a = pytester.runpytest("test_user.py", "--ckpt", str(a), "--collect-only", "-q")
    assert collected_ids(only_a) == [f"a.pth-{sha8(a)}"]


def test_joints_and_head_upsample_reach_load_checkpoint(pytester):
    pytester.makepyfile(
        test_spec="""
        def test_spec(convnextpose_ckpt_spec, convnextpose_ckpt):
            spec = convnextpose_ckpt_spec
            assert spec.joint_num == 9 and spec.depth_dim == 16, spec
            assert spec.head_upsample == (True, False, True), spec
            assert convnextpose_ckpt.head_upsample_source == "user"
    """
    )
    result = pytester.runpytest("test_spec.py", f"--ckpt={TINY}", "--joints=9", "--head-upsample=up,no,up")
    result.assert_outcomes(passed=1)


def test_ini_fallbacks_for_joints_head_upsample_and_device(pytester):
    pytester.makeini(
        "[pytest]\nconvnextpose_joints = 9\nconvnextpose_head_upsample = no,no,up\nconvnextpose_device = cpu\n"
    )
    pytester.makepyfile(
        test_spec="""
        def test_spec(convnextpose_ckpt_spec, convnextpose_torch_device):
            spec = convnextpose_ckpt_spec
            assert spec.joint_num == 9 and spec.head_upsample == (False, False, True), spec
            assert convnextpose_torch_device.type == "cpu"
    """
    )
    pytester.runpytest("test_spec.py", f"--ckpt={TINY}").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--head-upsample=up,sideways"], "--head-upsample"),
        (["--joints=0"], "--joints: must be positive, got 0"),
        (["--atol=-1"], "--atol: must be >= 0, got -1"),
    ],
)
def test_bad_option_values_are_usage_errors(pytester, args, message):
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_device_cuda_without_cuda_is_a_usage_error(pytester):
    result = pytester.runpytest("--device=cuda")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "CUDA is not available" in result.stderr.str()


def test_device_option_selects_the_torch_device(pytester):
    pytester.makepyfile(
        test_dev="""
        def test_dev(convnextpose_torch_device, convnextpose_sample_inputs):
            assert convnextpose_torch_device.type == "cpu" and convnextpose_sample_inputs.device.type == "cpu"
            assert tuple(convnextpose_sample_inputs.shape) == (4, 3, 256, 256)
    """
    )
    pytester.runpytest("test_dev.py", "--device=cpu").assert_outcomes(passed=1)


def test_markers_are_registered_and_gpu_tests_skip_without_cuda(pytester):
    out = pytester.runpytest("--markers").stdout.str()
    for marker in ("conformance", "slow", "gpu", "benchmark", "accuracy"):
        assert f"@pytest.mark.{marker}:" in out, f"marker {marker} not registered"
    pytester.makepyfile(
        test_gpu="""
        import pytest
        @pytest.mark.gpu
        def test_on_gpu():
            import torch
            assert torch.cuda.is_available()
    """
    )
    result = pytester.runpytest("test_gpu.py", "--strict-markers", "-rs")
    if torch.cuda.is_available():
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["*needs CUDA (marked gpu)*"])


@pytest.fixture
def restore_hypothesis_profile():
    """In-process runs load profiles globally: start from `default`, put the outer one back."""
    from hypothesis import settings

    previous = settings.get_current_profile_name()
    settings.load_profile("default")
    yield
    settings.load_profile(previous)


PROFILE_PROBE = """
from hypothesis import settings
from pytest_convnextpose.plugin.hypothesis_profiles import active_profile_name, suite_settings
def test_profile():
    print("ACTIVE", active_profile_name(), "GLOBAL", settings.get_current_profile_name(),
          "EXAMPLES", suite_settings().max_examples)
"""


@pytest.mark.parametrize(
    "args, active, global_, examples",
    [
        ([], "convnextpose-dev", "default", 8),
        (["--hypothesis-profile=convnextpose-ci"], "convnextpose-ci", "convnextpose-ci", 20),
        (["--hypothesis-profile=convnextpose-thorough"], "convnextpose-thorough", "convnextpose-thorough", 200),
    ],
)
def test_hypothesis_profiles_are_selectable_and_default_to_dev(
    pytester, args, active, global_, examples, restore_hypothesis_profile
):
    pytester.makepyfile(test_prof=PROFILE_PROBE)
    result = pytester.runpytest("test_prof.py", "-s", *args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*ACTIVE {active} GLOBAL {global_} EXAMPLES {examples}*"])


def test_disabled_plugin_has_no_options_and_no_fixtures(pytester, user_tests):
    assert pytester.runpytest("-p", "no:convnextpose", "--ckpt=x").ret == pytest.ExitCode.USAGE_ERROR
    result = pytester.runpytest("-p", "no:convnextpose", "test_user.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'convnextpose_ckpt_path' not found*"])


def test_unrelated_runs_are_left_alone(pytester, tmp_path, monkeypatch):
    """No checkpoint and no conformance suite selected: no header, no default written, same outcome."""
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the default would be written
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = pytester.runpytest("test_plain.py")
    result.assert_outcomes(passed=1)
    assert "convnextpose:" not in result.stdout.str()
    assert not list(scratch.iterdir()), f"the plugin wrote {list(scratch.iterdir())} during an unrelated run"
