"""Feeding the network at the machine's speed: decode and crop in `DataLoader` workers.

Each item of `CropBatches` is one whole batch of normalised inputs, built by a worker
straight into a shared-memory tensor (no per-image collation, no copy on the way back).
The main process only runs the network while the workers read and crop the next batches
(`prefetch_factor` batches each); on CUDA the batches come in pinned memory so the copy to
the device is asynchronous.

Workers are forked and never touch OpenCV's thread pool: a 256x256 warp is one stripe, which
`parallel_for_` runs inline, and JPEG decoding is single-threaded. (Reconfiguring the pool in
a forked child, e.g. `cv2.setNumThreads(1)`, can deadlock on state copied from the parent.)

A worker that meets bad data returns the one-line message instead of raising, so the main
process raises `H36MDataError` with that line (a worker's exception would reach the user as
torch's multi-line "Caught ... in DataLoader worker process" wrapper).
"""
from __future__ import annotations

import os
from typing import Iterator, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from .annotations import H36MDataError, Sample
from .geometry import INPUT_SHAPE
from .images import network_input

#: default workers never exceed this (beyond it a GPU is fed anyway, and each worker costs memory)
MAX_DEFAULT_WORKERS = 32
#: environment variables naming how many processes share this machine's CPUs
#: (torchrun's processes per node, pytest-xdist's workers)
CPU_SHARERS = ("LOCAL_WORLD_SIZE", "PYTEST_XDIST_WORKER_COUNT")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers() -> int:
    """One decoding worker per CPU this process may use, shared fairly with the other processes
    of a torchrun node or a pytest-xdist run; at least 1, at most `MAX_DEFAULT_WORKERS`.

    JPEG decoding is the bottleneck (several ms a frame against a fraction of a ms for the
    crop), so the right number is as many as there are cores to decode on."""
    sharers = 1
    for name in CPU_SHARERS:
        try:
            sharers = max(sharers, int(os.environ.get(name, "1")))
        except ValueError:
            continue
    return max(1, min(MAX_DEFAULT_WORKERS, available_cpus() // sharers))


class CropBatches(Dataset):
    """Item `b`: `(b, inputs, error)`, inputs `(n, 3, 256, 256)` float32 of samples
    `[b * batch_size, (b + 1) * batch_size)`; on bad data `(b, None, message)`."""

    def __init__(self, samples: Sequence[Sample], batch_size: int) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        self.samples = samples
        self.batch_size = batch_size

    def __len__(self) -> int:
        return -(-len(self.samples) // self.batch_size)

    def __getitem__(self, b: int) -> tuple[int, Optional[torch.Tensor], Optional[str]]:
        chunk = self.samples[b * self.batch_size:(b + 1) * self.batch_size]
        out = torch.empty((len(chunk), 3, *INPUT_SHAPE), dtype=torch.float32)
        if get_worker_info() is not None:
            out.share_memory_()  # filled in place: the trip to the main process copies nothing
        view = out.numpy()
        try:
            for k, sample in enumerate(chunk):
                view[k] = network_input(sample.image_path, sample.bbox)
        except H36MDataError as exc:
            return b, None, str(exc)
        return b, out, None


def input_batches(samples: Sequence[Sample], batch_size: int, *, workers: int,
                  pin_memory: bool = False) -> Iterator[torch.Tensor]:
    """Normalised input batches of `samples` in order; `workers=0` reads in this process."""
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    dataset = CropBatches(samples, batch_size)
    loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=min(workers, len(dataset)),
                        pin_memory=pin_memory)
    for _, images, error in loader:
        if error is not None:
            raise H36MDataError(error)
        yield images
