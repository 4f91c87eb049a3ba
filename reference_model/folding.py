"""BatchNorm folded into its neighbouring convolution, at eval time.

In eval mode BatchNorm is a per-channel affine map, `bn(v) = v * s + t` with
`s = gamma / sqrt(running_var + eps)` and `t = beta - running_mean * s`, so it can be
merged into the convolution next to it: one pass over the activations instead of two,
and one rounding fewer. The merged weights are recomputed on every call from the
module's own parameters and buffers, as ordinary differentiable tensor operations
(torch.nn.utils.fusion returns new leaf Parameters, which would cut gradients off): no
cache that could go stale after `load_state_dict`, an optimizer step, `.to()` or a
write through `.data`. That costs about 1 ms of CPU per forward for L (25 small folds).
In training mode BatchNorm normalises with batch statistics and updates its running
ones, so nothing is folded and the modules run as they are.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def uses_batch_statistics(bn: nn.Module) -> bool:
    """True when `bn` normalises with the statistics of the batch in hand: in training mode, or
    without running statistics at all (`track_running_stats=False`). Such a BatchNorm cannot be
    folded, and the batch it sees must not be split."""
    return bn.training or getattr(bn, "running_var", None) is None


def _affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as (scale, shift) per channel."""
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def _conv(x: torch.Tensor, conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def conv_bn(x: torch.Tensor, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> torch.Tensor:
    """`bn(conv(x))`; in eval mode one convolution with BN's scale and shift folded in."""
    if uses_batch_statistics(bn):
        return bn(conv(x))
    scale, shift = _affine(bn)
    return _conv(x, conv, conv.weight * scale.reshape(-1, 1, 1, 1), conv.bias * scale + shift)


def bn_conv(x: torch.Tensor, bn: nn.BatchNorm2d, conv: nn.Conv2d) -> torch.Tensor:
    """`conv(bn(x))` for an unpadded convolution (the downsamplers); folded in eval mode.

    Exact only without padding: a padded border would see zeros where `bn` gives `shift`.
    """
    if uses_batch_statistics(bn) or any(conv.padding):
        return conv(bn(x))
    scale, shift = _affine(bn)
    weight = conv.weight * scale.reshape(1, -1, 1, 1)
    # the shift, constant over the unpadded input, adds sum over (in, kh, kw) of weight * shift[in]
    return _conv(x, conv, weight, conv.bias + conv.weight.sum(dim=(2, 3)) @ shift)
