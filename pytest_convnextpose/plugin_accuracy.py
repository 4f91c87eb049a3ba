"""pytest sub-plugin: Human3.6M accuracy gates and latency-benchmark machine info (issue 6).

Options (group "convnextpose"):
    --h36m-root DIR          Human3.6M in the authors' layout (annotations/, images/)
    --protocol 1|2           1: S11, PA-MPJPE (authors' no-scale alignment); 2: S9+S11 MPJPE (default)
    --max-frames N           evaluate the first N test frames only (reported, never gated)
    --flip-test/--no-flip-test   test-time flip averaging (default on, as the published figures)
    --h36m-bbox gt|rootnet   ground-truth boxes and root depth (default) or RootNet's
    --rootnet-file FILE      RootNet output (default DIR/bbox_root/bbox_root_human36m_output.json)
    --mpjpe-tolerance MM     allowed excess over the published figure (default 1.0)
    --h36m-preds FILE        score predictions made elsewhere instead of running the model
    --h36m-preds-variant V   the published variant FILE's predictions claim to be (gates them)
    --h36m-results PATH      write per-action results as JSON (a folder: one file per checkpoint)
    --h36m-batch-size N      images per forward pass (default 32)
    --h36m-workers N         DataLoader processes decoding and cropping (default: this process' share of the CPUs)
    --h36m-preds-aligned     the predictions file holds poses aligned already (the authors' protocol-1 output)

Start-up checks: a `--h36m-root` without annotation files, a missing `--h36m-preds` or
RootNet file is a usage error (one line), not a failure per test. Runs of the conformance
suite keep pytest-benchmark's storage out of the current directory unless a run asks to
save or compare (`--benchmark-save`, `--benchmark-autosave`, `--benchmark-compare`,
`--benchmark-storage`): pytest-benchmark creates `./.benchmarks` at start-up otherwise.
"""
from __future__ import annotations

import json
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from .plugin import OPTION_GROUP, option_given

RESULTS_KEY = pytest.StashKey[list]()


@dataclass(frozen=True)
class AccuracyOptions:
    root: Optional[Path]
    protocol: int
    max_frames: Optional[int]
    flip_test: bool
    bbox_source: str
    rootnet_file: Optional[Path]
    tolerance_mm: float
    preds: Optional[Path]
    preds_variant: Optional[str]
    results: Optional[Path]
    batch_size: int
    workers: Optional[int]
    preds_aligned: bool

    @property
    def enabled(self) -> bool:
        return self.root is not None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(OPTION_GROUP)
    group.addoption("--h36m-root", dest="convnextpose_h36m_root", default=None, metavar="DIR",
                    help="Human3.6M folder in the authors' layout (annotations/, images/): enables accuracy tests")
    group.addoption("--protocol", dest="convnextpose_protocol", type=int, choices=(1, 2), default=2,
                    help="Human3.6M protocol: 1 = S11, PA-MPJPE (no scale); 2 = S9+S11, MPJPE (default 2)")
    group.addoption("--max-frames", dest="convnextpose_max_frames", type=int, default=None, metavar="N",
                    help="evaluate only the first N test frames (result reported, not gated)")
    group.addoption("--flip-test", dest="convnextpose_flip_test", action="store_true", default=True,
                    help="average with the horizontally flipped image (default)")
    group.addoption("--no-flip-test", dest="convnextpose_flip_test", action="store_false",
                    help="no test-time flip averaging")
    group.addoption("--h36m-bbox", dest="convnextpose_h36m_bbox", choices=("gt", "rootnet"), default="gt",
                    help="boxes and root depth: ground truth (default) or RootNet's output")
    group.addoption("--rootnet-file", dest="convnextpose_rootnet_file", default=None, metavar="FILE",
                    help="RootNet bbox_root_human36m_output.json (default: DIR/bbox_root/...)")
    group.addoption("--mpjpe-tolerance", dest="convnextpose_mpjpe_tolerance", type=float, default=1.0, metavar="MM",
                    help="fail when the error exceeds the published figure by more than this (default 1.0 mm)")
    group.addoption("--h36m-preds", dest="convnextpose_h36m_preds", default=None, metavar="FILE",
                    help="score this predictions file (JSON, see docs/accuracy.md) instead of running the model")
    group.addoption("--h36m-preds-variant", dest="convnextpose_h36m_preds_variant", default=None,
                    choices=("XS", "S", "M", "L"), help="published variant the predictions file is gated against")
    group.addoption("--h36m-results", dest="convnextpose_h36m_results", default=None, metavar="PATH",
                    help="write per-action results JSON here (a folder: one <checkpoint id>.json each)")
    group.addoption("--h36m-batch-size", dest="convnextpose_h36m_batch_size", type=int, default=32, metavar="N",
                    help="images per forward pass in the Human3.6M evaluation (default 32)")
    group.addoption("--h36m-workers", dest="convnextpose_h36m_workers", type=int, default=None, metavar="N",
                    help="DataLoader processes that decode and crop the images (0: in the test process; "
                         "default: this process' share of the CPUs)")
    group.addoption("--h36m-preds-aligned", dest="convnextpose_h36m_preds_aligned", action="store_true",
                    help="with --protocol 1: the --h36m-preds poses are rigidly aligned already (the authors' "
                         "protocol-1 output); score them as they are")


def read_accuracy_options(config: pytest.Config) -> AccuracyOptions:
    opt = config.getoption

    def path(name: str) -> Optional[Path]:
        value = opt(name)
        return Path(value) if value else None

    return AccuracyOptions(path("convnextpose_h36m_root"), opt("convnextpose_protocol"),
                           opt("convnextpose_max_frames"), opt("convnextpose_flip_test"),
                           opt("convnextpose_h36m_bbox"), path("convnextpose_rootnet_file"),
                           opt("convnextpose_mpjpe_tolerance"), path("convnextpose_h36m_preds"),
                           opt("convnextpose_h36m_preds_variant"), path("convnextpose_h36m_results"),
                           opt("convnextpose_h36m_batch_size"), opt("convnextpose_h36m_workers"),
                           opt("convnextpose_h36m_preds_aligned"))


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RESULTS_KEY] = []
    opts = read_accuracy_options(config)
    if opts.preds is not None and opts.root is None:
        raise pytest.UsageError("--h36m-preds needs --h36m-root (the annotations to score against)")
    if opts.max_frames is not None and opts.max_frames <= 0:
        raise pytest.UsageError(f"--max-frames must be positive, got {opts.max_frames}")
    if opts.batch_size <= 0:
        raise pytest.UsageError(f"--h36m-batch-size must be positive, got {opts.batch_size}")
    if opts.workers is not None and opts.workers < 0:
        raise pytest.UsageError(f"--h36m-workers must be >= 0, got {opts.workers}")
    if opts.preds_aligned and (opts.preds is None or opts.protocol != 1):
        raise pytest.UsageError("--h36m-preds-aligned needs --h36m-preds FILE and --protocol 1 "
                                "(aligned poses have only a PA-MPJPE)")
    if opts.root is not None:
        _check_data_paths(opts)
    _keep_benchmark_storage_out_of_cwd(config)


def _check_data_paths(opts: AccuracyOptions) -> None:
    """The cheap checks (files exist, annotations are where the layout says); contents are read later."""
    from .h36m import H36MDataError, annotation_dir
    from .h36m.annotations import ROOTNET_FILE

    if not opts.root.is_dir():
        raise pytest.UsageError(f"--h36m-root {opts.root}: not a folder")
    try:
        annotation_dir(opts.root)
    except H36MDataError as exc:
        message = f"--h36m-root: {exc} (see docs/accuracy.md for the layout)"
        raise pytest.UsageError(message) from None
    if opts.preds is not None and not opts.preds.is_file():
        raise pytest.UsageError(f"--h36m-preds {opts.preds}: no such file")
    if opts.bbox_source == "rootnet":
        rootnet = opts.rootnet_file or opts.root / ROOTNET_FILE
        if not rootnet.is_file():
            raise pytest.UsageError(f"--h36m-bbox rootnet: RootNet file {rootnet} not found (pass --rootnet-file FILE)")


#: pytest-benchmark's default --benchmark-storage, and the options that read or write the storage
BENCHMARK_STORAGE_DEFAULT = "file://./.benchmarks"
BENCHMARK_STORAGE_USERS = ("benchmark_save", "benchmark_autosave", "benchmark_compare")


def _keep_benchmark_storage_out_of_cwd(config: pytest.Config) -> None:
    """pytest-benchmark makes its storage folder (`./.benchmarks`) when it configures, even when
    nothing will be saved there. For a run of the conformance suite that neither saves nor
    compares, point it at a temporary folder (removed at the end) so running the suite from
    any directory leaves nothing behind. Runs of other tests, and explicit settings, are left alone.
    (Runs before pytest-benchmark's own `pytest_configure`, which is `trylast`.)"""
    from .plugin_core import targets_conformance

    if getattr(config.option, "benchmark_storage", None) is None or not targets_conformance(config):
        return
    if any(config.getoption(name, None) for name in BENCHMARK_STORAGE_USERS):
        return
    if config.option.benchmark_storage != BENCHMARK_STORAGE_DEFAULT or option_given(config, "--benchmark-storage"):
        return
    directory = tempfile.mkdtemp(prefix="convnextpose-benchmarks-")
    config.add_cleanup(lambda: shutil.rmtree(directory, ignore_errors=True))
    config.option.benchmark_storage = "file://" + directory


@pytest.fixture(scope="session")
def h36m_options(pytestconfig: pytest.Config) -> AccuracyOptions:
    """The Human3.6M options of this run (`AccuracyOptions`)."""
    return read_accuracy_options(pytestconfig)


def record_result(config: pytest.Config, label: str, result: Any, verdict: Any) -> None:
    """Keep a result and its `h36m.gate.Verdict` for the terminal summary and write it where
    --h36m-results says."""
    from .h36m.gate import result_document

    config.stash[RESULTS_KEY].append((label, result, verdict.text))
    raw = config.getoption("convnextpose_h36m_results")
    if not raw:
        return
    target = Path(raw)
    doc = result_document(result, label, verdict)
    if target.is_dir() or raw.endswith(("/", "\\")):  # Path() drops the trailing slash
        target.mkdir(parents=True, exist_ok=True)
        out = target / f"{label}.json"
    else:
        out = target
        if out.exists() and len(config.stash[RESULTS_KEY]) > 1:
            out = target.with_name(f"{target.stem}-{label}{target.suffix}")
    out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    results = config.stash.get(RESULTS_KEY, [])
    if not results:
        return
    from .h36m.report import headline, per_action_line

    terminalreporter.section("Human3.6M accuracy")
    for label, res, verdict in results:
        terminalreporter.write_line(f"{label}: {headline(res)} -- {verdict}")
        terminalreporter.write_line(f"    per action: {per_action_line(res)}")


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Add torch, CUDA, cuDNN and GPU details to pytest-benchmark's machine info."""
    import torch

    info: dict[str, Any] = {"torch": torch.__version__, "cpu_threads": torch.get_num_threads(),
                            "python": platform.python_version()}
    if torch.cuda.is_available():
        idx = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(idx)
        info.update({"gpu": torch.cuda.get_device_name(idx), "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                     "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                     "driver": _nvidia_driver()})
    machine_info["convnextpose"] = info


def _nvidia_driver() -> Optional[str]:
    """The NVIDIA driver version, from the kernel module's proc file or nvidia-smi."""
    proc = Path("/proc/driver/nvidia/version")
    try:
        if proc.exists():
            line = proc.read_text().splitlines()[0]
            for word in line.split():
                if word.count(".") >= 1 and word.replace(".", "").isdigit():
                    return word
    except OSError:
        pass
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    if exe:
        try:
            out = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=10, check=False)
            return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None
        except (OSError, subprocess.SubprocessError):
            return None
    return None
