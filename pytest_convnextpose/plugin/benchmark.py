"""pytest sub-plugin: pytest-benchmark integration for the latency tests (`conformance/test_latency.py`).

Three jobs: add torch, CUDA, cuDNN and GPU details to pytest-benchmark's machine info; keep its
storage out of the user's folder in any run that neither saves nor compares (`--benchmark-save`,
`--benchmark-autosave`, `--benchmark-compare`, `--benchmark-storage`): pytest-benchmark creates
`./.benchmarks` when it configures, even when nothing will be saved there; and keep its xdist
warning out of the suite's progress line.
"""
from __future__ import annotations

import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

import pytest

from .options import option_given


# A plain hook: after the core's tryfirst configure (which points a path-less `--ckpt` run at the
# suite, so `targets_conformance` holds), before pytest-benchmark's own (trylast) reads its options.
def pytest_configure(config: pytest.Config) -> None:
    _keep_benchmark_storage_out_of_cwd(config)
    _quiet_under_xdist(config)


def _quiet_under_xdist(config: pytest.Config) -> None:
    """Under pytest-xdist pytest-benchmark disables itself anyway, but says so with a warning that
    lands in the middle of the progress line. For a run of the suite, disable it up front (the
    latency tests then run once each and say why in their skip-free output); explicit
    `--benchmark-enable` / `--benchmark-only` are left to pytest-benchmark to refuse."""
    from .core import targets_conformance

    # `-n N` alone: xdist fills in --dist only in its own configure, after this one
    workers = config.getoption("numprocesses", None)
    xdist = workers not in (None, 0) or config.getoption("dist", "no") != "no" or os.environ.get("PYTEST_XDIST_WORKER")
    if not xdist or getattr(config.option, "benchmark_disable", None) is None or not targets_conformance(config):
        return
    if not (config.getoption("benchmark_enable", False) or config.getoption("benchmark_only", False)):
        config.option.benchmark_disable = True


#: pytest-benchmark's default --benchmark-storage, and the options that read or write the storage
BENCHMARK_STORAGE_DEFAULT = "file://./.benchmarks"
BENCHMARK_STORAGE_USERS = ("benchmark_save", "benchmark_autosave", "benchmark_compare")


def _keep_benchmark_storage_out_of_cwd(config: pytest.Config) -> None:
    """pytest-benchmark makes its storage folder (`./.benchmarks`) when it configures, even when
    nothing will be saved there; it is installed because of us, so without this every pytest run
    in a user's unrelated project would leave that folder behind. A run that neither saves nor
    compares never reads the storage, so it is pointed at a temporary folder removed at the end.
    Runs that save or compare, and explicit `--benchmark-storage`, are left alone."""
    if getattr(config.option, "benchmark_storage", None) is None:
        return
    if any(config.getoption(name, None) for name in BENCHMARK_STORAGE_USERS):
        return
    if config.option.benchmark_storage != BENCHMARK_STORAGE_DEFAULT or option_given(config, "--benchmark-storage"):
        return
    directory = tempfile.mkdtemp(prefix="convnextpose-benchmarks-")
    config.add_cleanup(lambda: shutil.rmtree(directory, ignore_errors=True))
    config.option.benchmark_storage = "file://" + directory


@pytest.hookimpl(optionalhook=True)
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
