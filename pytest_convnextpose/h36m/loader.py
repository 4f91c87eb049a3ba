"""Feeding the network at the machine's speed: decode and crop in `DataLoader` workers.

Each item of `CropBatches` is one whole batch of uint8 RGB patches (the warped bytes),
built by a worker straight into a shared-memory tensor (no per-image collation, no copy
on the way back). The main process normalises it on the device (`geometry.normalise`:
the same float32 values, a quarter of the bytes to move) and runs the network while the
workers read and crop the next batches (`prefetch_factor` batches each); on CUDA the
batches come in pinned memory so the copy to the device is asynchronous.

Workers are forked and never touch OpenCV's thread pool: a 256x256 warp is one stripe, which
`parallel_for_` runs inline, and JPEG decoding is single-threaded. (Reconfiguring the pool in
a forked child, e.g. `cv2.setNumThreads(1)`, can deadlock on state copied from the parent.)

A worker that meets bad data returns the one-line message instead of raising, so the main
process raises `H36MDataError` with that line (a worker's exception would reach the user as
torch's multi-line "Caught ... in DataLoader worker process" wrapper).
"""
from __future__ import annotations

import math
import os
from typing import Iterator, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from .annotations import H36MDataError, Sample
from .geometry import INPUT_SHAPE
from .images import opencv, patch_rgb

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
    """Item `b`: `(b, patches, error)`, patches `(n, 256, 256, 3)` uint8 RGB of samples
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
        out = _empty_batch((len(chunk), *INPUT_SHAPE, 3), shared=get_worker_info() is not None)
        view = out.numpy()
        try:
            for k, sample in enumerate(chunk):
                patch_rgb(sample.image_path, sample.bbox, view[k])
        except H36MDataError as exc:
            return b, None, str(exc)
        return b, out, None


def _empty_batch(shape: tuple[int, ...], *, shared: bool) -> torch.Tensor:
    """uint8 tensor; in a worker, allocated in shared memory and filled in place, so the trip to
    the main process copies nothing (`share_memory_()` on a filled tensor would copy it: 2-3x
    the cost; torch's own collate allocates the same way)."""
    if not shared:
        return torch.empty(shape, dtype=torch.uint8)
    storage = torch.UntypedStorage._new_shared(math.prod(shape))
    return torch.empty(0, dtype=torch.uint8).set_(storage, 0, shape)


def _init_worker(_: int) -> None:
    """Let this worker's malloc keep image-sized blocks. glibc serves blocks above its mmap
    threshold (128 KiB at start) with fresh mmaps, so every decoded 1000x1000 image (3 MB)
    would cost ~750 page faults; freeing one mmapped block raises the threshold to its size,
    after which such blocks are reused from the heap (mallopt(3), dynamic threshold). A
    short-lived 16 MiB block does that once. (Elsewhere: a harmless allocation.)"""
    del _
    bytearray(16 << 20)


def input_batches(samples: Sequence[Sample], batch_size: int, *, workers: int,
                  pin_memory: bool = False) -> Iterator[torch.Tensor]:
    """uint8 RGB patch batches `(n, 256, 256, 3)` of `samples`, in order (`geometry.normalise`
    makes them network inputs); `workers=0` reads in this process."""
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    dataset = CropBatches(samples, batch_size)
    if workers:
        opencv()  # imported once here, not once per forked worker (a second of CPU each)
    loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=min(workers, len(dataset)),
                        pin_memory=pin_memory, worker_init_fn=_init_worker if workers else None)
    for _, images, error in loader:
        if error is not None:
            raise H36MDataError(error)
        yield images
