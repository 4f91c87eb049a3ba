"""A straight port of the authors' ConvNeXtPose forward, kept ONLY as a benchmark baseline.

This mirrors `main/model.py` and `common/nets/convnext_bn.py` of the authors' code as
closely as possible (same modules, same order of operations, same `soft_argmax` that
materialises the normalised 5-D probability volume and sums it three times). Only what
cannot run here is changed: the global `cfg` becomes constructor arguments, `.cuda()`
becomes "the heatmap's device", timm's init and DropPath (identity at inference) are
dropped, and the head's upsampling flags come from the spec (the authors hard-code
(up, up, no), which is right for XS/S only; see docs/spec.md §2).

Module names equal the reference model's, so a canonical state dict loads strictly.
It is not imported by the package or the tests' expected values: it exists so that
`benchmarks/forward.py` can time the reference forward against what users run today.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn import functional as F


class DeConv(nn.Sequential):
    def __init__(self, inplanes, planes, upscale_factor=2, kernel_size=3, up=True):
        super().__init__()
        pad = {7: 3, 5: 2}.get(kernel_size, 1)
        self.dwconv = nn.Conv2d(inplanes, inplanes, kernel_size=kernel_size, stride=1, padding=pad, groups=inplanes)
        self.norm = nn.BatchNorm2d(inplanes)
        self.pwconv = nn.Conv2d(inplanes, planes, kernel_size=1)
        self.act = nn.ReLU(inplace=True)
        self.upsample1 = nn.UpsamplingBilinear2d(scale_factor=upscale_factor) if up else nn.Identity()

    def forward(self, x):
        for layer in (self.dwconv, self.norm, self.pwconv, self.act, self.upsample1):
            x = layer(x)
        return x


class HeadNet(nn.Module):
    def __init__(self, joint_num, in_channel, depth, depth_dim, ups=(True, True, False)):
        super().__init__()
        self.deconv_layers_1 = DeConv(inplanes=in_channel, planes=depth, kernel_size=3, up=ups[0])
        self.deconv_layers_2 = DeConv(inplanes=depth, planes=depth, kernel_size=3, up=ups[1])
        self.deconv_layers_3 = DeConv(inplanes=depth, planes=depth, kernel_size=3, up=ups[2])
        self.final_layer = nn.Conv2d(in_channels=depth, out_channels=joint_num * depth_dim,
                                     kernel_size=1, stride=1, padding=0)

    def forward(self, x):
        for layer in (self.deconv_layers_1, self.deconv_layers_2, self.deconv_layers_3, self.final_layer):
            x = layer(x)
        return x


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.BatchNorm2d(dim)
        self.pwconv1 = nn.Conv2d(dim, 4 * dim, kernel_size=1)
        self.act = nn.ReLU(inplace=True)
        self.pwconv2 = nn.Conv2d(4 * dim, dim, kernel_size=1)
        self.drop_path = nn.Identity()

    def forward(self, x):
        input = x
        x = self.dwconv(x)
        x = self.norm(x)
        x = self.pwconv1(x)
        x = self.act(x)
        x = self.pwconv2(x)
        x = input + self.drop_path(x)
        return x


class ConvNeXt_BN(nn.Module):
    def __init__(self, in_chans=3, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)):
        super().__init__()
        self.downsample_layers = nn.ModuleList()
        stem = nn.Sequential(nn.Conv2d(in_chans, dims[0], kernel_size=4, stride=4), nn.BatchNorm2d(dims[0]))
        self.downsample_layers.append(stem)
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(
                nn.BatchNorm2d(dims[i]), nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2)))
        self.stages = nn.ModuleList()
        for i in range(4):
            self.stages.append(nn.Sequential(*[Block(dim=dims[i]) for _ in range(depths[i])]))
        self.norm = nn.BatchNorm2d(dims[-1])

    def forward(self, x):
        for i in range(4):
            x = self.downsample_layers[i](x)
            x = self.stages[i](x)
        return self.norm(x)


def soft_argmax(heatmaps, joint_num, depth_dim, output_shape):
    heatmaps = heatmaps.reshape((-1, joint_num, depth_dim * output_shape[0] * output_shape[1]))
    heatmaps = F.softmax(heatmaps, 2)
    heatmaps = heatmaps.reshape((-1, joint_num, depth_dim, output_shape[0], output_shape[1]))

    accu_x = heatmaps.sum(dim=(2, 3))
    accu_y = heatmaps.sum(dim=(2, 4))
    accu_z = heatmaps.sum(dim=(3, 4))

    dev = heatmaps.device  # the authors write .cuda() here
    accu_x = accu_x * torch.arange(output_shape[1]).float().to(dev)[None, None, :]
    accu_y = accu_y * torch.arange(output_shape[0]).float().to(dev)[None, None, :]
    accu_z = accu_z * torch.arange(depth_dim).float().to(dev)[None, None, :]

    accu_x = accu_x.sum(dim=2, keepdim=True)
    accu_y = accu_y.sum(dim=2, keepdim=True)
    accu_z = accu_z.sum(dim=2, keepdim=True)

    return torch.cat((accu_x, accu_y, accu_z), dim=2)


class ConvNeXtPose(nn.Module):
    def __init__(self, backbone, joint_num, head, depth_dim):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.joint_num = joint_num
        self.depth_dim = depth_dim

    def forward(self, input_img):
        hm = self.backbone(input_img)
        hm = self.head(hm)
        coord = soft_argmax(hm, self.joint_num, self.depth_dim, hm.shape[2:])
        return coord


def get_pose_net(spec) -> ConvNeXtPose:
    """Build the port for a reference `ArchSpec` (3 head layers of equal width, kernel 3)."""
    if len(set(spec.head_channels)) != 1 or len(spec.head_channels) != 3 or set(spec.head_kernels) != {3}:
        raise ValueError(f"the authors' HeadNet has 3 equal layers of kernel 3, got {spec.summary()}")
    backbone = ConvNeXt_BN(depths=spec.depths, dims=spec.dims)
    head = HeadNet(spec.joint_num, spec.dims[-1], spec.head_channels[0], spec.depth_dim, spec.head_upsample)
    return ConvNeXtPose(backbone, spec.joint_num, head, spec.depth_dim)
