"""`--impl`, `--onnx`, `--atol`, `--rtol` and the tolerance marker, run through pytest itself.

Each run executes the installed `conformance/test_impl.py` against the tiny golden
checkpoint: the faithful NumPy port and the exported ONNX file pass; every deliberately
wrong port fails with a message naming its mistake.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
import wrong_impls  # noqa: E402

TINY = TESTS / "data" / "tiny_snapshot_83.pth.tar"
PORT = TESTS / "wrong_impls.py"
NUM_IMPL_TESTS = 9  # shape/dtype, 5 parity cases, batch, 2 flip cases
#: the second-size parity case runs for graphs with a dynamic height x width only: it skips for these
NOT_DYNAMIC = 1
SEEDED_PARITY = "test_matches_reference_model and seeded and not flipped and not second"


def suite_file(name: str) -> str:
    from pytest_convnextpose.plugin.core import conformance_dir

    return str(conformance_dir() / name)


def run_impl(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(suite_file("test_impl.py"), f"--ckpt={TINY}", "-p", "no:cacheprovider", *args)


def test_faithful_numpy_port_passes(pytester):
    run_impl(pytester, f"--impl={PORT}:faithful").assert_outcomes(
        passed=NUM_IMPL_TESTS - NOT_DYNAMIC, skipped=NOT_DYNAMIC
    )


def test_exported_onnx_file_passes(pytester, tiny_onnx):
    run_impl(pytester, f"--onnx={tiny_onnx}").assert_outcomes(passed=NUM_IMPL_TESTS - NOT_DYNAMIC, skipped=NOT_DYNAMIC)


@pytest.mark.parametrize(
    "name",
    ["align_corners_false", "xy_swapped", "bn_eps_changed", "softmax_wrong_axis", "input_pixels", "head_random_init"],
)
def test_wrong_port_fails_naming_its_mistake(pytester, name):
    result = run_impl(pytester, f"--impl={PORT}:{name}", "-k", SEEDED_PARITY)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "likely cause: " in out and wrong_impls.WRONG[name] in out, out
    for part in ("worst: joint", "max error", "mean error", "reproduce:", "load_implementation("):
        assert part in out, f"{part!r} missing from the failure message:\n{out}"


def test_batch_dependent_port_fails_the_batch_test(pytester):
    result = run_impl(pytester, f"--impl={PORT}:batch_statistics", "-k", "test_batch_result")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*depends on the rest of its batch*", "*BatchNorm in train mode*"])


def test_wrong_flip_test_is_diagnosed(pytester):
    result = run_impl(pytester, f"--impl={PORT}:flip_off_by_one")
    result.assert_outcomes(passed=NUM_IMPL_TESTS - NOT_DYNAMIC - 2, failed=2, skipped=NOT_DYNAMIC)
    result.stdout.fnmatch_lines(["*likely cause: x of the flipped prediction mapped to W - x instead of W - 1 - x*"])


def test_float64_output_fails_the_dtype_check(pytester):
    result = run_impl(pytester, f"--impl={PORT}:float64_output", "-k", "test_output_is")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*output dtype float64, expected float32*"])


def test_without_impl_everything_skips_with_the_reason(pytester):
    result = run_impl(pytester, "-rs")
    result.assert_outcomes(skipped=NUM_IMPL_TESTS)
    result.stdout.fnmatch_lines(["*no --impl or --onnx given*"])


def test_atol_widens_the_tolerance(pytester):
    args = (f"--impl={PORT}:bn_eps_changed", "-k", SEEDED_PARITY)
    run_impl(pytester, *args).assert_outcomes(failed=1)
    run_impl(pytester, *args, "--atol=0.5").assert_outcomes(passed=1)


def test_rtol_is_applied(pytester):
    args = (f"--impl={PORT}:faithful", "-k", SEEDED_PARITY, "--atol=0")
    result = run_impl(pytester, *args, "--rtol=0")  # float64 port vs float32 reference: never bit-equal
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*outside atol=0 + rtol=0*|expected|*", "*tolerance from command line*"])
    run_impl(pytester, *args, "--rtol=0.01").assert_outcomes(passed=1)


def test_tolerance_marker_overrides_the_command_line(pytester):
    pytester.makepyfile(
        test_tol="""
        import pytest

        @pytest.mark.convnextpose_tolerance(atol=0.5, rtol=0)
        def test_marked(convnextpose_impl_tolerance):
            tol = convnextpose_impl_tolerance
            assert (tol.atol, tol.rtol, tol.source) == (0.5, 0, "marker")

        def test_unmarked(convnextpose_impl_tolerance):
            tol = convnextpose_impl_tolerance
            assert (tol.atol, tol.rtol, tol.source) == (0.25, 1e-4, "command line")
    """
    )
    pytester.runpytest("--atol=0.25", "-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_onnx_from_another_checkpoint_is_refused_by_name(pytester, tmp_path):
    from pytest_convnextpose import load_checkpoint
    from pytest_convnextpose.convert.onnx_export import export_onnx

    ckpt = load_checkpoint(TINY)
    other = tmp_path / "other.onnx"
    export_onnx(ckpt.spec, ckpt.state_dict, other, input_size=(128, 128), checkpoint_sha256="ab" * 32, verify=False)
    result = run_impl(
        pytester, f"--onnx={other}"
    )  # the whole implementation suite: one start-up error, not one per test
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr.str()
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --onnx {other}: exported from a checkpoint with sha256 abababab*, which is "
            "none of the checkpoints under test: tiny_snapshot_83.pth.tar (*); pass that checkpoint "
            "with --ckpt"
        ]
    )


def test_missing_impl_module_is_one_clear_error(pytester):
    result = run_impl(pytester, "--impl=surely_missing_port_xyz:build", "-k", "test_output_is")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *module 'surely_missing_port_xyz' not found*"])


def plain_pytest(folder: Path, *args: str):
    """The `pytest` console script (not `python -m pytest`, which puts the folder on sys.path by itself),
    run from `folder` as a user would."""
    import subprocess

    script = Path(sys.executable).with_name("pytest")
    return subprocess.run(
        [str(script), *args, "-p", "no:cacheprovider", "-q"], cwd=folder, capture_output=True, text=True, timeout=600
    )


def test_impl_module_in_the_invocation_folder_is_found_by_plain_pytest(tmp_path):
    (tmp_path / "my_port.py").write_text(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nfrom wrong_impls import faithful as build\n"
    )
    done = plain_pytest(
        tmp_path, suite_file("test_impl.py"), f"--ckpt={TINY}", "--impl=my_port:build", "-k", "test_output_is"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout, done.stdout


def test_missing_impl_module_error_suggests_the_file_form(tmp_path):
    done = plain_pytest(tmp_path, suite_file("test_impl.py"), f"--ckpt={TINY}", "--impl=ports.my_port:build")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "name the file instead: --impl path/to/ports/my_port.py:build" in done.stderr, done.stderr


def test_parity_failure_draws_the_worst_image_next_to_the_report_and_into_pytest_html(pytester):
    from picture_checks import assert_one_picture, picture_options, require_picture_tools

    require_picture_tools()
    report, html, options = picture_options(pytester.path)
    result = run_impl(pytester, f"--impl={PORT}:xy_swapped", "-k", SEEDED_PARITY, *options)
    assert_one_picture(result, report, html, "test_matches_reference_model")


def test_onnx_exported_from_the_source_of_a_converted_checkpoint_is_paired_with_it(pytester, tmp_path):
    """`convnextpose convert` verified the tensors bit-equal to the source's: an ONNX file exported from
    the source belongs to the converted file too (no start-up error, the parity tests run)."""
    from pytest_convnextpose.cli.main import main

    converted, onnx = tmp_path / "tiny.safetensors", tmp_path / "tiny.onnx"
    assert main(["convert", str(TINY), str(converted)]) == 0
    assert main(["export-onnx", str(TINY), str(onnx), "--input-size", "128x128"]) == 0
    result = pytester.runpytest(suite_file("test_impl.py"), f"--ckpt={converted}", f"--onnx={onnx}",
                                "-p", "no:cacheprovider", "-k", SEEDED_PARITY)
    result.assert_outcomes(passed=1)
