"""Integral soft-argmax and the flip test, as in the authors' `soft_argmax` and tester."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F


def soft_argmax(heatmaps: torch.Tensor, joint_num: int, depth_dim: int) -> torch.Tensor:
    """(B, J*D, H, W) -> (B, J, 3) with x from width, y from height, z from depth.

    The softmax is taken jointly over D*H*W per joint; each coordinate is the expectation
    of its index under that distribution, in heatmap units (0..W-1, 0..H-1, 0..D-1).
    """
    b, c, h, w = heatmaps.shape
    if c != joint_num * depth_dim:
        raise ValueError(f"heatmap has {c} channels, expected joint_num*depth_dim = {joint_num}*{depth_dim}")
    p = F.softmax(heatmaps.reshape(b, joint_num, depth_dim * h * w), dim=2)
    p = p.reshape(b, joint_num, depth_dim, h, w)
    dt, dev = p.dtype, p.device
    x = (p.sum(dim=(2, 3)) * torch.arange(w, dtype=dt, device=dev)).sum(dim=2)
    y = (p.sum(dim=(2, 4)) * torch.arange(h, dtype=dt, device=dev)).sum(dim=2)
    z = (p.sum(dim=(3, 4)) * torch.arange(depth_dim, dtype=dt, device=dev)).sum(dim=2)
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
