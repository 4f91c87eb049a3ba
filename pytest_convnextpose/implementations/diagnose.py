"""Name the likely cause of a parity failure by reproducing known porting mistakes.

Why: "max error 0.4" tells a reimplementer nothing; "your output equals the reference
with bilinear align_corners=False" tells them which line to fix. Each `Mistake` is the
reference computation with one well-known deviation (the easy-to-get-wrong points of
docs/spec.md §1 and the golden README). When a parity check fails, every mistake is run on the
failing batch; one whose output matches the implementation far better than the
reference does is reported as the likely cause. Runs only on failure, so its cost
(one forward pass per mistake) is paid only when there is something to explain.
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reference_model import ArchSpec, format_head_upsample

from .compare import COORD_NAMES

#: a candidate explains a failure when it matches to within this factor of the tolerance...
EXPLAIN_TOL_FACTOR = 10.0
#: ...or leaves at most this fraction of the error against the reference ("partly explains")
PARTIAL_FRACTION = 0.2

Runner = Callable[[nn.Module, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Mistake:
    """A known deviation from the reference and how to compute its output."""

    name: str
    description: str
    run: Optional[Runner] = None  # None for mistakes computed from coordinates (flip test)


@dataclass(frozen=True)
class Diagnosis:
    mistake: Optional[Mistake]
    max_abs: float  # implementation vs the mistake's output
    reference_max_abs: float  # implementation vs the reference
    exact: bool  # the mistake reproduces the implementation within tolerance
    subject: str = "the reference"  # what the mistake was applied to

    def text(self) -> str:
        if self.mistake is None:
            return "likely cause: none of the known porting mistakes reproduces this output"
        how = "likely cause" if self.exact else "partly explained by"
        return (f"{how}: {self.mistake.description} "
                f"[{self.subject} with this mistake matches your output to {self.max_abs:.2g}, "
                f"{self.subject} itself to {self.reference_max_abs:.2g}]")


# -- mistakes over the network ------------------------------------------------

def _soft_argmax_with(p: torch.Tensor) -> torch.Tensor:
    """Expectations of index under p (B, J, D, H, W), exactly as the reference takes them."""
    _, _, d, h, w = p.shape
    dt, dev = p.dtype, p.device
    x = (p.sum(dim=(2, 3)) * torch.arange(w, dtype=dt, device=dev)).sum(dim=2)
    y = (p.sum(dim=(2, 4)) * torch.arange(h, dtype=dt, device=dev)).sum(dim=2)
    z = (p.sum(dim=(3, 4)) * torch.arange(d, dtype=dt, device=dev)).sum(dim=2)
    return torch.stack((x, y, z), dim=2)


def _softmax_variant(kind: str, spec: ArchSpec) -> Runner:
    j, d = spec.joint_num, spec.depth_dim

    def run(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        hm = model.heatmaps(images)
        b, _, h, w = hm.shape
        if kind == "joints":
            p = F.softmax(hm.reshape(b, j, d * h * w), dim=1)
        elif kind == "channels":
            p = F.softmax(hm, dim=1)
        elif kind == "spatial":
            p = F.softmax(hm.reshape(b, j, d, h * w), dim=3)
        elif kind == "depth":
            p = F.softmax(hm.reshape(b, j, d, h, w), dim=2)
        else:  # pragma: no cover - programming error
            raise ValueError(kind)
        return _soft_argmax_with(p.reshape(b, j, d, h, w))

    return run


def _with_modules(edit: Callable[[nn.Module], None], train: bool = False) -> Runner:
    def run(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        clone = copy.deepcopy(model)
        edit(clone)
        clone.train(train)
        return clone(images)

    return run


def _replace_upsampling(factory: Callable[[], nn.Module]) -> Callable[[nn.Module], None]:
    def edit(model: nn.Module) -> None:
        for layer in model.modules():
            if isinstance(getattr(layer, "upsample", None), nn.UpsamplingBilinear2d):
                layer.upsample = factory()
    return edit


def _set_bn_eps(eps: float) -> Callable[[nn.Module], None]:
    def edit(model: nn.Module) -> None:
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps = eps
    return edit


def _gelu(model: nn.Module) -> None:
    for m in model.modules():
        if hasattr(m, "act") and isinstance(m.act, nn.ReLU):
            m.act = nn.GELU()


def _head_pattern(flags: tuple[bool, ...]) -> Callable[[nn.Module], None]:
    def edit(model: nn.Module) -> None:
        for i, up in enumerate(flags, start=1):
            layer = getattr(model.head, f"deconv_layers_{i}")
            layer.upsample = nn.UpsamplingBilinear2d(scale_factor=2) if up else nn.Identity()
    return edit


def _permuted(order: Sequence[int]) -> Runner:
    def run(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        return model(images)[:, :, list(order)]
    return run


def _bgr(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    return model(torch.flip(images, dims=(1,)))


def network_mistakes(spec: ArchSpec) -> list[Mistake]:
    """Known deviations for a network of `spec` (head patterns only where they differ)."""
    out = [
        Mistake("align_corners_false", "bilinear upsampling with align_corners=False (F.interpolate / "
                "nn.Upsample default); the reference uses nn.UpsamplingBilinear2d, i.e. align_corners=True",
                _with_modules(_replace_upsampling(
                    lambda: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)))),
        Mistake("nearest_upsampling", "nearest-neighbour upsampling instead of bilinear with align_corners=True",
                _with_modules(_replace_upsampling(lambda: nn.Upsample(scale_factor=2, mode="nearest")))),
        Mistake("bn_train_mode", "BatchNorm uses batch statistics (train mode) instead of the stored running "
                "mean/var (eval mode)", _with_modules(lambda m: None, train=True)),
        Mistake("gelu", "GELU instead of ReLU (the original ConvNeXt uses GELU; ConvNeXtPose uses ReLU)",
                _with_modules(_gelu)),
        Mistake("bgr_input", "input channels read in reverse order (BGR instead of RGB)", _bgr),
        Mistake("softmax_joints", "softmax over the joints axis instead of jointly over depth x height x width "
                "of each joint", _softmax_variant("joints", spec)),
        Mistake("softmax_channels", "softmax over the J*D channel axis per pixel instead of jointly over "
                "depth x height x width of each joint", _softmax_variant("channels", spec)),
        Mistake("softmax_spatial", "softmax over height x width of each depth slice instead of jointly over "
                "depth x height x width of each joint", _softmax_variant("spatial", spec)),
        Mistake("softmax_depth", "softmax over depth of each pixel instead of jointly over "
                "depth x height x width of each joint", _softmax_variant("depth", spec)),
    ]
    for eps in (1e-3, 1e-4, 1e-6, 0.0):
        out.append(Mistake(f"bn_eps_{eps:g}", f"BatchNorm eps = {eps:g} instead of 1e-05 (PyTorch's default, "
                           "which the weights were trained with; Keras defaults to 1e-3, LayerNorm ports to 1e-6)",
                           _with_modules(_set_bn_eps(eps))))
    for order in itertools.permutations(range(3)):
        if order == (0, 1, 2):
            continue
        got = "".join(COORD_NAMES[i] for i in order)
        out.append(Mistake(f"coords_{got}", f"coordinates in order ({', '.join(COORD_NAMES[i] for i in order)}) "
                           f"instead of (x, y, z): x comes from the width axis, y from height, z from depth",
                           _permuted(order)))
    n = spec.num_head_layers
    for flags, why in (((True,) * n, "every head layer upsampling (the fork's ModuleList head)"),
                       ((True,) * (n - 1) + (False,), "the authors' default head (every layer but the last "
                                                      "upsamples)")):
        if flags != spec.head_upsample:
            out.append(Mistake(f"head_{format_head_upsample(flags)}",
                               f"head upsampling {format_head_upsample(flags)} instead of "
                               f"{format_head_upsample(spec.head_upsample)}: {why}", _with_modules(_head_pattern(flags))))
    return out


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    err = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return float(np.max(np.where(np.isfinite(err), err, np.inf)))


def best_match(actual: np.ndarray, reference: np.ndarray, candidates: dict[str, tuple[Mistake, np.ndarray]],
               tolerance: float, subject: str = "the reference") -> Diagnosis:
    """Pick the candidate output closest to `actual`; decide whether it explains the failure."""
    ref_err = _max_abs(actual, reference)
    best: Optional[tuple[float, Mistake]] = None
    for mistake, out in candidates.values():
        err = _max_abs(actual, out)
        if best is None or err < best[0]:
            best = (err, mistake)
    if best is None:
        return Diagnosis(None, float("inf"), ref_err, False, subject)
    err, mistake = best
    # float32 rounding grows with the magnitude of the outputs (a wrong softmax gives thousands)
    scale = float(np.nanmax(np.abs(actual))) if actual.size else 0.0
    if err <= max(EXPLAIN_TOL_FACTOR * tolerance, 1e-5 * scale):
        return Diagnosis(mistake, err, ref_err, True, subject)
    if np.isfinite(ref_err) and err <= PARTIAL_FRACTION * ref_err:
        return Diagnosis(mistake, err, ref_err, False, subject)
    return Diagnosis(None, err, ref_err, False, subject)


def diagnose_network(model: nn.Module, spec: ArchSpec, images: np.ndarray, actual: np.ndarray,
                     reference: np.ndarray, tolerance: float) -> Diagnosis:
    """Run every known mistake on `images` (model's device) and match them against `actual`."""
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(device)
    candidates = {}
    with torch.no_grad():
        for mistake in network_mistakes(spec):
            try:
                out = mistake.run(model, x).detach().cpu().numpy()
            except Exception:  # a mistake that cannot run on this spec/input simply does not apply
                continue
            candidates[mistake.name] = (mistake, out)
    return best_match(actual, reference, candidates, tolerance)


# -- mistakes in the flip test ------------------------------------------------

def _flip_back(coords: np.ndarray, width: int, pairs: Sequence[tuple[int, int]], *, offset: float = 1.0,
               mirror: bool = True, swap: bool = True) -> np.ndarray:
    out = coords.astype(np.float64).copy()
    if mirror:
        out[:, :, 0] = width - offset - out[:, :, 0]
    if swap:
        for a, b in pairs:
            out[:, [a, b], :] = out[:, [b, a], :]
    return out


def diagnose_flip(actual: np.ndarray, coords: np.ndarray, flipped_coords: np.ndarray, width: int,
                  pairs: Sequence[tuple[int, int]], reference: np.ndarray, tolerance: float) -> Diagnosis:
    """Match an implementation's own flip test against the usual flip-test slips."""
    variants = {
        "flip_off_by_one": ("x of the flipped prediction mapped to W - x instead of W - 1 - x",
                            dict(offset=0.0)),
        "flip_no_mirror": ("x of the flipped prediction not mirrored (x -> W - 1 - x missing)", dict(mirror=False)),
        "flip_no_swap": ("left/right joints of the flipped prediction not swapped (flip pairs "
                         "(1,4) (2,5) (3,6) (14,11) (15,12) (16,13))", dict(swap=False)),
    }
    candidates = {}
    for name, (text, kw) in variants.items():
        back = _flip_back(flipped_coords, width, pairs, **kw)
        candidates[name] = (Mistake(name, text), (coords + back) / 2.0)
    candidates["flip_not_averaged"] = (Mistake("flip_not_averaged", "the flip test returns the flipped "
                                               "prediction alone instead of averaging it with the unflipped one"),
                                       _flip_back(flipped_coords, width, pairs))
    return best_match(actual, reference, candidates, tolerance, subject="the authors' flip test around your network")
