"""The ConvNeXtPose network, built from an `ArchSpec` with no global configuration.

Module names follow the authors' code (`backbone.downsample_layers`, `backbone.stages`,
`head.deconv_layers_N`, `head.final_layer`) so the canonical state dict loads strictly.
Computation matches the authors' `main/model.py` and `common/nets/convnext_bn.py`:
BatchNorm (not LayerNorm), no layer scale, ReLU, bilinear upsampling with
`align_corners=True`, and a softmax taken jointly over depth x height x width.
"""
from __future__ import annotations

import torch
from torch import nn

from .softargmax import soft_argmax
from .spec import ArchSpec


class Block(nn.Module):
    """ConvNeXt-BN block: dwconv 7x7 -> BN -> 1x1 (d->4d) -> ReLU -> 1x1 (4d->d) -> residual."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.BatchNorm2d(dim)
        self.pwconv1 = nn.Conv2d(dim, 4 * dim, kernel_size=1)
        self.act = nn.ReLU(inplace=True)  # on a fresh conv output: saves an allocation
        self.pwconv2 = nn.Conv2d(4 * dim, dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # y.add_(x) == x + y bit for bit, without allocating another activation-sized tensor
        return self.pwconv2(self.act(self.pwconv1(self.norm(self.dwconv(x))))).add_(x)


class ConvNeXtBN(nn.Module):
    """Backbone: 4x4/4 stem + BN, three BN + 2x2/2 downsamplers, four stages, final BN."""

    def __init__(self, depths: tuple[int, ...], dims: tuple[int, ...], in_chans: int = 3) -> None:
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(in_chans, dims[0], kernel_size=4, stride=4), nn.BatchNorm2d(dims[0]))]
        )
        for i in range(3):
            self.downsample_layers.append(
                nn.Sequential(nn.BatchNorm2d(dims[i]), nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2))
            )
        self.stages = nn.ModuleList(
            [nn.Sequential(*[Block(dims[i]) for _ in range(depths[i])]) for i in range(4)]
        )
        self.norm = nn.BatchNorm2d(dims[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.norm(x)


class DeConv(nn.Module):
    """Head layer: depthwise kxk -> BN(C_in) -> 1x1 (C_in->C_out) -> ReLU -> optional bilinear x2."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, upsample: bool) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(in_ch, in_ch, kernel_size=kernel, padding=kernel // 2, groups=in_ch)
        self.norm = nn.BatchNorm2d(in_ch)
        self.pwconv = nn.Conv2d(in_ch, out_ch, kernel_size=1)
        self.act = nn.ReLU(inplace=True)  # on a fresh conv output: saves an allocation
        # UpsamplingBilinear2d is bilinear with align_corners=True, as in the authors' code.
        self.upsample = nn.UpsamplingBilinear2d(scale_factor=2) if upsample else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.features(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Everything but the upsampling (so the head can move a 1x1 conv before it)."""
        return self.act(self.pwconv(self.norm(self.dwconv(x))))


class HeadNet(nn.Module):
    """`deconv_layers_1..n` then `final_layer` (1x1 conv to joint_num * depth_dim channels)."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        in_ch = spec.dims[-1]
        self.num_layers = spec.num_head_layers
        for i, (ch, k, up) in enumerate(zip(spec.head_channels, spec.head_kernels, spec.head_upsample), start=1):
            self.add_module(f"deconv_layers_{i}", DeConv(in_ch, ch, k, up))
            in_ch = ch
        self.final_layer = nn.Conv2d(in_ch, spec.joint_num * spec.depth_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Head output; for speed it may come back channels-last (same values, see `heatmaps`)."""
        return self.finish(self.pre_upsample(x))

    def pre_upsample(self, x: torch.Tensor) -> torch.Tensor:
        """Everything up to the last layer's upsampling, which `finish` does.

        final_layer(upsample(f)) == upsample(final_layer(f)): a 1x1 conv acts on each pixel
        alone and bilinear upsampling mixes pixels with weights summing to 1, so the two
        commute exactly (bias included). Convolving first does the largest layer of M/L
        at 1/4 of the pixels; the result differs from the other order only by rounding.
        """
        for i in range(1, self.num_layers):
            layer = getattr(self, f"deconv_layers_{i}")
            x = _upsample(layer, layer.features(x), keep_channels_last=False)
        return self.final_layer(getattr(self, f"deconv_layers_{self.num_layers}").features(x))

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """The last layer's upsampling (if any) of `pre_upsample`'s output: the heatmap."""
        return _upsample(getattr(self, f"deconv_layers_{self.num_layers}"), x, keep_channels_last=True)


def _upsample(layer: DeConv, x: torch.Tensor, keep_channels_last: bool) -> torch.Tensor:
    """`layer.upsample(x)`, run on a channels-last copy of `x`.

    PyTorch's CPU bilinear kernel is several times faster on channels-last tensors and
    gives bit-identical values (it is per channel). The convolutions stay NCHW: their
    channels-last kernels round measurably worse (about 2x the float32 error against a
    float64 evaluation of the golden cases), so the output goes back to NCHW unless the
    caller (the soft-argmax, which reads any layout) takes it as it is.
    """
    if isinstance(layer.upsample, nn.Identity):
        return x
    out = layer.upsample(x.contiguous(memory_format=torch.channels_last))
    return out if keep_channels_last else out.contiguous()


class ConvNeXtPose(nn.Module):
    """Images (B, 3, H, W), H and W divisible by 32 -> coordinates (B, J, 3) in heatmap units."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        self.backbone = ConvNeXtBN(spec.depths, spec.dims)
        self.head = HeadNet(spec)

    def heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """Raw head output (B, J*D, H/32*f, W/32*f) before the soft-argmax, in the standard layout."""
        return self._head_output(images).contiguous()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self._check_images(images)
        low = self.head.pre_upsample(self.backbone(images))
        # On CPU the last upsampling and the soft-argmax go one sample at a time: the largest
        # tensor of the network (18x64x64x64 per sample for M/L) is then made once per sample
        # in memory the allocator reuses, instead of once per batch in fresh pages. Elsewhere
        # one batched call keeps kernel launches few. The heatmap is ours, so the soft-argmax
        # may overwrite it in place.
        pieces = low.split(1) if low.device.type == "cpu" else (low,)
        j, d = self.spec.joint_num, self.spec.depth_dim
        return torch.cat([soft_argmax(self.head.finish(piece), j, d, inplace=True) for piece in pieces])

    def _head_output(self, images: torch.Tensor) -> torch.Tensor:
        """Head output, possibly in channels-last memory format (see `HeadNet.forward`)."""
        self._check_images(images)
        return self.head(self.backbone(images))

    @staticmethod
    def _check_images(images: torch.Tensor) -> None:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        if images.shape[2] % 32 or images.shape[3] % 32:
            raise ValueError(f"image height and width must be divisible by 32, got {tuple(images.shape[2:])}")


def build_model(spec: ArchSpec) -> ConvNeXtPose:
    """Build an (untrained) ConvNeXtPose for `spec`; load weights with `load_state_dict`."""
    return ConvNeXtPose(spec)
