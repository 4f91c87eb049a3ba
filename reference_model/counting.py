"""Parameter, state and conv-MAC counts computed from an `ArchSpec` alone (no model built).

These are closed-form counts of the architecture, written independently of `model.py`,
so the tests can check the built model against them and both against docs/spec.md §2.
"""

from __future__ import annotations

from .spec import ArchSpec


def _conv_params(c_in: int, c_out: int, k: int, groups: int = 1) -> int:
    return c_out * (c_in // groups) * k * k + c_out  # weight + bias


def _bn_params(c: int) -> int:
    return 2 * c  # weight + bias (learnable)


def _bn_buffers(c: int) -> int:
    return 2 * c + 1  # running_mean + running_var + num_batches_tracked


def _bn_channels(spec: ArchSpec) -> list[int]:
    d = spec.dims
    chans = [d[0]] + [d[i] for i in range(3)]  # stem BN + the BN opening each downsampler
    for i in range(4):
        chans += [d[i]] * spec.depths[i]
    chans.append(d[-1])  # final backbone norm
    chans += [d[-1], *spec.head_channels[:-1]]  # head BN on each layer's input channels
    return chans


def count_parameters(spec: ArchSpec) -> int:
    """Learnable parameters (BatchNorm running statistics excluded)."""
    d = spec.dims
    n = _conv_params(3, d[0], 4)
    n += sum(_conv_params(d[i], d[i + 1], 2) for i in range(3))
    for i in range(4):
        per_block = (
            _conv_params(d[i], d[i], 7, groups=d[i]) + _conv_params(d[i], 4 * d[i], 1) + _conv_params(4 * d[i], d[i], 1)
        )
        n += spec.depths[i] * per_block
    c_in = d[-1]
    for c_out, k in zip(spec.head_channels, spec.head_kernels):
        n += _conv_params(c_in, c_in, k, groups=c_in) + _conv_params(c_in, c_out, 1)
        c_in = c_out
    n += _conv_params(c_in, spec.joint_num * spec.depth_dim, 1)
    n += sum(_bn_params(c) for c in _bn_channels(spec))
    return n


def count_state_values(spec: ArchSpec) -> int:
    """All values in the state dict: parameters plus BatchNorm buffers."""
    return count_parameters(spec) + sum(_bn_buffers(c) for c in _bn_channels(spec))


def count_conv_macs(spec: ArchSpec, input_size: tuple[int, int] = (256, 256)) -> int:
    """Multiply-accumulates of all convolutions (bias, BN, activations, upsampling excluded)."""
    h, w = input_size
    d = spec.dims

    def macs(c_in: int, c_out: int, k: int, oh: int, ow: int, groups: int = 1) -> int:
        return oh * ow * c_out * (c_in // groups) * k * k

    h, w = h // 4, w // 4
    total = macs(3, d[0], 4, h, w)
    for i in range(4):
        if i > 0:
            h, w = h // 2, w // 2
            total += macs(d[i - 1], d[i], 2, h, w)
        per_block = (
            macs(d[i], d[i], 7, h, w, groups=d[i]) + macs(d[i], 4 * d[i], 1, h, w) + macs(4 * d[i], d[i], 1, h, w)
        )
        total += spec.depths[i] * per_block
    c_in = d[-1]
    for c_out, k, up in zip(spec.head_channels, spec.head_kernels, spec.head_upsample):
        total += macs(c_in, c_in, k, h, w, groups=c_in) + macs(c_in, c_out, 1, h, w)
        if up:
            h, w = h * 2, w * 2
        c_in = c_out
    total += macs(c_in, spec.joint_num * spec.depth_dim, 1, h, w)
    return total


def count_gmac(spec: ArchSpec, input_size: tuple[int, int] = (256, 256)) -> float:
    return count_conv_macs(spec, input_size) / 1e9
