"""The ConvNeXtPose network, built from an `ArchSpec` with no global configuration.

Module names follow the authors' code (`backbone.downsample_layers`, `backbone.stages`,
`head.deconv_layers_N`, `head.final_layer`) so the canonical state dict loads strictly.
Computation matches the authors' `main/model.py` and `common/nets/convnext_bn.py`:
BatchNorm (not LayerNorm), no layer scale, ReLU, bilinear upsampling with
`align_corners=True`, and a softmax taken jointly over depth x height x width.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .folding import bn_conv, conv_bn, uses_batch_statistics
from .softargmax import soft_argmax, soft_argmax_reference
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
        return self.pwconv2(self.act(self.pwconv1(conv_bn(x, self.dwconv, self.norm)))).add_(x)


#: on CPU, a backbone stage takes as many images at once as keep its largest activation under
#: about this many bytes: L's first stage at batch 8 makes 25 MB, out of the 32 MB L3 cache of the
#: machine this was tuned on, and ran 40-50 ms batched against 25 ms two images at a time
STAGE_BYTES = 8 << 20


def rows_per_group(batch: int, bytes_per_image: int) -> int:
    """Images per group so that a group's activation stays under `STAGE_BYTES` (at least one),
    evened out over the batch (8 images at 3 per group -> 3 groups of 3, 3, 2)."""
    rows = max(1, STAGE_BYTES // max(bytes_per_image, 1))
    if rows >= batch:
        return batch
    groups = -(-batch // rows)
    return -(-batch // groups)


def _batch_statistics(*modules: nn.Module) -> bool:
    """True when a BatchNorm inside `modules` (any kind: SyncBatchNorm too) normalises with the
    statistics of the batch in hand."""
    return any(uses_batch_statistics(m) for mod in modules for m in mod.modules()
               if isinstance(m, nn.modules.batchnorm._BatchNorm))


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
        for i in range(len(self.stages)):
            x = self._stage(i, x)
        # stays a separate BatchNorm: the head's first conv is padded, so it cannot absorb it
        return self.norm(x)

    def _stage(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Downsampling layer `i` and stage `i`; on CPU a few images at a time where the stage's
        largest activation (its blocks' 4x-expanded 1x1 output) would outgrow the cache.

        Never while a BatchNorm of the stage normalises with batch statistics (training mode): those
        are the whole batch's. Forward hooks on the stage and its blocks then see each group."""
        down, stage = self.downsample_layers[i], self.stages[i]
        run = (lambda v: stage(conv_bn(v, *down))) if i == 0 else (lambda v: stage(bn_conv(v, *down)))
        if x.device.type != "cpu" or not len(stage):
            return run(x)
        b, _, h, w = x.shape
        scale = 4 if i == 0 else 2  # the stem divides height and width by 4, the others by 2
        per_image = 4 * stage[0].pwconv1.in_channels * (h // scale) * (w // scale) * x.element_size()
        rows = rows_per_group(b, per_image)
        if rows >= b or _batch_statistics(down, stage):  # the module walk only when a split is due
            return run(x)
        return torch.cat([run(x[j:j + rows]) for j in range(0, b, rows)])


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
        return self.act(self.pwconv(conv_bn(x, self.dwconv, self.norm)))


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
        """The heatmap, in the memory format of `x`."""
        return _upsample(self.last_upsample, self.pre_upsample(x), like=x)

    def pre_upsample(self, x: torch.Tensor) -> torch.Tensor:
        """Everything but the last layer's upsampling (`last_upsample`), in the memory format of `x`.

        final_layer(upsample(f)) == upsample(final_layer(f)): a 1x1 conv acts on each pixel
        alone and bilinear upsampling mixes pixels with weights summing to 1, so the two
        commute exactly (bias included). Convolving first does the largest layer of M/L
        at 1/4 of the pixels; the result differs from the other order only by rounding.
        """
        for i in range(1, self.num_layers + 1):
            layer = getattr(self, f"deconv_layers_{i}")
            x = layer.features(x)
            if i < self.num_layers:
                x = _upsample(layer.upsample, x, like=x)
        return self.final_layer(x)

    @property
    def last_upsample(self) -> Optional[nn.Module]:
        """The last layer's upsampling module, None when that layer does not upsample."""
        up = getattr(self, f"deconv_layers_{self.num_layers}").upsample
        return None if isinstance(up, nn.Identity) else up


def _upsample(upsample: Optional[nn.Module], x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """`upsample(x)` in the memory format of `like`, run on a channels-last copy of `x`.

    PyTorch's CPU bilinear kernel is about 20x faster on channels-last tensors, with the
    same values (it interpolates each channel alone).
    """
    if upsample is None or isinstance(upsample, nn.Identity):
        return x
    out = upsample(x.contiguous(memory_format=torch.channels_last))
    return out if like.is_contiguous(memory_format=torch.channels_last) else out.contiguous()


class ConvNeXtPose(nn.Module):
    """Images (B, 3, H, W), H and W divisible by 32 -> coordinates (B, J, 3) in heatmap units.

    `forward` is the fast path and the one to use; `straight_forward` computes the same
    function the way the authors' code does (and docs/spec.md §1 reads), for the tests to compare.
    """

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        self.spec = spec
        self.backbone = ConvNeXtBN(spec.depths, spec.dims)
        self.head = HeadNet(spec)

    def heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """Raw head output (B, J*D, H/32*f, W/32*f) before the soft-argmax, in the standard layout."""
        self._check_images(images)
        return self.head(self.backbone(images)).contiguous()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self._check_images(images)
        # Channels-last activations: oneDNN's convolutions and PyTorch's bilinear kernel are
        # faster on that layout. Not for float64 (tests): oneDNN does not run it, and PyTorch's
        # generic convolution is about 2x slower channels-last. The soft-argmax does the last
        # upsampling a few volumes at a time.
        x = images if images.dtype == torch.float64 else images.contiguous(memory_format=torch.channels_last)
        low = self.head.pre_upsample(self.backbone(x))
        return soft_argmax(low, self.spec.joint_num, self.spec.depth_dim, upsample=self.head.last_upsample)

    def straight_forward(self, images: torch.Tensor) -> torch.Tensor:
        """The authors' forward written out step by step: the oracle `forward` is tested against.

        NCHW, each BatchNorm on its own, every upsampling before the final 1x1 conv, the
        5-D softmax: slow and memory-hungry, but a line-by-line reading of docs/spec.md §1.
        """
        return soft_argmax_reference(self.straight_heatmaps(images), self.spec.joint_num, self.spec.depth_dim)

    def straight_heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """The head output as the authors' code computes it (see `straight_forward`)."""
        self._check_images(images)
        x = images
        for down, stage in zip(self.backbone.downsample_layers, self.backbone.stages):
            x = down(x)  # nn.Sequential: conv then BN (stem), BN then conv (downsamplers)
            for blk in stage:
                x = x + blk.pwconv2(blk.act(blk.pwconv1(blk.norm(blk.dwconv(x)))))
        x = self.backbone.norm(x)
        for i in range(1, self.head.num_layers + 1):
            layer = getattr(self.head, f"deconv_layers_{i}")
            x = layer.upsample(layer.act(layer.pwconv(layer.norm(layer.dwconv(x)))))
        return self.head.final_layer(x)

    @staticmethod
    def _check_images(images: torch.Tensor) -> None:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        if images.shape[2] % 32 or images.shape[3] % 32:
            raise ValueError(f"image height and width must be divisible by 32, got {tuple(images.shape[2:])}")


def build_model(spec: ArchSpec) -> ConvNeXtPose:
    """Build an (untrained) ConvNeXtPose for `spec`; load weights with `load_state_dict`."""
    return ConvNeXtPose(spec)
