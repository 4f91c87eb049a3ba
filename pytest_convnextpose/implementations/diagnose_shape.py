"""Name the cause of an output with the wrong shape (before any value is compared).

Why: the authors' soft-argmax reshapes the heatmap with configuration constants,
`reshape(-1, J, depth_dim * output_shape[0] * output_shape[1])`. When those constants
say less than the head produces, nothing raises: the `-1` absorbs the difference and the
output has k times the batch. The factor tells which constant is off: the heatmap has
`J*D*H*W` values per image, so k = D*H*W / (D'*H'*W'); k = 2 is depth_dim 32 for a 64-bin
checkpoint, k = 4 an output_shape of input/8 with a head that makes input/4 heatmaps.
Each candidate is then checked by recomputing the authors' soft-argmax with it on the
reference's own heatmaps: a candidate that reproduces the output is the cause.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Optional, Sequence

import numpy as np

from reference_model import ArchSpec, format_head_upsample


def authors_soft_argmax(heatmaps: Any, joint_num: int, depth: int, height: int, width: int) -> Any:
    """The authors' `soft_argmax` with the given configuration constants (any of them wrong)."""
    import torch.nn.functional as F

    from reference_model.softargmax import expected_indices

    hm = heatmaps.reshape(-1, joint_num, depth * height * width)
    return expected_indices(F.softmax(hm, 2).reshape(-1, joint_num, depth, height, width))


def _candidates(spec: ArchSpec, hm: tuple[int, int], ratio: Fraction) -> list[tuple[int, int, int]]:
    """(D', H', W') with D'*H'*W' = D*H*W / ratio among the usual slips (depth halved/doubled,
    output_shape at the next coarser or finer stride)."""
    d, (h, w) = spec.depth_dim, hm
    target = Fraction(d * h * w) / ratio
    out = []
    for dd in sorted({d, d // 2, d * 2, 32, 64} - {0}):
        for f in (Fraction(1), Fraction(1, 2), Fraction(2), Fraction(1, 4), Fraction(4)):
            hh, ww = h * f, w * f
            if hh.denominator == 1 and ww.denominator == 1 and dd * hh * ww == target:
                out.append((dd, int(hh), int(ww)))
    return out


def _explain(spec: ArchSpec, input_size: tuple[int, int], hm: tuple[int, int], cand: tuple[int, int, int],
             batch: int, got: int) -> str:
    d, (h, w) = spec.depth_dim, hm
    dd, hh, ww = cand
    j = spec.joint_num
    parts = []
    if dd != d:
        parts.append(f"depth_dim {dd} instead of {d}: this checkpoint's final_layer has {j * d} = {j} joints x {d} "
                     f"depth bins (set depth_dim = ckpt.spec.depth_dim = {d})")
    if (hh, ww) != (h, w):
        stride_yours = input_size[0] // hh if hh else 0
        stride_true = input_size[0] // h
        n_up = sum(spec.head_upsample)
        parts.append(f"output_shape = input/{stride_yours} ({hh}x{ww}) instead of input/{stride_true} ({h}x{w}): this "
                     f"checkpoint's head upsamples {n_up} times ({format_head_upsample(spec.head_upsample)}), so its "
                     f"heatmap is input/{stride_true}; fix: set output_shape = input/{stride_true} with a head whose "
                     f"last DeConv {'upsamples' if spec.head_upsample[-1] else 'does not upsample'} (or the reverse: "
                     f"a head that makes input/{stride_yours} heatmaps, if that is the model you mean)")
    k = Fraction(got, batch)
    return (f"the soft-argmax reshape(-1, J, D*H*W) uses {dd}*{hh}*{ww} = {dd * hh * ww} values per joint, the "
            f"heatmap has {d}*{h}*{w} = {d * h * w}, so each image becomes {k} (batch {got} for {batch} images): "
            + "; ".join(parts))


def diagnose_shape(shape: Sequence[int], images_shape: Sequence[int], spec: ArchSpec,
                   heatmaps: Optional[Any] = None, actual: Optional[np.ndarray] = None,
                   tolerance: float = 1e-3) -> str:
    """`likely cause: ...` for an output of `shape` given images of `images_shape`.

    With the reference's `heatmaps` (torch, (B, J*D, H, W)) and the output `actual`, the
    batch-factor candidates are checked by recomputation; the one that reproduces the
    output is named as certain, otherwise the arithmetic alone is given."""
    shape = tuple(int(v) for v in shape)
    b, j = int(images_shape[0]), spec.joint_num
    input_size = (int(images_shape[2]), int(images_shape[3]))
    hm = spec.heatmap_size(input_size)
    want = (b, j, 3)
    if len(shape) == 2 and shape[0] == b and shape[1] == j * 3:
        return "likely cause: coordinates flattened to (B, J*3); return them as (B, J, 3)"
    if len(shape) != 3:
        return f"likely cause: the output is not (B, J, 3) = {want}"
    if shape[2] != 3:
        return f"likely cause: the last axis holds {shape[2]} values per joint, expected 3 (x, y, z in heatmap units)"
    if shape[1] != j:
        return (f"likely cause: {shape[1]} joints, the checkpoint has {j} (final_layer: {j * spec.depth_dim} = {j} "
                f"joints x {spec.depth_dim} depth bins): this computes a different network, or joints were dropped")
    if shape[0] == b:
        return "likely cause: unknown"
    ratio = Fraction(shape[0], b)
    cands = _candidates(spec, hm, ratio)
    if heatmaps is not None and actual is not None:
        for cand in cands:
            try:
                sim = authors_soft_argmax(heatmaps, j, *cand).cpu().numpy()
            except RuntimeError:
                continue
            if sim.shape == actual.shape and float(np.max(np.abs(sim - actual))) <= 10 * tolerance:
                err = float(np.max(np.abs(sim - actual)))
                return (f"likely cause: {_explain(spec, input_size, hm, cand, b, shape[0])} [the reference's heatmaps "
                        f"through that reshape reproduce your output to {err:.2g}]")
    if len(cands) == 1:
        return f"likely cause: {_explain(spec, input_size, hm, cands[0], b, shape[0])}"
    if cands:
        return ("likely cause: one of " + " | ".join(_explain(spec, input_size, hm, c, b, shape[0]) for c in cands))
    return (f"likely cause: the batch axis is {ratio} times the input's: the soft-argmax reshape(-1, J, D*H*W) "
            f"assumes {Fraction(spec.depth_dim * hm[0] * hm[1]) / ratio} values per joint, the heatmap has "
            f"{spec.depth_dim}*{hm[0]}*{hm[1]}")
