"""Independent ConvNeXtPose ports written from docs/spec.md §1, and deliberately wrong variants of them.

Why: the conformance suite must accept faithful ports and reject the porting mistakes
people really make, each with a message that names the cause. Nothing here calls the
reference model:
- `NumpyConvNeXtPose` re-derives the network in float64 NumPy (patchify convs as
  reshapes + einsum, depthwise convs as sums of shifted slices, bilinear resizing as
  interpolation matrices, softmax by hand);
- `TorchPort` is a `torch.nn` port written the authors' way (their module names, a
  soft-argmax that reshapes with configuration constants `depth_dim` and `output_shape`,
  so it takes one input size), the kind of model porters load checkpoints into and export
  to ONNX.

Factories (use as `--impl wrong_impls:NAME`) take the loaded `Checkpoint`:
    faithful, torch_port (correct); align_corners_false, xy_swapped, bn_eps_changed,
    softmax_wrong_axis, batch_statistics, flip_off_by_one, lr_swapped, normalised_twice,
    z_unit_range, input_pixels, float16_rounding, head_random_init, flip_pairs_mpii,
    flip_height_axis, torch_port_depth_dim_reshape, torch_port_output_shape_div8,
    torch_port_depth_dim_load_error, torch_port_config_table, torch_port_head_not_loaded,
    torch_port_float16, raising_factory (wrong); `WRONG` maps the value-level mistakes to
    the words their diagnosis must contain.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

FLIP_PAIRS = ((1, 4), (2, 5), (3, 6), (14, 11), (15, 12), (16, 13))
MPII_FLIP_PAIRS = ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13))
BN_EPS = 1e-5
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64) if hasattr(t, "detach") else np.asarray(t, np.float64)


def interp_matrix(n_in: int, n_out: int, align_corners: bool) -> np.ndarray:
    """(n_out, n_in) linear-interpolation weights along one axis."""
    a = np.zeros((n_out, n_in))
    for i in range(n_out):
        if align_corners:
            src = i * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        else:  # half-pixel centres, clamped at the border (F.interpolate's default)
            src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
        lo = min(int(np.floor(src)), n_in - 1)
        hi = min(lo + 1, n_in - 1)
        frac = src - lo
        a[i, lo] += 1.0 - frac
        a[i, hi] += frac
    return a


class NumpyConvNeXtPose:
    """Images (B, 3, H, W) -> coordinates (B, J, 3) in heatmap units, float32 out."""

    def __init__(self, state_dict: Mapping[str, Any], spec: Any, *, align_corners: bool = True,
                 bn_eps: float = BN_EPS, softmax: str = "joint-volume", swap_xy: bool = False,
                 batch_statistics: bool = False, flip_offset: float = 1.0, precision: Any = None,
                 flip_pairs: Sequence[tuple[int, int]] = FLIP_PAIRS, flip_axis: int = 3) -> None:
        self.w = {k: _np(v) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
        self.spec = spec
        self.align_corners, self.bn_eps, self.softmax = align_corners, bn_eps, softmax
        self.swap_xy, self.batch_statistics, self.flip_offset = swap_xy, batch_statistics, flip_offset
        self.flip_pairs, self.flip_axis = flip_pairs, flip_axis
        #: deliberately wrong: a dtype (np.float16) every weight and every layer output is rounded to
        self.precision = precision
        if precision is not None:
            self.w = {k: self.r(v) for k, v in self.w.items()}

    def r(self, x: np.ndarray) -> np.ndarray:
        """`x` rounded to the port's precision (identity in float64)."""
        return x if self.precision is None else x.astype(self.precision).astype(np.float64)

    # -- layers -----------------------------------------------------------
    def patch_conv(self, x: np.ndarray, key: str, k: int) -> np.ndarray:
        b, c, h, w = x.shape
        patches = x.reshape(b, c, h // k, k, w // k, k)
        out = np.einsum("bchiwj,ocij->bohw", patches, self.w[key + ".weight"], optimize=True)
        return self.r(out + self.w[key + ".bias"][None, :, None, None])

    def dw_conv(self, x: np.ndarray, key: str) -> np.ndarray:
        kern = self.w[key + ".weight"][:, 0]  # (C, k, k)
        k = kern.shape[-1]
        p = k // 2
        h, w = x.shape[2:]
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        out = np.zeros_like(x)
        for i in range(k):
            for j in range(k):
                out += xp[:, :, i:i + h, j:j + w] * kern[None, :, i, j, None, None]
        return self.r(out + self.w[key + ".bias"][None, :, None, None])

    def pw_conv(self, x: np.ndarray, key: str) -> np.ndarray:
        wt = self.w[key + ".weight"][:, :, 0, 0]
        return self.r(np.einsum("bchw,oc->bohw", x, wt, optimize=True) + self.w[key + ".bias"][None, :, None, None])

    def bn(self, x: np.ndarray, key: str) -> np.ndarray:
        if self.batch_statistics:  # deliberately wrong: statistics of this batch (train mode)
            mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        else:
            mean, var = self.w[key + ".running_mean"], self.w[key + ".running_var"]
        scale = self.w[key + ".weight"] / np.sqrt(var + self.bn_eps)
        return self.r((x - mean[None, :, None, None]) * scale[None, :, None, None]
                      + self.w[key + ".bias"][None, :, None, None])

    def upsample2(self, x: np.ndarray) -> np.ndarray:
        h, w = x.shape[2:]
        ah = interp_matrix(h, 2 * h, self.align_corners)
        aw = interp_matrix(w, 2 * w, self.align_corners)
        return self.r(np.einsum("ih,bchw,jw->bcij", ah, x, aw, optimize=True))

    # -- network ------------------------------------------------------------
    def backbone(self, x: np.ndarray) -> np.ndarray:
        pre = "backbone."
        for i in range(4):
            d = f"{pre}downsample_layers.{i}"
            if i == 0:
                x = self.bn(self.patch_conv(x, f"{d}.0", 4), f"{d}.1")
            else:
                x = self.patch_conv(self.bn(x, f"{d}.0"), f"{d}.1", 2)
            for j in range(self.spec.depths[i]):
                s = f"{pre}stages.{i}.{j}"
                y = self.bn(self.dw_conv(x, f"{s}.dwconv"), f"{s}.norm")
                y = self.pw_conv(np.maximum(self.pw_conv(y, f"{s}.pwconv1"), 0.0), f"{s}.pwconv2")
                x = x + y
        return self.bn(x, f"{pre}norm")

    def head(self, x: np.ndarray) -> np.ndarray:
        for n, up in enumerate(self.spec.head_upsample, start=1):
            k = f"head.deconv_layers_{n}"
            x = np.maximum(self.pw_conv(self.bn(self.dw_conv(x, f"{k}.dwconv"), f"{k}.norm"), f"{k}.pwconv"), 0.0)
            if up:
                x = self.upsample2(x)
        return self.pw_conv(x, "head.final_layer")

    def soft_argmax(self, hm: np.ndarray) -> np.ndarray:
        j, d = self.spec.joint_num, self.spec.depth_dim
        b, _, h, w = hm.shape
        v = hm.reshape(b, j, d * h * w)
        axis = 1 if self.softmax == "joints" else 2  # "joints" is the deliberate mistake
        e = np.exp(v - v.max(axis=axis, keepdims=True))
        p = (e / e.sum(axis=axis, keepdims=True)).reshape(b, j, d, h, w)
        xs = np.einsum("bjdhw,w->bj", p, np.arange(w, dtype=np.float64))
        ys = np.einsum("bjdhw,h->bj", p, np.arange(h, dtype=np.float64))
        zs = np.einsum("bjdhw,d->bj", p, np.arange(d, dtype=np.float64))
        out = np.stack((ys, xs, zs) if self.swap_xy else (xs, ys, zs), axis=2)
        return out

    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = self.r(np.asarray(images, dtype=np.float64))
        return self.soft_argmax(self.head(self.backbone(x))).astype(np.float32)

    def flip_test(self, images: np.ndarray) -> np.ndarray:
        """Average with the flipped image's prediction mapped back (x -> W-1-x, pairs swapped)."""
        images = np.asarray(images, dtype=np.float32)
        coords = self(images).astype(np.float64)
        flipped = self(np.flip(images, axis=self.flip_axis)).astype(np.float64)
        width = images.shape[3] // 32 * 2 ** sum(self.spec.head_upsample)
        flipped[:, :, 0] = width - self.flip_offset - flipped[:, :, 0]
        for a, b in (self.flip_pairs if self.spec.joint_num >= 17 else ()):
            flipped[:, [a, b], :] = flipped[:, [b, a], :]
        return ((coords + flipped) / 2.0).astype(np.float32)


def faithful(ckpt: Any) -> NumpyConvNeXtPose:
    return NumpyConvNeXtPose(ckpt.state_dict, ckpt.spec)


def align_corners_false(ckpt: Any) -> NumpyConvNeXtPose:
    return NumpyConvNeXtPose(ckpt.state_dict, ckpt.spec, align_corners=False)


def xy_swapped(ckpt: Any) -> NumpyConvNeXtPose:
    return NumpyConvNeXtPose(ckpt.state_dict, ckpt.spec, swap_xy=True)


def bn_eps_changed(ckpt: Any) -> NumpyConvNeXtPose:
    """Keras' BatchNormalization default (1e-3) instead of PyTorch's 1e-5."""
    return NumpyConvNeXtPose(ckpt.state_dict, ckpt.spec, bn_eps=1e-3)


def softmax_wrong_axis(ckpt: Any) -> NumpyConvNeXtPose:
    return NumpyConvNeXtPose(ckpt.state_dict, ckpt.spec, softmax="joints")


def batch_statistics(ckpt: Any) -> NumpyConvNeXtPose:
    return NumpyConvNeXtPose(ckpt.state_dict, ckpt.spec, batch_statistics=True)


def flip_off_by_one(ckpt: Any) -> NumpyConvNeXtPose:
    return NumpyConvNeXtPose(ckpt.state_dict, ckpt.spec, flip_offset=0.0)


def float64_output(ckpt: Any) -> Any:
    """Faithful values but float64 output: the dtype check must reject it."""
    impl = faithful(ckpt)
    return lambda images: impl(images).astype(np.float64)


def _after(ckpt: Any, post: Any) -> Any:
    """The faithful port with `post(images, coords)` applied to its output (a NumPy callable)."""
    impl = faithful(ckpt)
    return lambda images: np.asarray(post(np.asarray(images), impl(images).astype(np.float64)), np.float32)


def lr_swapped(ckpt: Any) -> Any:
    """Left and right joints exchanged in the output (the flip test's swap applied to every prediction)."""
    def post(images: np.ndarray, c: np.ndarray) -> np.ndarray:
        for a, b in FLIP_PAIRS:
            c[:, [a, b]] = c[:, [b, a]]
        return c
    return _after(ckpt, post)


def normalised_twice(ckpt: Any) -> Any:
    """The (already normalised) input normalised again with the ImageNet mean/std."""
    impl = faithful(ckpt)
    mean = np.array(IMAGENET_MEAN, np.float32)[None, :, None, None]
    std = np.array(IMAGENET_STD, np.float32)[None, :, None, None]
    return lambda images: impl((np.asarray(images, np.float32) - mean) / std)


def z_unit_range(ckpt: Any) -> Any:
    """z divided by depth_dim - 1 (z in [0, 1] instead of heatmap units [0, D))."""
    d = ckpt.spec.depth_dim

    def post(images: np.ndarray, c: np.ndarray) -> np.ndarray:
        c[..., 2] /= d - 1
        return c
    return _after(ckpt, post)


def input_pixels(ckpt: Any) -> Any:
    """x, y multiplied by input size / heatmap size (input pixels instead of heatmap units)."""
    factor = 32 // 2 ** sum(ckpt.spec.head_upsample)

    def post(images: np.ndarray, c: np.ndarray) -> np.ndarray:
        c[..., :2] *= factor
        return c
    return _after(ckpt, post)


def float16_rounding(ckpt: Any) -> NumpyConvNeXtPose:
    """Weights and every layer output rounded to float16, the result cast back to float32."""
    return NumpyConvNeXtPose(ckpt.state_dict, ckpt.spec, precision=np.float16)


def head_random_init(ckpt: Any) -> NumpyConvNeXtPose:
    """The head as the authors' `_init_weights` leaves it (trunc_normal std 0.02, zero bias, BN
    identity): what runs when the head's weights were never loaded."""
    rng = np.random.default_rng(0)
    sd = {k: _np(v) for k, v in ckpt.state_dict.items()}
    for k, v in sd.items():
        if not k.startswith("head.") or k.endswith("num_batches_tracked"):
            continue
        if k.endswith("running_var") or (".norm." in k and k.endswith("weight")):
            sd[k] = np.ones_like(v)
        elif k.endswith("bias") or k.endswith("running_mean"):
            sd[k] = np.zeros_like(v)
        else:
            sd[k] = np.clip(rng.standard_normal(v.shape) * 0.02, -0.04, 0.04)
    return NumpyConvNeXtPose(sd, ckpt.spec)


def flip_pairs_mpii(ckpt: Any) -> NumpyConvNeXtPose:
    return NumpyConvNeXtPose(ckpt.state_dict, ckpt.spec, flip_pairs=MPII_FLIP_PAIRS)


def flip_height_axis(ckpt: Any) -> NumpyConvNeXtPose:
    return NumpyConvNeXtPose(ckpt.state_dict, ckpt.spec, flip_axis=2)


#: value-level mistakes -> words their diagnosis must contain
WRONG = {
    "align_corners_false": "align_corners=False",
    "xy_swapped": "(y, x, z) instead of (x, y, z)",
    "bn_eps_changed": "BatchNorm eps = 0.001",
    "softmax_wrong_axis": "softmax over the joints axis",
    "lr_swapped": "left/right joints swapped in the output",
    "normalised_twice": "input normalised twice",
    "z_unit_range": "z not rescaled to [0, D): scaled to [0, 1] by 1/(D\u22121) (per-axis linear fit: scale "
                    "1/(D\u22121) = 1/7)",
    "input_pixels": "x in input pixels instead of heatmap units (per-axis linear fit: scale 8 = ",
    "float16_rounding": "float16 inference cast back to float32",
    "head_random_init": "head weights (or all weights) never loaded",
}
#: flip-test mistakes -> words their diagnosis must contain
WRONG_FLIP = {
    "flip_off_by_one": "W - x instead of W - 1 - x",
    "flip_pairs_mpii": "flip pairs from another dataset (MPII",
    "flip_height_axis": "flipping the height axis",
}


# -- a torch.nn port, the authors' way ---------------------------------------------------------

def _torch_port_classes() -> Any:
    """The TorchPort classes, defined on first use (importing this file must not need torch)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Block(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
            self.norm = nn.BatchNorm2d(dim)
            self.pwconv1 = nn.Conv2d(dim, 4 * dim, 1)
            self.act = nn.ReLU()
            self.pwconv2 = nn.Conv2d(4 * dim, dim, 1)

        def forward(self, x: Any) -> Any:
            return x + self.pwconv2(self.act(self.pwconv1(self.norm(self.dwconv(x)))))

    class Backbone(nn.Module):
        def __init__(self, depths: Sequence[int], dims: Sequence[int]) -> None:
            super().__init__()
            self.downsample_layers = nn.ModuleList([nn.Sequential(nn.Conv2d(3, dims[0], 4, stride=4),
                                                                  nn.BatchNorm2d(dims[0]))])
            for i in range(3):
                self.downsample_layers.append(nn.Sequential(nn.BatchNorm2d(dims[i]),
                                                            nn.Conv2d(dims[i], dims[i + 1], 2, stride=2)))
            self.stages = nn.ModuleList([nn.Sequential(*[Block(dims[i]) for _ in range(depths[i])])
                                         for i in range(4)])
            self.norm = nn.BatchNorm2d(dims[-1])

        def forward(self, x: Any) -> Any:
            for down, stage in zip(self.downsample_layers, self.stages):
                x = stage(down(x))
            return self.norm(x)

    class DeConv(nn.Module):
        def __init__(self, c_in: int, c_out: int, k: int, up: bool) -> None:
            super().__init__()
            self.dwconv = nn.Conv2d(c_in, c_in, k, padding=k // 2, groups=c_in)
            self.norm = nn.BatchNorm2d(c_in)
            self.pwconv = nn.Conv2d(c_in, c_out, 1)
            self.act = nn.ReLU()
            self.upsample1 = nn.UpsamplingBilinear2d(scale_factor=2) if up else nn.Identity()

        def forward(self, x: Any) -> Any:
            return self.upsample1(self.act(self.pwconv(self.norm(self.dwconv(x)))))

    class Head(nn.Module):
        def __init__(self, c_in: int, chans: Sequence[int], kernels: Sequence[int], ups: Sequence[bool],
                     out_ch: int, module_list: bool) -> None:
            super().__init__()
            layers = []
            for ch, k, up in zip(chans, kernels, ups):
                layers.append(DeConv(c_in, ch, k, up))
                c_in = ch
            self.module_list = module_list
            if module_list:  # the fork's head: deconv_layers.0..n-1
                self.deconv_layers = nn.ModuleList(layers)
            else:
                for i, layer in enumerate(layers, start=1):
                    self.add_module(f"deconv_layers_{i}", layer)
            self.n = len(layers)
            self.final_layer = nn.Conv2d(c_in, out_ch, 1)

        def forward(self, x: Any) -> Any:
            layers = self.deconv_layers if self.module_list else [getattr(self, f"deconv_layers_{i}")
                                                                  for i in range(1, self.n + 1)]
            for layer in layers:
                x = layer(x)
            return self.final_layer(x)

    class TorchPort(nn.Module):
        """Authors' style: `cfg` constants in the soft-argmax (so one input size: `input_size`)."""

        def __init__(self, *, depths: Sequence[int], dims: Sequence[int], head_channels: Sequence[int],
                     head_kernels: Sequence[int], head_upsample: Sequence[bool], joint_num: int, depth_dim: int,
                     output_shape: tuple[int, int], input_size: tuple[int, int], module_list: bool = False,
                     softmax_depth_dim: Optional[int] = None) -> None:
            super().__init__()
            self.backbone = Backbone(depths, dims)
            self.head = Head(dims[-1], head_channels, head_kernels, head_upsample, joint_num * depth_dim, module_list)
            self.joint_num, self.output_shape, self.input_size = joint_num, output_shape, input_size
            #: the configuration's depth_dim the soft-argmax reshapes with (may differ from the head's)
            self.depth_dim = softmax_depth_dim or depth_dim

        def forward(self, x: Any) -> Any:
            hm = self.head(self.backbone(x))
            d, (h, w) = self.depth_dim, self.output_shape
            p = F.softmax(hm.reshape(-1, self.joint_num, d * h * w), 2).reshape(-1, self.joint_num, d, h, w)
            xs = (p.sum(dim=(2, 3)) * torch.arange(w).float()).sum(dim=2, keepdim=True)
            ys = (p.sum(dim=(2, 4)) * torch.arange(h).float()).sum(dim=2, keepdim=True)
            zs = (p.sum(dim=(3, 4)) * torch.arange(d).float()).sum(dim=2, keepdim=True)
            return torch.cat((xs, ys, zs), dim=2)

    return TorchPort


def make_torch_port(spec: Any, input_size: tuple[int, int], **overrides: Any) -> Any:
    """A `TorchPort` configured from `spec` for `input_size` (the porter's cfg), any field overridden."""
    up = 2 ** sum(spec.head_upsample)
    cfg = dict(depths=spec.depths, dims=spec.dims, head_channels=spec.head_channels, head_kernels=spec.head_kernels,
               head_upsample=spec.head_upsample, joint_num=spec.joint_num, depth_dim=spec.depth_dim,
               output_shape=(input_size[0] // 32 * up, input_size[1] // 32 * up), input_size=input_size)
    cfg.update(overrides)
    return _torch_port_classes()(**cfg).eval()


TINY_SIZE = (128, 128)


def _loaded_port(ckpt: Any, strict: bool = True, **overrides: Any) -> Any:
    """A TorchPort for TINY_SIZE with `overrides`, the checkpoint loaded with PyTorch's own load_state_dict."""
    model = make_torch_port(ckpt.spec, TINY_SIZE, **overrides)
    model.load_state_dict(dict(ckpt.state_dict), strict=strict)
    return model


def torch_port(ckpt: Any) -> Any:
    """Correct, for one input size (the tiny checkpoint's 128x128): `input_size` says so."""
    return _loaded_port(ckpt)


def torch_port_depth_dim_reshape(ckpt: Any) -> Any:
    """Head built for the checkpoint's depth_dim, soft-argmax reshaping with half of it: batch x2."""
    return _loaded_port(ckpt, softmax_depth_dim=ckpt.spec.depth_dim // 2)


def torch_port_output_shape_div8(ckpt: Any) -> Any:
    """output_shape = input/8 (the authors' config) on a 3-UP head (run with --head-upsample up,up,up): batch x4."""
    h, w = TINY_SIZE
    return _loaded_port(ckpt, output_shape=(h // 8, w // 8))


def torch_port_depth_dim_load_error(ckpt: Any) -> Any:
    """Built with half the depth bins: PyTorch's own size-mismatch error on head.final_layer."""
    return _loaded_port(ckpt, depth_dim=ckpt.spec.depth_dim // 2)


#: a configuration table copied from somewhere else: other widths, a deeper third stage
WRONG_TABLE = dict(depths=(1, 1, 3, 1), dims=(16, 32, 64, 128))


def torch_port_config_table(ckpt: Any) -> Any:
    return _loaded_port(ckpt, **WRONG_TABLE)


def torch_port_head_not_loaded(ckpt: Any) -> Any:
    """ModuleList head (deconv_layers.N) loaded with strict=False from deconv_layers_N keys: head never loaded."""
    return _loaded_port(ckpt, strict=False, module_list=True)


def torch_port_float16(ckpt: Any) -> Any:
    """float16 inference, cast back to float32."""
    import torch

    class Half(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner.half()
            self.input_size = inner.input_size

        def forward(self, x: Any) -> Any:
            return self.inner(x.half()).float()

    return Half(torch_port(ckpt))


def raising_factory(ckpt: Any) -> Any:
    raise ValueError("no weights for this variant")
