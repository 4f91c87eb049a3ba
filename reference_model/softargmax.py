"""Integral soft-argmax and the flip test, as in the authors' `soft_argmax` and tester.

Two formulations of the same function live here:

* `soft_argmax_reference` is the straight reading of docs/spec.md §1: softmax over D*H*W, reshape
  to the 5-D probability volume, sum it three ways. Easy to check by eye; it is the oracle
  the tests compare against.
* `soft_argmax` (the one the model uses) takes the same softmax, a few joint volumes at a
  time, and reads the three coordinates off two marginals of each volume: the plane
  (sum over depth) gives x and y, the depth profile (sum over the plane) gives z. Given
  the head's last upsampling module (`upsample=`), it applies it per chunk too, so the
  full-size heatmap of M/L (B x 18 x 64 x 64 x 64 floats, 151 MB at batch 8) never
  exists: each chunk (about 2 MiB: two 1 MiB volumes of L) is made, normalised and summed
  while it sits in the cores' caches, instead of five passes over main memory. A chunk holds
  at least one volume per thread (but an image's last), because PyTorch's softmax kernel splits
  its work by rows (volumes) only: one volume at a time ran on one core. See docs/accuracy.md, "Fast forward".

`F.softmax`, not `exp`: PyTorch's vectorised `exp` takes a slow path (measured 10-35x)
for inputs below about -87, and sharp heads (logits of +-200) put nearly every voxel
there once the maximum is subtracted; the softmax kernel slows down far less (about 1.5x).
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F


def _check_channels(heatmaps: torch.Tensor, joint_num: int, depth_dim: int) -> None:
    if heatmaps.dim() != 4:
        raise ValueError(f"heatmaps must be (B, J*D, H, W), got shape {tuple(heatmaps.shape)}")
    if heatmaps.shape[1] != joint_num * depth_dim:
        raise ValueError(f"heatmap has {heatmaps.shape[1]} channels, expected joint_num*depth_dim = "
                         f"{joint_num}*{depth_dim}")


def soft_argmax_reference(heatmaps: torch.Tensor, joint_num: int, depth_dim: int) -> torch.Tensor:
    """(B, J*D, H, W) -> (B, J, 3), the straight formulation (materialises the 5-D softmax).

    The softmax is taken jointly over D*H*W per joint; each coordinate is the expectation
    of its index under that distribution, in heatmap units (0..W-1, 0..H-1, 0..D-1).
    """
    _check_channels(heatmaps, joint_num, depth_dim)
    b, _, h, w = heatmaps.shape
    p = F.softmax(heatmaps.reshape(b, joint_num, depth_dim * h * w), dim=2)
    return expected_indices(p.reshape(b, joint_num, depth_dim, h, w))


def expected_indices(p: torch.Tensor) -> torch.Tensor:
    """Probability volumes (B, J, D, H, W) -> (B, J, 3): the expectation of each index (x from W,
    y from H, z from D), summed the way the authors' code sums them.

    Public so that code reproducing a *wrong* softmax (the diagnosis of a port's mistakes) reads
    the coordinates off its volumes exactly as the reference does."""
    _, _, d, h, w = p.shape
    dt, dev = p.dtype, p.device
    x = (p.sum(dim=(2, 3)) * torch.arange(w, dtype=dt, device=dev)).sum(dim=2)
    y = (p.sum(dim=(2, 4)) * torch.arange(h, dtype=dt, device=dev)).sum(dim=2)
    z = (p.sum(dim=(3, 4)) * torch.arange(d, dtype=dt, device=dev)).sum(dim=2)
    return torch.stack((x, y, z), dim=2)


def _marginals(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logit volumes (n, D, H, W) -> probability marginals: plane (n, H, W) and depth (n, D).

    The softmax runs over each volume's D*H*W values in memory order, whatever the
    layout (a sum does not care about order), so channels-last input is not transposed.
    """
    n, d, h, w = logits.shape
    if logits.stride(1) == 1 and d > 1:  # channels innermost: channels-last, or a channel slice of it
        # reshape copies only for a slice, gathering D adjacent values per pixel (no transpose)
        p = F.softmax(logits.permute(0, 2, 3, 1).reshape(n, -1), dim=1).view(n, h, w, d)
        return p.sum(dim=3), p.sum(dim=(1, 2))
    p = F.softmax(logits.reshape(n, -1), dim=1).view(n, d, h, w)
    return p.sum(dim=1), p.sum(dim=(2, 3))


def _expectations(plane: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """Marginals (n, H, W) and (n, D) of normalised volumes -> (n, 3) expected (x, y, z) indices."""
    def idx(n: int) -> torch.Tensor:
        return torch.arange(n, dtype=plane.dtype, device=plane.device)
    x = plane.sum(dim=1) @ idx(plane.shape[2])
    y = plane.sum(dim=2) @ idx(plane.shape[1])
    z = depth @ idx(depth.shape[1])
    return torch.stack((x, y, z), dim=1)


def soft_argmax(heatmaps: torch.Tensor, joint_num: int, depth_dim: int, *,
                upsample: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> torch.Tensor:
    """(B, J*D, h, w) -> (B, J, 3): the function of `soft_argmax_reference`, chunk by chunk.

    `upsample`, when given, is the head's last upsampling (a module that treats each channel
    alone, like `nn.UpsamplingBilinear2d`), still to be applied to `heatmaps`: the result is
    the soft-argmax of `upsample(heatmaps)`. On CPU one image's volumes go a chunk at a time
    (`volumes_per_chunk`), upsampled on a channels-last copy (PyTorch's CPU bilinear kernel is
    about 20x faster on that layout, same values), so the work stays in cache and no tensor
    larger than a chunk is made; on other devices they go in one batch, to keep kernel launches few.
    Any memory format; autograd works through both.
    """
    _check_channels(heatmaps, joint_num, depth_dim)
    if heatmaps.shape[0] == 0:  # as the straight formulation: no images, no coordinates
        return heatmaps.new_zeros((0, joint_num, 3))
    schedule = _per_chunk if heatmaps.device.type == "cpu" else _batched
    return schedule(heatmaps, joint_num, depth_dim, upsample)


#: about how much upsampled heatmap one CPU chunk holds: the two cores' L2 caches of the machines
#: this was tuned on (2 x 1 MiB); L at batch 8 was 2x faster with 2-4 volumes a chunk than with 1
#: (one core busy) or with a whole image's 18 (out of cache)
CHUNK_BYTES = 2 << 20


def volumes_per_chunk(joint_num: int, volume_bytes: int, threads: int) -> int:
    """How many of one image's joint volumes go through the CPU schedule together: enough to fill
    `CHUNK_BYTES`, and at least one per thread (the softmax kernel parallelises over volumes only;
    an image's last chunk may be smaller). When the size sets the count, it is evened out so the
    image's joints split into near-equal chunks (XS: 16 fit, 2 chunks of 9 rather than 16 + 2)."""
    k = min(joint_num, max(threads, CHUNK_BYTES // max(volume_bytes, 1), 1))
    even = -(-joint_num // -(-joint_num // k))
    return even if even >= min(threads, joint_num) else k


def _per_chunk(heatmaps: torch.Tensor, joint_num: int, depth_dim: int,
               upsample: Optional[Callable[[torch.Tensor], torch.Tensor]]) -> torch.Tensor:
    b, _, h, w = heatmaps.shape
    scale = 4 if upsample is not None else 1  # a bilinear x2 makes 4x the pixels
    k = volumes_per_chunk(joint_num, depth_dim * h * w * scale * heatmaps.element_size(), torch.get_num_threads())
    volumes = heatmaps.unflatten(1, (joint_num, depth_dim))  # (B, J, D, h, w), a view in any layout
    planes, depths = [], []
    for i in range(b):
        for j in range(0, joint_num, k):
            chunk = volumes[i, j:j + k]  # (k, D, h, w)
            if upsample is not None:  # made here, summed below, dropped before the next chunk
                chunk = upsample(chunk.contiguous(memory_format=torch.channels_last))
            plane, depth = _marginals(chunk)
            planes.append(plane)
            depths.append(depth)
    return _expectations(torch.cat(planes), torch.cat(depths)).view(b, joint_num, 3)


def _batched(heatmaps: torch.Tensor, joint_num: int, depth_dim: int,
             upsample: Optional[Callable[[torch.Tensor], torch.Tensor]]) -> torch.Tensor:
    full = upsample(heatmaps) if upsample is not None else heatmaps
    b, _, h, w = full.shape
    plane, depth = _marginals(full.reshape(b * joint_num, depth_dim, h, w))
    return _expectations(plane, depth).view(b, joint_num, 3)


def flip_back(coords: torch.Tensor, heatmap_width: int, flip_pairs: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Map coordinates predicted on a horizontally flipped image back: x -> W-1-x, swap pairs."""
    out = coords.clone()
    out[:, :, 0] = heatmap_width - 1 - coords[:, :, 0]
    for a, b in flip_pairs:
        out[:, a, :] = coords[:, b, :]
        out[:, b, :] = coords[:, a, :]
        out[:, a, 0] = heatmap_width - 1 - coords[:, b, 0]
        out[:, b, 0] = heatmap_width - 1 - coords[:, a, 0]
    return out


def flip_test(model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, heatmap_width: int,
              flip_pairs: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Average the prediction with that of the horizontally flipped image (authors' tester)."""
    coords = model(images)
    flipped = model(torch.flip(images, dims=(3,)))
    return (coords + flip_back(flipped, heatmap_width, flip_pairs)) / 2.0
