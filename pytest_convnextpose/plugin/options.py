"""Every command-line option and ini setting of the plugin, in one group (`pytest --help`).

One module, so a reader sees the whole surface at once and the sub-plugins only read
values. Option types are the command line's own (`cli.args`), so `pytest --joints 0` and
`convnextpose inspect --joints 0` are refused with the same words; ini values go through
the same types (`ini_value`). Imports nothing heavy: every pytest run imports this module.
"""
from __future__ import annotations

import argparse
import os
import shlex
from typing import Any, Callable, Optional

import pytest

from ..cli.args import (
    HEAD_UPSAMPLE_HELP,
    JOINTS_HELP,
    head_upsample_arg,
    non_negative_float,
    non_negative_int,
    positive_int,
)
from ..implementations.tolerances import DEFAULT_ATOL, DEFAULT_RTOL

#: the option group every sub-plugin's options live in (`pytest --help` shows one section)
OPTION_GROUP = "convnextpose"
DEFAULT_MAX_OUTPUT_DRIFT_MM = 1.0
DEFAULT_MAX_MPJPE_REGRESSION_MM = 0.5
DEFAULT_H36M_BATCH_SIZE = 32


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(OPTION_GROUP, "ConvNeXtPose checkpoint conformance (pytest-convnextpose)")
    _checkpoint_options(group, parser)
    _implementation_options(group)
    _baseline_options(group)
    _accuracy_options(group)


def _checkpoint_options(group: Any, parser: pytest.Parser) -> None:
    group.addoption("--ckpt", action="append", dest="convnextpose_ckpt", default=[], metavar="PATH",
                    help="checkpoint to test (repeatable). Without test paths, runs the installed conformance "
                         "suite. Fallbacks: env CONVNEXTPOSE_CKPT (os.pathsep-separated), ini convnextpose_ckpt.")
    group.addoption("--joints", type=positive_int, dest="convnextpose_joints", default=None, metavar="N",
                    help=f"{JOINTS_HELP} (ini convnextpose_joints)")
    group.addoption("--head-upsample", type=head_upsample_arg, dest="convnextpose_head_upsample", default=None,
                    metavar="up,up,no", help=f"{HEAD_UPSAMPLE_HELP} (ini convnextpose_head_upsample)")
    group.addoption("--device", dest="convnextpose_device", default=None, choices=("auto", "cpu", "cuda"),
                    help="device for the reference model: auto (cuda if available), cpu, cuda "
                         "(ini convnextpose_device)")
    group.addoption("--conformance-report", dest="convnextpose_report", default=None, metavar="PATH",
                    help="write a JSON report per checkpoint (schema: docs/report-schema.md)")
    group.addoption("--expected", action="append", dest="convnextpose_expected", default=[], metavar="PATH",
                    help="expected-outputs torch file (input, coords, ...) for the parity tests (repeatable)")
    group.addoption("--golden-dir", action="append", dest="convnextpose_golden_dir", default=[], metavar="DIR",
                    help="folder with a golden manifest.json (besides the checkpoint's own folder)")
    parser.addini("convnextpose_ckpt", "checkpoints to test (one per line; relative to the ini file)", type="paths")
    parser.addini("convnextpose_joints", "default for --joints", type="string", default="")
    parser.addini("convnextpose_head_upsample", "default for --head-upsample", type="string", default="")
    parser.addini("convnextpose_device", "default for --device", type="string", default="")
    parser.addini("convnextpose_golden_dir", "folders with golden manifest.json files", type="paths")


def _implementation_options(group: Any) -> None:
    group.addoption("--impl", action="append", dest="convnextpose_impl", default=[], metavar="MODULE:FACTORY",
                    help="implementation under test (repeatable): FACTORY(checkpoint) returns a torch.nn.Module or "
                         "a callable mapping float32 (B,3,H,W) to (B,J,3); MODULE may be a dotted name or a .py path")
    group.addoption("--onnx", action="append", dest="convnextpose_onnx", default=[], metavar="PATH",
                    help="ONNX file under test, run with onnxruntime (repeatable); see `convnextpose export-onnx`")
    group.addoption("--atol", type=non_negative_float, dest="convnextpose_atol", default=None, metavar="X",
                    help=f"absolute parity tolerance in heatmap units (default {DEFAULT_ATOL:g})")
    group.addoption("--rtol", type=non_negative_float, dest="convnextpose_rtol", default=None, metavar="X",
                    help=f"relative parity tolerance (default {DEFAULT_RTOL:g}); pass if |a-e| <= atol + rtol*|e|")
    group.addoption("--xfails-file", action="append", dest="convnextpose_xfails", default=[], metavar="FILE",
                    help="expected failures: one `<test id prefix>  # <reason>` per line (reason required)")


def _baseline_options(group: Any) -> None:
    group.addoption("--baseline", dest="convnextpose_baseline", default=None, metavar="PATH",
                    help="baseline checkpoint: report architecture, weight and output drift of each --ckpt against it")
    group.addoption("--max-output-drift", type=non_negative_float, dest="convnextpose_max_output_drift",
                    default=DEFAULT_MAX_OUTPUT_DRIFT_MM, metavar="MM",
                    help="with --baseline: largest per-joint output drift allowed, mm at the Human3.6M scale "
                         f"(default {DEFAULT_MAX_OUTPUT_DRIFT_MM:g})")
    group.addoption("--max-mpjpe-regression", type=non_negative_float, dest="convnextpose_max_mpjpe_regression",
                    default=DEFAULT_MAX_MPJPE_REGRESSION_MM, metavar="MM",
                    help="with --baseline and --h36m-root: largest MPJPE increase allowed in mm "
                         f"(default {DEFAULT_MAX_MPJPE_REGRESSION_MM:g})")


def _accuracy_options(group: Any) -> None:
    group.addoption("--h36m-root", dest="convnextpose_h36m_root", default=None, metavar="DIR",
                    help="Human3.6M folder in the authors' layout (annotations/, images/): enables accuracy tests")
    group.addoption("--protocol", dest="convnextpose_protocol", type=int, choices=(1, 2), default=2,
                    help="Human3.6M protocol: 1 = S11, PA-MPJPE (no scale); 2 = S9+S11, MPJPE (default 2)")
    group.addoption("--max-frames", dest="convnextpose_max_frames", type=positive_int, default=None, metavar="N",
                    help="evaluate only the first N test frames (result reported, not gated)")
    group.addoption("--flip-test", dest="convnextpose_flip_test", action="store_true", default=True,
                    help="average with the horizontally flipped image (default)")
    group.addoption("--no-flip-test", dest="convnextpose_flip_test", action="store_false",
                    help="no test-time flip averaging")
    group.addoption("--h36m-bbox", dest="convnextpose_h36m_bbox", choices=("gt", "rootnet"), default="gt",
                    help="boxes and root depth: ground truth (default) or RootNet's output")
    group.addoption("--rootnet-file", dest="convnextpose_rootnet_file", default=None, metavar="FILE",
                    help="RootNet bbox_root_human36m_output.json (default: DIR/bbox_root/...)")
    group.addoption("--mpjpe-tolerance", dest="convnextpose_mpjpe_tolerance", type=non_negative_float, default=1.0,
                    metavar="MM",
                    help="fail when the error exceeds the published figure by more than this (default 1.0 mm)")
    group.addoption("--h36m-preds", dest="convnextpose_h36m_preds", default=None, metavar="FILE",
                    help="score this predictions file (JSON, see docs/accuracy.md) instead of running the model")
    group.addoption("--h36m-preds-variant", dest="convnextpose_h36m_preds_variant", default=None,
                    choices=("XS", "S", "M", "L"), help="published variant the predictions file is gated against")
    group.addoption("--h36m-results", dest="convnextpose_h36m_results", default=None, metavar="PATH",
                    help="write per-action results JSON here (a folder: one <checkpoint id>.json each)")
    group.addoption("--h36m-batch-size", dest="convnextpose_h36m_batch_size", type=positive_int,
                    default=DEFAULT_H36M_BATCH_SIZE, metavar="N",
                    help=f"images per forward pass in the Human3.6M evaluation (default {DEFAULT_H36M_BATCH_SIZE})")
    group.addoption("--h36m-workers", dest="convnextpose_h36m_workers", type=non_negative_int, default=None,
                    metavar="N", help="DataLoader processes that decode and crop the images (0: in the test process; "
                                      "default: this process' share of the CPUs)")
    group.addoption("--h36m-preds-aligned", dest="convnextpose_h36m_preds_aligned", action="store_true",
                    help="with --protocol 1: the --h36m-preds poses are rigidly aligned already (the authors' "
                         "protocol-1 output); score them as they are")


def option_or_ini(config: pytest.Config, name: str, parse: Callable[[str], Any]) -> Optional[Any]:
    """The option `convnextpose_<name>` if given, else the ini value of the same name parsed with the
    option's own type; a bad ini value is a one-line usage error naming the setting."""
    value = config.getoption(f"convnextpose_{name}")
    if value is not None:
        return value
    text = config.getini(f"convnextpose_{name}")
    if not text:
        return None
    try:
        return parse(text)
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(f"ini convnextpose_{name}: {exc}") from None


def option_given(config: pytest.Config, *flags: str) -> bool:
    """Whether one of `flags` was written out (command line, PYTEST_ADDOPTS or ini addopts), even
    with its default value: a default and an explicit choice of the same value differ."""
    words = [*map(str, config.invocation_params.args), *shlex.split(os.environ.get("PYTEST_ADDOPTS", "")),
             *config.getini("addopts")]
    return any(w == f or w.startswith(f + "=") for w in words for f in flags)
