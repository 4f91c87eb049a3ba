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
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reference_model import H36M_FLIP_PAIRS, ArchSpec, format_head_upsample
from reference_model.softargmax import expected_indices, soft_argmax_reference

from .compare import COORD_NAMES

#: a candidate explains a failure when it matches to within this factor of the tolerance...
EXPLAIN_TOL_FACTOR = 10.0
#: ...or leaves at most this fraction of the error against the reference ("partly explains")
PARTIAL_FRACTION = 0.2

#: ImageNet mean/std as the authors' dataset code applies them (docs/spec.md §6: to 0-255 values)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RefPass:
    """The reference model on one batch, with the pieces several mistakes share computed once:
    backbone features (head-only mistakes start there), heatmaps (softmax mistakes) and the
    reference coordinates (mistakes that only rearrange or rescale the output)."""

    def __init__(self, model: nn.Module, images: torch.Tensor, reference: Optional[np.ndarray] = None) -> None:
        self.model, self.images = model, images
        self._features: Optional[torch.Tensor] = None
        self._heatmaps: Optional[torch.Tensor] = None
        self._coords = None if reference is None else torch.from_numpy(np.asarray(reference, dtype=np.float32))

    def features(self) -> torch.Tensor:
        if self._features is None:
            self._features = self.model.backbone(self.images)
        return self._features

    def heatmaps(self) -> torch.Tensor:
        if self._heatmaps is None:
            self._heatmaps = self.model.head(self.features()).contiguous()
        return self._heatmaps

    def coords(self) -> torch.Tensor:
        if self._coords is None:
            self._coords = self.model(self.images).cpu()
        return self._coords


Runner = Callable[[RefPass], torch.Tensor]


@dataclass(frozen=True)
class Mistake:
    """A known deviation from the reference and how to compute its output."""

    name: str
    description: str
    run: Optional[Runner] = None  # None for mistakes computed from coordinates (flip test)
    #: what running it costs: 0 rearranges the reference output, 1 re-runs the head, 2 the whole network
    cost: int = 2


@dataclass(frozen=True)
class Diagnosis:
    mistake: Optional[Mistake]
    max_abs: float  # implementation vs the mistake's output
    reference_max_abs: float  # implementation vs the reference
    exact: bool  # the mistake reproduces the implementation within tolerance
    subject: str = "the reference"  # what the mistake was applied to
    #: why the cause is named, when it was not found by reproducing the output (inspection, signatures)
    evidence: Optional[str] = None

    def text(self) -> str:
        if self.mistake is None:
            return "likely cause: none of the known porting mistakes reproduces this output"
        how = "likely cause" if self.exact else "partly explained by"
        evidence = self.evidence or (f"{self.subject} with this mistake matches your output to {self.max_abs:.2g}, "
                                     f"{self.subject} itself to {self.reference_max_abs:.2g}")
        return f"{how}: {self.mistake.description} [{evidence}]"


# -- mistakes over the network ------------------------------------------------

def _softmax_variant(kind: str, spec: ArchSpec) -> Runner:
    j, d = spec.joint_num, spec.depth_dim

    def run(ref: RefPass) -> torch.Tensor:
        hm = ref.heatmaps()
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
        return expected_indices(p.reshape(b, j, d, h, w))

    return run


def _with_modules(edit: Callable[[nn.Module], None], train: bool = False) -> Runner:
    """The whole network, edited (on a copy)."""
    def run(ref: RefPass) -> torch.Tensor:
        clone = copy.deepcopy(ref.model)
        edit(clone)
        clone.train(train)
        return clone(ref.images)

    return run


def _with_head(edit: Callable[[nn.Module], None]) -> Runner:
    """Only the head edited (on a copy), from the shared backbone features."""
    def run(ref: RefPass) -> torch.Tensor:
        holder = nn.Module()  # edits see `model.head` and `model.modules()`, as on the whole model
        holder.head = copy.deepcopy(ref.model.head)
        edit(holder)
        spec = ref.model.spec
        return soft_argmax_reference(holder.head(ref.features()).contiguous(), spec.joint_num, spec.depth_dim)

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
    def run(ref: RefPass) -> torch.Tensor:
        return ref.coords()[:, :, list(order)]
    return run


def _joints_swapped(pairs: Sequence[tuple[int, int]]) -> Runner:
    def run(ref: RefPass) -> torch.Tensor:
        out = ref.coords().clone()
        for a, b in pairs:
            out[:, [a, b]] = out[:, [b, a]]
        return out
    return run


def _bgr(ref: RefPass) -> torch.Tensor:
    return ref.model(torch.flip(ref.images, dims=(1,)))


def _normalised_again(scale: float, divide: float = 1.0) -> Runner:
    """The already normalised input normalised once more, (x / divide - mean) / std (mean, std times `scale`)."""
    def run(ref: RefPass) -> torch.Tensor:
        mean = torch.tensor(IMAGENET_MEAN, dtype=ref.images.dtype, device=ref.images.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=ref.images.dtype, device=ref.images.device).view(1, 3, 1, 1)
        return ref.model((ref.images / divide - mean * scale) / (std * scale))
    return run


def network_mistakes(spec: ArchSpec) -> list[Mistake]:
    """Known deviations for a network of `spec` (head patterns only where they differ)."""
    out = [
        Mistake("align_corners_false", "bilinear upsampling with align_corners=False (F.interpolate / "
                "nn.Upsample default); the reference uses nn.UpsamplingBilinear2d, i.e. align_corners=True",
                _with_head(_replace_upsampling(
                    lambda: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))), cost=1),
        Mistake("nearest_upsampling", "nearest-neighbour upsampling instead of bilinear with align_corners=True",
                _with_head(_replace_upsampling(lambda: nn.Upsample(scale_factor=2, mode="nearest"))), cost=1),
        Mistake("bn_train_mode", "BatchNorm uses batch statistics (train mode) instead of the stored running "
                "mean/var (eval mode)", _with_modules(lambda m: None, train=True)),
        Mistake("gelu", "GELU instead of ReLU (the original ConvNeXt uses GELU; ConvNeXtPose uses ReLU)",
                _with_modules(_gelu)),
        Mistake("bgr_input", "input channels read in reverse order (BGR instead of RGB)", _bgr),
        Mistake("normalised_twice", "input normalised twice: the images given are already normalised, and your "
                "implementation applies (x - mean) / std with the ImageNet mean/std again", _normalised_again(1.0)),
        Mistake("normalised_twice_255", "input normalised twice: the images given are already normalised, and your "
                "implementation applies (x - 255*mean) / (255*std) with the ImageNet mean/std again",
                _normalised_again(255.0)),
        Mistake("normalised_twice_div255", "input normalised twice: the images given are already normalised, and your "
                "implementation applies (x / 255 - mean) / std with the ImageNet mean/std again",
                _normalised_again(1.0, divide=255.0)),
        Mistake("softmax_joints", "softmax over the joints axis instead of jointly over depth x height x width "
                "of each joint", _softmax_variant("joints", spec), cost=1),
        Mistake("softmax_channels", "softmax over the J*D channel axis per pixel instead of jointly over "
                "depth x height x width of each joint", _softmax_variant("channels", spec), cost=1),
        Mistake("softmax_spatial", "softmax over height x width of each depth slice instead of jointly over "
                "depth x height x width of each joint", _softmax_variant("spatial", spec), cost=1),
        Mistake("softmax_depth", "softmax over depth of each pixel instead of jointly over "
                "depth x height x width of each joint", _softmax_variant("depth", spec), cost=1),
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
                           _permuted(order), cost=0))
    if spec.joint_num in (17, 18):
        pairs = " ".join(f"({a},{b})" for a, b in H36M_FLIP_PAIRS)
        out.append(Mistake("left_right_swapped", "left/right joints swapped in the output: a joint permutation "
                           f"equal to the flip pairs {pairs} (the flip test's left/right swap applied to the "
                           "unflipped prediction, or another dataset's left/right order)",
                           _joints_swapped(H36M_FLIP_PAIRS), cost=0))
    n = spec.num_head_layers
    for flags, why in (((True,) * n, "every head layer upsampling (the fork's ModuleList head)"),
                       ((True,) * (n - 1) + (False,), "the authors' default head (every layer but the last "
                                                      "upsamples)")):
        if flags != spec.head_upsample:
            out.append(Mistake(f"head_{format_head_upsample(flags)}",
                               f"head upsampling {format_head_upsample(flags)} instead of "
                               f"{format_head_upsample(spec.head_upsample)}: {why}; {head_fix(spec)}",
                               _with_head(_head_pattern(flags)), cost=1))
    return out


def head_fix(spec: ArchSpec) -> str:
    """What to change when the head upsamples a different number of times than the checkpoint's."""
    f = spec.upsample_factor
    last_up = spec.head_upsample[-1]
    h, w = spec.heatmap_size((256, 256))
    if last_up:
        return (f"fix: make the last DeConv upsample (up=True) and set output_shape = input/{32 // f} "
                f"({h}x{w} at 256x256), the heatmap size this checkpoint was trained with")
    return (f"fix: make the last DeConv not upsample (up=False) and set output_shape = input/{32 // f} "
            f"({h}x{w} at 256x256), the heatmap size this checkpoint was trained with")


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
    if _within_explain_tolerance(actual, err, tolerance):
        return Diagnosis(mistake, err, ref_err, True, subject)
    if np.isfinite(ref_err) and err <= PARTIAL_FRACTION * ref_err:
        return Diagnosis(mistake, err, ref_err, False, subject)
    return Diagnosis(None, err, ref_err, False, subject)


def _explains(actual: np.ndarray, out: np.ndarray, tolerance: float) -> bool:
    """`out` reproduces `actual`."""
    return _within_explain_tolerance(actual, _max_abs(actual, out), tolerance)


def _within_explain_tolerance(actual: np.ndarray, err: float, tolerance: float) -> bool:
    """A candidate `err` away from `actual` reproduces it: float32 rounding grows with the magnitude of
    the outputs (a wrong softmax gives thousands), so the bound does too."""
    scale = float(np.nanmax(np.abs(actual))) if actual.size else 0.0
    return err <= max(EXPLAIN_TOL_FACTOR * tolerance, 1e-5 * scale)


def diagnose_network(model: nn.Module, spec: ArchSpec, images: np.ndarray, actual: np.ndarray,
                     reference: np.ndarray, tolerance: float, *, impl: Any = None,
                     state_dict: Optional[Mapping[str, torch.Tensor]] = None,
                     hint: Optional[str] = None) -> Diagnosis:
    """Name the likely cause of `actual` (the implementation's output) differing from `reference`.

    Steps, cheapest and most certain first; the first that holds wins: (1) a known mistake that
    rearranges the output or re-runs the head reproduces it; (2) the output is the reference
    rescaled per axis or with its joints reordered (diagnose_coords); (3) the implementation
    itself shows it: a module without the checkpoint's weights, or in half precision
    (diagnose_inspect); (4) a mistake that re-runs the whole network reproduces it; (5)
    signatures: a flat output (weights never loaded), an error the size of float16/bfloat16
    rounding, an ONNX output layer of another width or coordinates outside this checkpoint's
    heatmap volume (a different network); (6) a mistake that removes most of the error
    ("partly explained by"); else none. `hint` (the step that named the cause on an earlier
    batch of the same implementation) is tried first."""
    from . import diagnose_coords as coords_
    from . import diagnose_inspect as inspect_

    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(device)
    ref = RefPass(model, x, reference)
    ref_err = _max_abs(actual, reference)
    input_size = (int(images.shape[2]), int(images.shape[3]))
    obj = getattr(impl, "obj", None)
    candidates: dict[str, tuple[Mistake, np.ndarray]] = {}

    def found(name: str, description: str, evidence: str, err: float = float("inf")) -> Diagnosis:
        return Diagnosis(Mistake(name, description), err, ref_err, True, evidence=evidence)

    def reproduce(mistake: Mistake) -> Callable[[], Optional[Diagnosis]]:
        def step() -> Optional[Diagnosis]:
            try:
                with torch.no_grad():
                    out = mistake.run(ref).detach().cpu().numpy()
            except Exception:  # a mistake that cannot run on this spec/input simply does not apply
                return None
            candidates[mistake.name] = (mistake, out)
            return Diagnosis(mistake, _max_abs(actual, out), ref_err, True) if _explains(actual, out, tolerance) \
                else None
        return step

    def finding(get: Callable[[], Any]) -> Callable[[], Optional[Diagnosis]]:
        def step() -> Optional[Diagnosis]:
            f = get()
            return None if f is None else found(f.name, f.description, f.evidence, f.max_abs)
        return step

    def unloaded() -> Optional[Diagnosis]:
        missing = inspect_.unloaded_tensors(obj, state_dict) if state_dict is not None else None
        if not missing:
            return None
        total = sum(1 for t in state_dict.values() if t.is_floating_point())
        return found("weights_not_loaded", inspect_.unloaded_text(missing, total),
                     f"compared by value with the module's own tensors; your output differs by {ref_err:.3g}")

    def module_dtype() -> Optional[Diagnosis]:
        dtype = inspect_.reduced_dtype(obj, getattr(impl, "path", None))
        if dtype is None:
            return None
        what = "graph" if getattr(impl, "kind", None) == "onnx" else "module"
        return found("module_dtype", inspect_.precision_text(dtype, certain=True, what=what),
                     f"max error {ref_err:.3g}, mean {float(np.abs(actual - reference).mean()):.3g}")

    def precision() -> Optional[Diagnosis]:
        got = inspect_.reduced_precision(model, images, actual, reference, tolerance)
        if got is None:
            return None
        name, theirs, mine = got
        return found("reduced_precision", inspect_.precision_text(name, certain=False),
                     f"mean error {mine:.3g}; the reference rounded to {name} after every layer differs from itself "
                     f"by {theirs:.3g} on average")

    def different_network() -> Optional[Diagnosis]:
        details = [t for t in (inspect_.onnx_output_layer(getattr(impl, "path", None), spec, state_dict or {}),
                               coords_.outside_volume(actual, spec, input_size, tolerance)) if t]
        if not details:
            return None
        what = "this graph" if getattr(impl, "kind", None) == "onnx" else "your implementation"
        return found("different_network", f"{what} computes a different network (J·D or heatmap size differ): "
                     + "; ".join(details), f"max error {ref_err:.3g}")

    mistakes = network_mistakes(spec)
    steps: list[tuple[str, Callable[[], Optional[Diagnosis]]]] = [
        *((m.name, reproduce(m)) for m in sorted(mistakes, key=lambda m: m.cost) if m.cost < 2),
        ("rescaled_coordinates", finding(lambda: coords_.linear_fit(actual, reference, spec, input_size, tolerance))),
        ("joint_permutation", finding(lambda: coords_.joint_permutation(actual, reference, tolerance))),
        ("weights_not_loaded", unloaded),
        ("module_dtype", module_dtype),
        *((m.name, reproduce(m)) for m in mistakes if m.cost >= 2),
        ("flat_output", finding(lambda: coords_.flat_output(actual, reference, spec, input_size))),
        ("reduced_precision", precision),
        ("different_network", different_network),
    ]
    for _, step in sorted(steps, key=lambda s: s[0] != hint):  # stable: the hint first, the rest in order
        if (diag := step()) is not None:
            return diag
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


#: left/right pairs of the other datasets the authors' code knows (data/MPII, data/MSCOCO)
OTHER_FLIP_PAIRS = {
    "MPII": ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    "MSCOCO": ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
}


def _pairs_text(pairs: Sequence[tuple[int, int]]) -> str:
    return " ".join(f"({a},{b})" for a, b in pairs)


def diagnose_flip(actual: np.ndarray, coords: np.ndarray, flipped_coords: np.ndarray, width: int,
                  pairs: Sequence[tuple[int, int]], reference: np.ndarray, tolerance: float,
                  vflipped_coords: Optional[np.ndarray] = None, height: Optional[int] = None) -> Diagnosis:
    """Match an implementation's own flip test against the usual flip-test slips.

    `vflipped_coords` (the implementation on images flipped along the height axis) and
    `height` (of the heatmap) let it recognise a flip test that flips the wrong axis."""
    variants = {
        "flip_off_by_one": ("x of the flipped prediction mapped to W - x instead of W - 1 - x",
                            dict(offset=0.0)),
        "flip_no_mirror": ("x of the flipped prediction not mirrored (x -> W - 1 - x missing)", dict(mirror=False)),
        "flip_no_swap": (f"left/right joints of the flipped prediction not swapped (flip pairs {_pairs_text(pairs)})",
                         dict(swap=False)),
    }
    candidates = {}
    for name, (text, kw) in variants.items():
        back = _flip_back(flipped_coords, width, pairs, **kw)
        candidates[name] = (Mistake(name, text), (coords + back) / 2.0)
    candidates["flip_not_averaged"] = (Mistake("flip_not_averaged", "the flip test returns the flipped "
                                               "prediction alone instead of averaging it with the unflipped one"),
                                       _flip_back(flipped_coords, width, pairs))
    j = coords.shape[1]
    for dataset, other in OTHER_FLIP_PAIRS.items():
        if max(max(p) for p in other) < j:
            back = _flip_back(flipped_coords, width, other)
            candidates[f"flip_pairs_{dataset}"] = (
                Mistake(f"flip_pairs_{dataset}", f"flip pairs from another dataset ({dataset}: {_pairs_text(other)}) "
                        f"instead of Human3.6M's {_pairs_text(pairs)}"), (coords + back) / 2.0)
    if vflipped_coords is not None and height is not None:
        axis = ("flipping the height axis: the flip test flips images upside down (torch.flip(x, dims=[2]) / "
                "images[..., ::-1, :]) instead of along the width axis (dims=[3]), the horizontal flip the weights "
                "were evaluated with")
        back = _flip_back(vflipped_coords, width, pairs)
        candidates["flip_height_axis"] = (Mistake("flip_height_axis", axis), (coords + back) / 2.0)
        back_y = _flip_back(vflipped_coords, width, pairs, mirror=False)
        back_y[:, :, 1] = height - 1 - back_y[:, :, 1]
        candidates["flip_height_axis_y"] = (Mistake("flip_height_axis_y", axis + ", mirroring y"),
                                            (coords + back_y) / 2.0)
    return best_match(actual, reference, candidates, tolerance, subject="the authors' flip test around your network")
