"""Load: the file is readable, its keys are exactly the reference model's, every value is
finite, every BatchNorm variance is positive, and it loads strictly into the reference model.

Each defect kind fails exactly one test here (or in test_shapes), naming the key."""

from __future__ import annotations

import pytest
import torch

from pytest_convnextpose.errors import CheckpointError
from pytest_convnextpose.plugin.fixtures import KEY_KINDS, require_clean
from reference_model import build_model

pytestmark = pytest.mark.conformance
_SHOW = 10  # keys listed in a message before "... and N more"


def _listing(keys: list[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:_SHOW])
    return shown + (f" ... and {len(keys) - _SHOW} more" if len(keys) > _SHOW else "")


def _expected_keys(ckpt) -> set[str]:
    with torch.device("meta"):
        return set(build_model(ckpt.spec).state_dict())


def _comparable(t: torch.Tensor) -> torch.Tensor:
    """`t` in a dtype torch compares and tests for finiteness (float8 widened to float32; the
    loader reports such a dtype as a `dtype` problem, see test_loader_reports_no_other_problems)."""
    common = (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128)
    return t if t.dtype in common or not t.is_floating_point() else t.float()


def test_checkpoint_file_loads(convnextpose_ckpt_load_result, convnextpose_ckpt_path):
    """The reader recognises the file and the architecture can be determined."""
    if isinstance(convnextpose_ckpt_load_result, CheckpointError):
        pytest.fail(f"checkpoint could not be loaded: {convnextpose_ckpt_load_result}", pytrace=False)
    assert convnextpose_ckpt_load_result.state_dict, f"{convnextpose_ckpt_path}: loaded, but the state dict is empty"


def test_no_missing_keys(convnextpose_ckpt):
    missing = sorted(_expected_keys(convnextpose_ckpt) - set(convnextpose_ckpt.state_dict))
    assert not missing, (
        f"{len(missing)} key(s) the reference model for this spec needs are missing: {_listing(missing)}"
    )


def test_no_unexpected_keys(convnextpose_ckpt):
    unexpected = sorted(set(convnextpose_ckpt.state_dict) - _expected_keys(convnextpose_ckpt))
    origin = getattr(convnextpose_ckpt, "key_origin", {})
    where = [f"{k} (in file: {origin[k]})" if origin.get(k, k) != k else k for k in unexpected]
    assert not unexpected, f"{len(unexpected)} unexpected key(s), not part of the spec's model: {_listing(where)}"


def test_all_values_are_finite(convnextpose_ckpt):
    bad = []
    for key, t in convnextpose_ckpt.state_dict.items():
        if t.is_floating_point() or t.is_complex():
            n = int((~torch.isfinite(_comparable(t))).sum())
            if n:
                bad.append(f"{key} ({n} of {t.numel()} values NaN/inf)")
    assert not bad, f"non-finite values: expected all finite, got {_listing(bad)}"


def test_batchnorm_variances_are_positive(convnextpose_ckpt):
    bad = []
    for key, t in convnextpose_ckpt.state_dict.items():
        if key.endswith("running_var") and t.is_floating_point():
            t = _comparable(t)
            n = int((t <= 0).sum())
            if n:
                bad.append(f"{key} ({n} value(s) <= 0, min {float(t.min()):.3g})")
    assert not bad, f"BatchNorm running_var must be > 0, got {_listing(bad)}"


def test_loader_reports_no_other_problems(convnextpose_ckpt):
    """Problems outside the five tensor kinds (e.g. stored metadata contradicting the tensors)."""
    other = [
        p
        for p in convnextpose_ckpt.problems
        if p.kind not in ("missing", "unexpected", "shape", "nonfinite", "bn_variance", "name")
    ]
    assert not other, "; ".join(f"{p.kind} at {p.key!r}: {p.detail}" for p in other)


def test_loads_strictly_into_reference_model(request, convnextpose_ckpt_source, convnextpose_ckpt):
    """`load_state_dict(strict=True)` into the model built from the inferred spec succeeds.

    Key and shape defects are reported by their own tests; this checks that nothing else
    (e.g. a dtype or a key the loader failed to flag) stops a strict load."""
    require_clean(request, convnextpose_ckpt_source, convnextpose_ckpt, KEY_KINDS)
    with torch.device("meta"):
        model = build_model(convnextpose_ckpt.spec)
    try:
        model.load_state_dict(convnextpose_ckpt.state_dict, strict=True, assign=True)
    except RuntimeError as exc:
        pytest.fail(f"strict load failed: {' '.join(str(exc).split())[:600]}", pytrace=False)
    floating = [
        k
        for k, t in convnextpose_ckpt.state_dict.items()
        if not k.endswith("num_batches_tracked") and not t.is_floating_point()
    ]
    assert not floating, f"weights must be floating point, got integer tensors at {_listing(floating)}"
