"""Integral soft-argmax and the flip test, as in the authors' `soft_argmax` and tester.

Two formulations of the same function live here:

* `soft_argmax_reference` is the straight reading of docs/spec.md §1: softmax over D*H*W, reshape
  to the 5-D probability volume, sum it three ways. Easy to check by eye; it is what the
  tests compare against.
* `soft_argmax` (the one the model uses) never builds the normalised 5-D volume. The
  expectation of an index only needs the *marginals* of the distribution, and those
  can be taken from the unnormalised exponentials `e = exp(h - max)`:
  `x = sum_w w * sum_{d,h} e / sum e`. That is one max-reduction, one exp and two
  sum-reductions instead of softmax (max, exp, sum, divide) plus three full sums. On
  CPU each pass over a 64x64x64x18 volume also pays for fresh pages, so fewer passes
  and fewer temporaries is most of the gain (see docs/accuracy.md, "Fast forward").
  It works on any memory format (NCHW or channels-last) without a copy.
"""
from __future__ import annotations

from typing import Callable, Sequence

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
    p = p.reshape(b, joint_num, depth_dim, h, w)
    dt, dev = p.dtype, p.device
    x = (p.sum(dim=(2, 3)) * torch.arange(w, dtype=dt, device=dev)).sum(dim=2)
    y = (p.sum(dim=(2, 4)) * torch.arange(h, dtype=dt, device=dev)).sum(dim=2)
    z = (p.sum(dim=(3, 4)) * torch.arange(depth_dim, dtype=dt, device=dev)).sum(dim=2)
    return torch.stack((x, y, z), dim=2)


def _expectation(marginal: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """E[index] for an unnormalised marginal (..., n) with normaliser `total` (...)."""
    idx = torch.arange(marginal.shape[-1], dtype=marginal.dtype, device=marginal.device)
    return (marginal * idx).sum(dim=-1) / total


def _marginals(vol: torch.Tensor, inplace: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (n, J, D, H, W) -> unnormalised marginals (n, J, H, W) and (n, J, D).

    The exponentials are shifted by each joint's maximum, as softmax does, so they stay
    in (0, 1]. With `inplace` they overwrite `vol` instead of a new tensor.
    """
    peak = vol.amax(dim=(2, 3, 4), keepdim=True)
    e = vol.sub_(peak).exp_() if inplace else (vol - peak).exp_()
    return e.sum(dim=2), e.sum(dim=(3, 4))


def soft_argmax(heatmaps: torch.Tensor, joint_num: int, depth_dim: int, *, inplace: bool = False) -> torch.Tensor:
    """(B, J*D, H, W) -> (B, J, 3): same function as `soft_argmax_reference`, via marginals.

    On CPU it works sample by sample, so the one temporary is a single sample's volume
    (reused by the allocator, where a whole batch's would cost fresh pages every call);
    on other devices the batch goes in one piece to keep kernel launches few.
    `inplace=True` lets a caller hand over a heatmap it no longer needs, so not even that
    temporary is made; it is ignored when autograd would need the original values. Any
    memory format is read without a copy.
    """
    _check_channels(heatmaps, joint_num, depth_dim)
    inplace = inplace and not (torch.is_grad_enabled() and heatmaps.requires_grad)
    # (B, J, D, H, W) as a view: splitting the channel axis needs no copy in either memory format.
    vols = heatmaps.unflatten(1, (joint_num, depth_dim))
    chunks = vols.split(1) if vols.device.type == "cpu" else (vols,)
    planes, depths = zip(*(_marginals(chunk, inplace) for chunk in chunks))
    plane, depth = torch.cat(planes), torch.cat(depths)  # (B, J, H, W), (B, J, D)
    total = depth.sum(dim=2)  # (B, J)
    x = _expectation(plane.sum(dim=2), total)
    y = _expectation(plane.sum(dim=3), total)
    z = _expectation(depth, total)
    return torch.stack((x, y, z), dim=2)


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
