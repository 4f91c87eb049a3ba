"""Sharded evaluation under `torchrun` (torch.distributed, any backend: gloo on CPU, NCCL on GPUs).

Each rank takes a contiguous run of *whole batches* of the ordered test frames, so every
frame goes through the network in exactly the batch it would be in with one process: the
outputs, and so every figure, are the ones a single process computes (the same kernels
see the same inputs). The outputs are gathered (all_gather: rank 0 writes and prints, the
others get the same result for free) and put back in frame order by concatenating the
ranks' shares in rank order.

A data error on one rank is not raised there alone (the others would wait for it in the
gather): every rank finishes its share, the errors are exchanged first, and all ranks
raise the first one.
"""
from __future__ import annotations

from typing import Optional

import torch


def process_group() -> tuple[int, int]:
    """(rank, world size) of the initialised default process group; (0, 1) without one."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard_bounds(num_items: int, batch_size: int, rank: int, world: int) -> tuple[int, int]:
    """Items `[lo, hi)` of `rank`: whole batches, contiguous, in rank order, sizes differing by
    at most one batch; the shares of ranks 0..world-1 tile `[0, num_items)` exactly."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside a world of {world}")
    batches = -(-num_items // batch_size)
    per, extra = divmod(batches, world)
    first = rank * per + min(rank, extra)
    last = first + per + (1 if rank < extra else 0)
    return min(first * batch_size, num_items), min(last * batch_size, num_items)


def share_sizes(num_items: int, batch_size: int, world: int) -> list[int]:
    return [hi - lo for lo, hi in (shard_bounds(num_items, batch_size, r, world) for r in range(world))]


def gather_outputs(local: torch.Tensor, sizes: list[int], error: Optional[str]) -> tuple[torch.Tensor, Optional[str]]:
    """All ranks' `(n_r, J, 3)` outputs concatenated in rank order, and the first rank's data
    error (None when every rank succeeded; the outputs are then meaningless)."""
    dist = torch.distributed
    status: list = [None] * dist.get_world_size()
    joints = local.shape[1] if local.ndim == 3 and local.shape[0] else 0
    dist.all_gather_object(status, (error, joints))
    errors = [e for e, _ in status if e]
    if errors:
        return local, errors[0]
    joints = max(j for _, j in status)
    # NCCL gathers device tensors; gloo gathers CPU tensors
    device = local.device if dist.get_backend() == "nccl" else torch.device("cpu")
    padded = torch.zeros((max(sizes), joints, 3), dtype=torch.float32, device=device)
    if local.shape[0]:
        padded[:local.shape[0]] = local.to(device=device, dtype=torch.float32)
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[:n] for p, n in zip(parts, sizes)]), None
