"""Third-party ports through pytest itself: correct ones pass, wrong ones fail once, cleanly, named.

The ports are `tests/wrong_impls.py`'s `TorchPort` (written the authors' way: configuration
constants in the soft-argmax) and its ONNX exports made as the authors' `main/torch2onnx.py`
makes them (a fixed 1x3xHxW example, no dynamic axes), all on the tiny golden checkpoint.
Expected numbers are the checkpoint's: 18 joints x 8 depth bins, a 16x16 heatmap at 128x128
with its (up, up, no) head, 32x32 when run as 3-UP (`--head-upsample up,up,up`).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest
import torch

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
import wrong_impls  # noqa: E402

TINY = TESTS / "data" / "tiny_snapshot_83.pth.tar"
PORT = TESTS / "wrong_impls.py"
NUM_IMPL_TESTS = 9


def run_impl(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    from pytest_convnextpose.plugin.core import conformance_dir

    return pytester.runpytest(
        str(conformance_dir() / "test_impl.py"), f"--ckpt={TINY}", "-p", "no:cacheprovider", *args
    )


def export_authors_way(model: torch.nn.Module, path: Path, dynamic_hw: bool = False) -> Path:
    """torch.onnx.export as in the authors' main/torch2onnx.py: one fixed example, opset 12."""
    kwargs = {}
    if dynamic_hw:
        kwargs["dynamic_axes"] = {"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            torch.zeros(1, 3, *wrong_impls.TINY_SIZE),
            str(path),
            export_params=True,
            opset_version=12,
            do_constant_folding=True,
            input_names=["input"],
            output_names=["output"],
            dynamo=False,
            **kwargs,
        )
    return path


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    from pytest_convnextpose import load_checkpoint

    tiny = load_checkpoint(TINY)
    folder = tmp_path_factory.mktemp("ports")
    torch.manual_seed(0)
    other = wrong_impls.make_torch_port(tiny.spec, wrong_impls.TINY_SIZE, depth_dim=16)  # not this checkpoint
    return {
        "fixed": export_authors_way(wrong_impls.torch_port(tiny), folder / "fixed.onnx"),
        "dynamic": export_authors_way(wrong_impls.torch_port(tiny), folder / "dynamic.onnx", dynamic_hw=True),
        "foreign": export_authors_way(other, folder / "foreign.onnx"),
    }


def test_fixed_size_module_passes_at_its_input_size(pytester):
    result = run_impl(pytester, f"--impl={PORT}:torch_port", "-rs")
    result.assert_outcomes(passed=NUM_IMPL_TESTS - 1, skipped=1)
    result.stdout.fnmatch_lines(["*takes one input size (fixed input 128x128): a second size does not apply*"])


def test_onnx_exported_the_authors_way_passes_one_image_at_a_time(pytester, exports, tmp_path):
    report = tmp_path / "report.json"
    result = run_impl(pytester, f"--onnx={exports['fixed']}", f"--conformance-report={report}")
    result.assert_outcomes(passed=NUM_IMPL_TESTS - 1, skipped=1)
    axes = "fixed batch 1 (images run one at a time), fixed input 128x128"
    result.stdout.fnmatch_lines([f"convnextpose: implementation under test: onnx:*fixed.onnx ({axes})"])
    [entry] = json.loads(report.read_text())["implementations"]
    assert (entry["fixed_batch"], entry["input_size"], entry["dynamic_size"], entry["fixed_axes"]) == (
        1,
        [128, 128],
        False,
        axes,
    )


def reports(out: str) -> str:
    """The failure and error reports of a run, without pytest's short summary (which, from pytest 9.2,
    repeats each message in full) or the verdict: what a count of messages should look at."""
    return out.split("short test summary info")[0].split("convnextpose verdict")[0]


def test_graph_declared_dynamic_but_fixed_at_its_export_size_is_caught(pytester, exports):
    """Exported at 128x128 with dynamic axes: right on the golden input (128x128) only. The seeded
    inputs (256x256) and the second size (192x256) fail, each naming the cause."""
    result = run_impl(pytester, f"--onnx={exports['dynamic']}", "-rf")
    # passing: golden, golden-flipped, flip test on golden; failing: the other six
    result.assert_outcomes(passed=3, failed=NUM_IMPL_TESTS - 3)
    out = result.stdout.str()
    cause = (
        "likely cause: declared dynamic but depends on the export size: the graph declares its height and width "
        "dynamic and matches the reference at 128x128 (the 'golden' inputs), not at"
    )
    assert reports(out).count(cause) == NUM_IMPL_TESTS - 3, out
    assert (
        "seeded-second-size] - onnx:dynamic.onnx raised Fail: [ONNXRuntimeError]" in out or "(2 images 192x256" in out
    )
    assert "Traceback" not in out


def test_graph_of_another_network_is_named(pytester, exports):
    result = run_impl(
        pytester,
        f"--onnx={exports['foreign']}",
        "-k",
        "test_matches_reference_model and seeded and not flipped and not second",
    )
    result.assert_outcomes(failed=1)
    # the other graph's output layer: 18 joints x 16 depth bins = 288 channels; this checkpoint's 18 x 8 = 144
    result.stdout.fnmatch_lines(
        [
            "*likely cause: this graph computes a different network (J·D or heatmap size "
            "differ): its output layer has 288 = 18 joints x 16 depth bins (J*D), this "
            "checkpoint's final_layer 144 = 18 x 8*"
        ]
    )


def test_a_factory_that_raises_is_reported_once_in_one_line(pytester):
    result = run_impl(pytester, f"--impl={PORT}:raising_factory")
    result.assert_outcomes(errors=1, skipped=NUM_IMPL_TESTS - 1)
    out = result.stdout.str()
    line = next(ln for ln in out.splitlines() if "the factory raised" in ln)
    assert line.startswith("--impl ") and "ValueError: no weights for this variant (" in line
    assert f"wrong_impls.py:{wrong_impls.raising_factory.__code__.co_firstlineno + 1})" in line
    assert reports(out).count("the factory raised") == 1, out
    assert "Traceback" not in out and "def raising_factory" not in out


def test_load_error_is_reported_once_with_its_meaning(pytester):
    result = run_impl(pytester, f"--impl={PORT}:torch_port_depth_dim_load_error")
    result.assert_outcomes(errors=1, skipped=NUM_IMPL_TESTS - 1)
    result.stdout.fnmatch_lines(
        [
            "*likely cause: head.final_layer: the checkpoint has 144 output channels = 18 joints "
            "× 8 depth bins (J·D); your model was built with 72 = 18 × 4*"
        ]
    )


@pytest.mark.parametrize(
    "name, args, cause",
    [
        # 18 x 4 x 16 x 16 values per joint in the reshape, 8 x 16 x 16 in the heatmap: each image becomes 2
        ("torch_port_depth_dim_reshape", (), "each image becomes 2 (batch 4 for 2 images): depth_dim 4 instead of 8"),
        # 3-UP at 128x128: a 32x32 heatmap; output_shape 16x16 = input/8 makes each image 4
        (
            "torch_port_output_shape_div8",
            ("--head-upsample=up,up,up",),
            "each image becomes 4 (batch 8 for 2 images): output_shape = input/8 (16x16) instead of input/4 (32x32)",
        ),
    ],
)
def test_wrong_batch_from_soft_argmax_constants_is_a_clean_named_failure(pytester, name, args, cause):
    result = run_impl(pytester, f"--impl={PORT}:{name}", *args, "-k", "test_output_is")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "output shape (" in out and cause in out, out
    assert "[the reference's heatmaps through that reshape reproduce your output" in out
    if "output_shape" in cause:
        assert "fix: set output_shape = input/4 with a head whose last DeConv upsamples" in out
    for noise in ("Traceback", "TorchPort(", "Conv2d(", "assert ", "def test_"):
        assert noise not in out, f"{noise!r} in a shape failure:\n{out}"


def test_module_loaded_with_strict_false_is_named(pytester):
    result = run_impl(
        pytester,
        f"--impl={PORT}:torch_port_head_not_loaded",
        "-k",
        "test_matches_reference_model and seeded and not flipped and not second",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*likely cause: head weights never loaded: 24 of * checkpoint tensors have no equal in your "
            "module's state_dict (head.deconv_layers_1.* (8), head.deconv_layers_2.* (8), "
            "head.deconv_layers_3.* (8)*"
        ]
    )
