"""Implementations under test (`--impl MODULE:FACTORY`, `--onnx PATH`) against the reference model.

Each test runs once per checkpoint and implementation; without --impl/--onnx they skip
and say so. Inputs (pytest_convnextpose.implementations.inputs): two seeded standard-normal images,
the golden input batch when the checkpoint is a golden case, and the horizontal flips
of both. Tolerance: |impl - ref| <= atol + rtol*|ref| in heatmap units (--atol/--rtol, or
the `convnextpose_tolerance` marker). A failure names the worst joint and coordinate,
the max and mean error, the likely cause when a known porting mistake reproduces the
output, and a snippet that recomputes the worst value.
"""
from __future__ import annotations

import numpy as np
import pytest

from pytest_convnextpose.implementations.compare import compare_coords
from pytest_convnextpose.implementations.diagnose import diagnose_network
from pytest_convnextpose.implementations.adapter import dtype_name, is_float32
from pytest_convnextpose.checkpoint.model import run_reference
from pytest_convnextpose.implementations.checks import (build_cases, composed_flip_test, failure_message,
                                                        flip_diagnosis, flip_snippet_exprs, golden_unusable,
                                                        load_kwargs, reference_flip_test, snippet_for)
from pytest_convnextpose.plugin.state import state

pytestmark = pytest.mark.conformance


@pytest.fixture(scope="session")
def parity_cases(implementation, golden_for_ckpt, sample_inputs):
    return build_cases(implementation, golden_for_ckpt, tuple(sample_inputs.shape[2:]))


@pytest.fixture
def case_of(parity_cases, implementation, golden_for_ckpt, ckpt_source):
    """Look up an input case by name; golden ones skip (with the reason) when unusable."""
    def get(name):
        if name.startswith("golden"):
            why = golden_unusable(implementation, golden_for_ckpt, ckpt_source.id)
            if why:
                pytest.skip(why)
        return parity_cases[name]
    return get


@pytest.fixture
def snippet_kwargs(request):
    opts = state(request.config).options
    return load_kwargs(opts.joints, opts.head_upsample)


def test_output_is_float32_batch_by_joints_by_3(implementation, ckpt_spec, parity_cases):
    images = parity_cases["seeded"].images
    raw = implementation.raw(images)
    out = np.asarray(implementation(images))
    want = (images.shape[0], ckpt_spec.joint_num, 3)
    assert out.shape == want, (f"{implementation.name}: output shape {out.shape}, expected (B, J, 3) = {want} "
                               f"for input {images.shape}")
    assert is_float32(raw), f"{implementation.name}: output dtype {dtype_name(raw)}, expected float32"
    assert np.isfinite(out).all(), (f"{implementation.name}: {int((~np.isfinite(out)).sum())} non-finite "
                                    f"output values on seeded inputs")


@pytest.mark.parametrize("case_name", ["seeded", "seeded-flipped", "golden", "golden-flipped"])
def test_matches_reference_model(case_name, case_of, implementation, impl_source, ref_model, ckpt, ckpt_source,
                                 impl_tolerance, snippet_kwargs):
    case = case_of(case_name)
    expected = run_reference(ref_model, case.images)
    actual = implementation(case.images)
    stats = compare_coords(actual, expected, atol=impl_tolerance.atol, rtol=impl_tolerance.rtol)
    if stats.ok:
        return
    diag = diagnose_network(ref_model, ckpt.spec, case.images, actual, expected, impl_tolerance.atol)
    b, _, h, w = case.images.shape
    pytest.fail(failure_message(
        headline=f"{implementation.name} differs from the reference model on the '{case.name}' inputs "
                 f"({b} images {h}x{w}) of {ckpt_source.id}",
        stats=stats, actual=actual, expected=expected, diagnosis=diag.text(),
        tolerance_source=impl_tolerance.source,
        snippet=snippet_for(ckpt_path=ckpt_source.path, target=impl_source.display, case=case, stats=stats,
                            kwargs=snippet_kwargs)), pytrace=False)


def test_batch_result_equals_single_image_results(implementation, impl_source, parity_cases, ckpt_source,
                                                  impl_tolerance, snippet_kwargs):
    case = parity_cases["seeded"]
    batched = implementation(case.images)
    singles = np.concatenate([implementation(case.images[i:i + 1]) for i in range(case.images.shape[0])])
    stats = compare_coords(batched, singles, atol=impl_tolerance.atol, rtol=impl_tolerance.rtol)
    if stats.ok:
        return
    pytest.fail(failure_message(
        headline=f"{implementation.name}: the output for an image depends on the rest of its batch "
                 f"({ckpt_source.id}); 'expected' is the image run alone",
        stats=stats, actual=batched, expected=singles,
        diagnosis="likely cause: statistics taken over the batch (BatchNorm in train mode, or a softmax or "
                  "normalisation across the batch axis); use the stored running mean/var",
        tolerance_source=impl_tolerance.source,
        snippet=snippet_for(ckpt_path=ckpt_source.path, target=impl_source.display, case=case, stats=stats,
                            kwargs=snippet_kwargs,
                            expected_expr="np.concatenate([impl(x[i:i + 1]) for i in range(len(x))])")),
        pytrace=False)


@pytest.mark.parametrize("case_name", ["seeded", "golden"])
def test_flip_test_matches_reference(case_name, case_of, implementation, impl_source, ref_model, ckpt,
                                     ckpt_source, impl_tolerance, snippet_kwargs):
    """The implementation's own `flip_test` if it has one, else the authors' flip test around it."""
    if ckpt.spec.joint_num not in (17, 18):
        pytest.skip(f"flip pairs are known for the Human3.6M joint sets (17, 18), not {ckpt.spec.joint_num} joints")
    case = case_of(case_name)
    expected = reference_flip_test(ref_model, ckpt.spec, case.images)
    own = implementation.has_flip_test
    actual = implementation.flip_test(case.images) if own else composed_flip_test(implementation, ckpt.spec,
                                                                                  case.images)
    stats = compare_coords(actual, expected, atol=impl_tolerance.atol, rtol=impl_tolerance.rtol)
    if stats.ok:
        return
    diag = None
    if own:
        diag = flip_diagnosis(implementation, ckpt.spec, case.images, actual, impl_tolerance.atol)
    what = "its flip_test" if own else "the authors' flip test around it"
    pytest.fail(failure_message(
        headline=f"{implementation.name}: {what} differs from the reference flip test on the '{case.name}' "
                 f"inputs of {ckpt_source.id}",
        stats=stats, actual=actual, expected=expected,
        diagnosis=diag or "see test_matches_reference_model on the flipped inputs for the network itself",
        tolerance_source=impl_tolerance.source,
        snippet=snippet_for(ckpt_path=ckpt_source.path, target=impl_source.display, case=case, stats=stats,
                            kwargs=snippet_kwargs, **flip_snippet_exprs(ckpt.spec, case.images, own))),
        pytrace=False)
