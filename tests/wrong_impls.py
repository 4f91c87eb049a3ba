"""A pure-NumPy ConvNeXtPose written from docs/spec.md §1, and deliberately wrong variants of it.

Why: the conformance suite must accept an independent, faithful port and reject the
porting mistakes people really make, each with a message that names the cause. Nothing
here calls the reference model or torch.nn: the network is re-derived from docs/spec.md §1 in
float64 NumPy (patchify convs as reshapes + einsum, depthwise convs as sums of shifted
slices, bilinear resizing as interpolation matrices, softmax by hand).

Factories (use as `--impl wrong_impls:NAME`) take the loaded `Checkpoint`:
    faithful, align_corners_false, xy_swapped, bn_eps_changed, softmax_wrong_axis,
    batch_statistics, flip_off_by_one
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

FLIP_PAIRS = ((1, 4), (2, 5), (3, 6), (14, 11), (15, 12), (16, 13))
BN_EPS = 1e-5


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
                 batch_statistics: bool = False, flip_offset: float = 1.0) -> None:
        self.w = {k: _np(v) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
        self.spec = spec
        self.align_corners, self.bn_eps, self.softmax = align_corners, bn_eps, softmax
        self.swap_xy, self.batch_statistics, self.flip_offset = swap_xy, batch_statistics, flip_offset

    # -- layers -----------------------------------------------------------
    def patch_conv(self, x: np.ndarray, key: str, k: int) -> np.ndarray:
        b, c, h, w = x.shape
        patches = x.reshape(b, c, h // k, k, w // k, k)
        out = np.einsum("bchiwj,ocij->bohw", patches, self.w[key + ".weight"], optimize=True)
        return out + self.w[key + ".bias"][None, :, None, None]

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
        return out + self.w[key + ".bias"][None, :, None, None]

    def pw_conv(self, x: np.ndarray, key: str) -> np.ndarray:
        wt = self.w[key + ".weight"][:, :, 0, 0]
        return np.einsum("bchw,oc->bohw", x, wt, optimize=True) + self.w[key + ".bias"][None, :, None, None]

    def bn(self, x: np.ndarray, key: str) -> np.ndarray:
        if self.batch_statistics:  # deliberately wrong: statistics of this batch (train mode)
            mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        else:
            mean, var = self.w[key + ".running_mean"], self.w[key + ".running_var"]
        scale = self.w[key + ".weight"] / np.sqrt(var + self.bn_eps)
        return (x - mean[None, :, None, None]) * scale[None, :, None, None] + self.w[key + ".bias"][None, :, None, None]

    def upsample2(self, x: np.ndarray) -> np.ndarray:
        h, w = x.shape[2:]
        ah = interp_matrix(h, 2 * h, self.align_corners)
        aw = interp_matrix(w, 2 * w, self.align_corners)
        return np.einsum("ih,bchw,jw->bcij", ah, x, aw, optimize=True)

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
        x = np.asarray(images, dtype=np.float64)
        return self.soft_argmax(self.head(self.backbone(x))).astype(np.float32)

    def flip_test(self, images: np.ndarray) -> np.ndarray:
        """Average with the flipped image's prediction mapped back (x -> W-1-x, pairs swapped)."""
        images = np.asarray(images, dtype=np.float32)
        coords = self(images).astype(np.float64)
        flipped = self(images[..., ::-1]).astype(np.float64)
        width = images.shape[3] // 32 * 2 ** sum(self.spec.head_upsample)
        flipped[:, :, 0] = width - self.flip_offset - flipped[:, :, 0]
        for a, b in _pairs(self.spec.joint_num):
            flipped[:, [a, b], :] = flipped[:, [b, a], :]
        return ((coords + flipped) / 2.0).astype(np.float32)


def _pairs(joint_num: int) -> Sequence[tuple[int, int]]:
    return FLIP_PAIRS if joint_num >= 17 else ()


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


WRONG = {
    "align_corners_false": "align_corners=False",
    "xy_swapped": "(y, x, z) instead of (x, y, z)",
    "bn_eps_changed": "BatchNorm eps = 0.001",
    "softmax_wrong_axis": "softmax over the joints axis",
}
