"""Parity: outputs equal the golden outputs when the checkpoint is a golden case (found by
its sha256, or for a converted file its source's, in a manifest.json next to it or in
--golden-dir), or the expected outputs of an
--expected file. Tolerances and their reasons: pytest_convnextpose.implementations.golden."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pytest_convnextpose.implementations.compare import ShapeMismatch, compare_coords
from pytest_convnextpose.implementations.golden import (
    ExpectedCase,
    expected_file_case,
    golden_case_for,
    load_expected,
    provenance_hashes,
)
from pytest_convnextpose.plugin.state import state
from reference_model import H36M_FLIP_PAIRS, flip_test

pytestmark = pytest.mark.conformance
_AXES = "xyz"


def _cases(config, ckpt_source, metadata: dict) -> list[ExpectedCase]:
    opts = state(config).options
    hashes = provenance_hashes(ckpt_source.sha256, metadata)
    cases = []
    golden = golden_case_for(ckpt_source.path, ckpt_source.sha256, metadata, opts.golden_dirs)
    if golden is not None:
        cases.append(golden)
    for path in opts.expected:
        case = expected_file_case(path, hashes)
        if case is not None:
            cases.append(case)
    return cases


@pytest.fixture(scope="session")
def expected_cases(
    pytestconfig, convnextpose_ckpt_source, convnextpose_ckpt_load_result
) -> list[tuple[ExpectedCase, dict]]:
    metadata = getattr(convnextpose_ckpt_load_result, "metadata", None) or {}
    cases = _cases(pytestconfig, convnextpose_ckpt_source, metadata)
    if not cases:
        pytest.skip(
            "no expected outputs for this checkpoint: not a golden case (no manifest.json lists its "
            "sha256, or the sha256 of the file it was converted from, next to it or in --golden-dir) "
            "and no --expected file applies"
        )
    out = []
    for case in cases:
        try:
            out.append((case, load_expected(case.path)))
        except Exception as exc:  # a broken expected file is the user's input error, reported plainly
            pytest.fail(f"cannot read expected outputs {case.path}: {exc}", pytrace=False)
    return out


def _compare(name: str, got: torch.Tensor, want: torch.Tensor, case: ExpectedCase) -> list[str]:
    """Failures of `got` against `want` under the case's max/mean abs tolerances. A NaN or inf
    on either side always fails (`nan > tol` is False, so a plain comparison would pass it)."""
    got_np = got.detach().to("cpu", torch.float64).numpy()
    want_np = want.detach().to("cpu", torch.float64).numpy()
    if got_np.shape != want_np.shape:
        return [f"{name} vs {case.name}: expected shape {tuple(want_np.shape)}, got {tuple(got_np.shape)}"]
    try:
        stats = compare_coords(got_np, want_np, atol=case.max_abs, rtol=0.0)
    except ShapeMismatch as exc:
        return [f"{name} vs {case.name}: {exc} (coordinates are (batch, joints, 3))"]
    where = (
        f"worst at image {stats.worst_sample}, joint {stats.worst_joint}, {_AXES[stats.worst_coord]}: "
        f"expected {stats.worst_expected:.6f}, got {stats.worst_actual:.6f}"
    )
    with np.errstate(invalid="ignore"):
        nonfinite = int(np.count_nonzero(~np.isfinite(got_np - want_np)))
    if nonfinite:
        return [
            f"{name} vs {case.origin} {case.name}: {nonfinite}/{got_np.size} values are NaN or infinite "
            f"(in the output or the expected values), expected finite values within max abs {case.max_abs:g}; "
            f"{where}"
        ]
    errors = []
    if stats.max_abs > case.max_abs:
        errors.append(f"{name} vs {case.origin} {case.name}: max abs {stats.max_abs:.3g} > {case.max_abs:g}; {where}")
    if case.mean_abs is not None and stats.mean_abs > case.mean_abs:
        errors.append(
            f"{name} vs {case.origin} {case.name}: mean abs {stats.mean_abs:.3g} > {case.mean_abs:g}; {where}"
        )
    return errors


def test_outputs_match_expected_outputs(
    convnextpose_ref_model, expected_cases, convnextpose_torch_device, record_property
):
    errors = []
    for case, data in expected_cases:
        with torch.no_grad():
            got = convnextpose_ref_model(data["input"].to(convnextpose_torch_device, torch.float32))
        record_property(
            f"parity_max_abs[{case.name}]",
            float((got.cpu().double() - data["coords"].double()).abs().max())
            if got.shape == data["coords"].shape
            else None,
        )
        errors += _compare("coords", got, data["coords"], case)
    assert not errors, "; ".join(errors)


def test_flip_test_outputs_match_expected_outputs(
    convnextpose_ref_model, expected_cases, convnextpose_torch_device, convnextpose_ckpt_spec
):
    with_flip = [(c, d) for c, d in expected_cases if "coords_flip_test" in d]
    if not with_flip:
        pytest.skip("the expected outputs hold no coords_flip_test")
    errors = []
    for case, data in with_flip:
        x = data["input"].to(convnextpose_torch_device, torch.float32)
        _, w = convnextpose_ckpt_spec.heatmap_size(tuple(x.shape[2:]))
        with torch.no_grad():
            got = flip_test(convnextpose_ref_model, x, w, H36M_FLIP_PAIRS)
        errors += _compare("coords_flip_test", got, data["coords_flip_test"], case)
    assert not errors, "; ".join(errors)


def test_heatmap_shape_matches_expected(convnextpose_ref_model, expected_cases, convnextpose_torch_device):
    with_shape = [(c, d) for c, d in expected_cases if "heatmap_shape" in d]
    if not with_shape:
        pytest.skip("the expected outputs hold no heatmap_shape")
    for case, data in with_shape:
        want = tuple(int(v) for v in data["heatmap_shape"])
        with torch.no_grad():
            got = tuple(
                convnextpose_ref_model.heatmaps(data["input"].to(convnextpose_torch_device, torch.float32)).shape
            )
        assert got == want, f"heatmap shape vs {case.origin} {case.name}: expected {want}, got {got}"
