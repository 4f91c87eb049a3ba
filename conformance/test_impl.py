"""Implementations under test (`--impl MODULE:FACTORY`, `--onnx PATH`) against the reference model.

Each test runs once per checkpoint and implementation; without --impl/--onnx they skip
and say so. Inputs (pytest_convnextpose.implementations.inputs): two seeded standard-normal images,
the golden input batch when the checkpoint is one, the horizontal flips of both, and, for
an ONNX graph that declares its height and width dynamic, the seeded images at a second
size. Tolerance: |impl - ref| <= atol + rtol*|ref| in heatmap units (--atol/--rtol, or the
`convnextpose_tolerance` marker). A failure names the worst joint and coordinate, the max
and mean error, the likely cause when a known porting mistake reproduces the output, and
a snippet that recomputes the worst value. An implementation that raises, or returns
another shape, fails in a few lines (no traceback, no dump of its objects).
"""

from __future__ import annotations

import numpy as np
import pytest

from pytest_convnextpose.checkpoint.model import run_reference
from pytest_convnextpose.implementations.adapter import dtype_name, is_float32, to_numpy
from pytest_convnextpose.implementations.checks import (
    OTHER_SIZE,
    ImplFailure,
    build_cases,
    checked_outputs,
    composed_flip_test,
    failure_message,
    flip_diagnosis,
    flip_snippet_exprs,
    golden_unusable,
    load_kwargs,
    other_size_unusable,
    reference_flip_test,
    size_dependence,
    snippet_for,
)
from pytest_convnextpose.implementations.compare import compare_coords
from pytest_convnextpose.implementations.diagnose import diagnose_network
from pytest_convnextpose.plugin.state import state

pytestmark = pytest.mark.conformance


@pytest.fixture(scope="session")
def parity_cases(convnextpose_implementation, convnextpose_golden_for_ckpt, convnextpose_sample_inputs):
    return build_cases(
        convnextpose_implementation, convnextpose_golden_for_ckpt, tuple(convnextpose_sample_inputs.shape[2:])
    )


@pytest.fixture(scope="session")
def output_cache():
    """(implementation, checkpoint, case) -> the implementation's output on that case: every test that
    needs it gets the same run (ports can be slow: float16 on a CPU, a NumPy port)."""
    return {}


@pytest.fixture
def run_case(
    convnextpose_implementation,
    convnextpose_impl_source,
    convnextpose_ckpt_source,
    convnextpose_ckpt,
    convnextpose_ref_model,
    convnextpose_impl_tolerance,
    size_cause,
    output_cache,
):
    """case -> the implementation's (B, J, 3) output on it, computed once per session, or a clean failure."""

    def get(case, call=None):
        key = (convnextpose_impl_source, convnextpose_ckpt_source.id, case.name)
        if key not in output_cache:
            output_cache[key] = outputs(
                convnextpose_implementation,
                case.images,
                convnextpose_ckpt,
                convnextpose_ref_model,
                convnextpose_impl_tolerance,
                what=f"the '{case.name}' inputs",
                call=call,
                size_cause=size_cause,
            )
        return output_cache[key]

    return get


@pytest.fixture(scope="session")
def diagnosis_hints():
    """(implementation, checkpoint) -> the cause found on an earlier batch: tried first on the next."""
    return {}


@pytest.fixture
def case_of(parity_cases, convnextpose_implementation, convnextpose_golden_for_ckpt, convnextpose_ckpt_source):
    """Look up an input case by name; golden and second-size ones skip (with the reason) when unusable."""

    def get(name):
        why = None
        if name.startswith("golden"):
            why = golden_unusable(
                convnextpose_implementation, convnextpose_golden_for_ckpt, convnextpose_ckpt_source.id
            )
        elif name == OTHER_SIZE:
            why = other_size_unusable(convnextpose_implementation)
        if why:
            pytest.skip(why)
        return parity_cases[name]

    return get


@pytest.fixture
def snippet_kwargs(request):
    opts = state(request.config).options
    return load_kwargs(opts.joints, opts.head_upsample)


@pytest.fixture
def size_cause(convnextpose_implementation, parity_cases, convnextpose_ref_model, convnextpose_impl_tolerance):
    """images -> the cause when a graph declared dynamic is right at another size only (else None)."""

    def cause(images):
        return size_dependence(
            convnextpose_implementation,
            parity_cases,
            convnextpose_ref_model,
            images,
            convnextpose_impl_tolerance.atol,
            convnextpose_impl_tolerance.rtol,
        )

    return cause


def outputs(implementation, images, ckpt, ref_model, tolerance, *, what, call=None, size_cause=None):
    """The implementation's (B, J, 3) output, or a clean failure (it raised, or returned another shape)."""
    try:
        return checked_outputs(
            implementation, images, ckpt.spec, what=what, ref_model=ref_model, tolerance=tolerance.atol, call=call
        )
    except ImplFailure as exc:
        failure = exc
    # outside the except: no "during handling of the above exception" chain in the report
    cause = (size_cause(images) if size_cause is not None else None) or failure.cause
    pytest.fail(failure.headline + (f"\n{cause}" if cause else ""), pytrace=False)


def test_output_is_float32_batch_by_joints_by_3(convnextpose_implementation, parity_cases, run_case):
    raws = []  # the implementation's own return value, for its dtype (one run serves both checks)

    def run(x):
        raws.append(convnextpose_implementation.raw(x))
        return to_numpy(raws[-1])

    out = run_case(parity_cases["seeded"], call=run)
    raw = raws[-1] if raws else convnextpose_implementation.raw(parity_cases["seeded"].images)
    if not is_float32(raw):
        pytest.fail(
            f"{convnextpose_implementation.name}: output dtype {dtype_name(raw)}, expected float32", pytrace=False
        )
    if not np.isfinite(out).all():
        pytest.fail(
            f"{convnextpose_implementation.name}: {int((~np.isfinite(out)).sum())} non-finite output values on seeded "
            "inputs",
            pytrace=False,
        )


@pytest.mark.parametrize("case_name", ["seeded", "seeded-flipped", "golden", "golden-flipped", OTHER_SIZE])
def test_matches_reference_model(
    case_name,
    case_of,
    convnextpose_implementation,
    convnextpose_impl_source,
    convnextpose_ref_model,
    convnextpose_ckpt,
    convnextpose_ckpt_source,
    convnextpose_impl_tolerance,
    snippet_kwargs,
    diagnosis_hints,
    size_cause,
    run_case,
    convnextpose_pictures,
):
    case = case_of(case_name)
    expected = run_reference(convnextpose_ref_model, case.images)
    tol = convnextpose_impl_tolerance
    actual = run_case(case)
    stats = compare_coords(actual, expected, atol=tol.atol, rtol=tol.rtol)
    if stats.ok:
        return
    diagnosis = size_cause(case.images)
    if diagnosis is None:
        key = (convnextpose_impl_source, convnextpose_ckpt_source.id)
        diag = diagnose_network(
            convnextpose_ref_model,
            convnextpose_ckpt.spec,
            case.images,
            actual,
            expected,
            tol.atol,
            impl=convnextpose_implementation,
            state_dict=convnextpose_ckpt.state_dict,
            hint=diagnosis_hints.get(key),
        )
        if diag.mistake is not None and diag.exact:
            diagnosis_hints[key] = diag.mistake.name
        diagnosis = diag.text()
    b, _, h, w = case.images.shape
    worst = stats.worst_sample
    picture = convnextpose_pictures.compare(
        expected[worst],
        actual[worst],
        labels=("reference", convnextpose_implementation.name),
        title=f"'{case.name}' image {worst}: worst joint {stats.worst_joint_name}, max error {stats.max_abs:.3g} cells",
    )
    pytest.fail(
        failure_message(
            headline=f"{convnextpose_implementation.name} differs from the reference model on the '{case.name}' inputs "
            f"({b} images {h}x{w}{convnextpose_implementation.axes_note}) of {convnextpose_ckpt_source.id}",
            stats=stats,
            actual=actual,
            expected=expected,
            diagnosis=diagnosis,
            tolerance_source=tol.source,
            snippet=snippet_for(
                ckpt_path=convnextpose_ckpt_source.path,
                target=convnextpose_impl_source.display,
                case=case,
                stats=stats,
                kwargs=snippet_kwargs,
            ),
        )
        + f"\n{picture}",
        pytrace=False,
    )


def test_batch_result_equals_single_image_results(
    convnextpose_implementation,
    convnextpose_impl_source,
    parity_cases,
    convnextpose_ckpt,
    convnextpose_ref_model,
    convnextpose_ckpt_source,
    convnextpose_impl_tolerance,
    snippet_kwargs,
    size_cause,
    run_case,
):
    case = parity_cases["seeded"]
    what = "the 'seeded' inputs"
    batched = run_case(case)
    singles = np.concatenate(
        [
            outputs(
                convnextpose_implementation,
                case.images[i : i + 1],
                convnextpose_ckpt,
                convnextpose_ref_model,
                convnextpose_impl_tolerance,
                what=f"image {i} of {what} alone",
                size_cause=size_cause,
            )
            for i in range(case.images.shape[0])
        ]
    )
    stats = compare_coords(
        batched, singles, atol=convnextpose_impl_tolerance.atol, rtol=convnextpose_impl_tolerance.rtol
    )
    if stats.ok:
        return
    pytest.fail(
        failure_message(
            headline=f"{convnextpose_implementation.name}: the output for an image depends on the rest of its batch "
            f"({convnextpose_ckpt_source.id}); 'expected' is the image run alone",
            stats=stats,
            actual=batched,
            expected=singles,
            diagnosis="likely cause: statistics taken over the batch (BatchNorm in train mode, or a softmax or "
            "normalisation across the batch axis); use the stored running mean/var",
            tolerance_source=convnextpose_impl_tolerance.source,
            snippet=snippet_for(
                ckpt_path=convnextpose_ckpt_source.path,
                target=convnextpose_impl_source.display,
                case=case,
                stats=stats,
                kwargs=snippet_kwargs,
                expected_expr="np.concatenate([impl(x[i:i + 1]) for i in range(len(x))])",
            ),
        ),
        pytrace=False,
    )


@pytest.mark.parametrize("case_name", ["seeded", "golden"])
def test_flip_test_matches_reference(
    case_name,
    case_of,
    parity_cases,
    convnextpose_implementation,
    convnextpose_impl_source,
    convnextpose_ref_model,
    convnextpose_ckpt,
    convnextpose_ckpt_source,
    convnextpose_impl_tolerance,
    snippet_kwargs,
    size_cause,
    run_case,
):
    """The implementation's own `flip_test` if it has one, else the authors' flip test around it."""
    if convnextpose_ckpt.spec.joint_num not in (17, 18):
        pytest.skip(
            f"flip pairs are known for the Human3.6M joint sets (17, 18), not {convnextpose_ckpt.spec.joint_num} joints"
        )
    case = case_of(case_name)
    expected = reference_flip_test(convnextpose_ref_model, convnextpose_ckpt.spec, case.images)
    own = convnextpose_implementation.has_flip_test
    what = f"the '{case.name}' inputs"
    if own:
        actual = outputs(
            convnextpose_implementation,
            case.images,
            convnextpose_ckpt,
            convnextpose_ref_model,
            convnextpose_impl_tolerance,
            what=f"{what} (flip_test)",
            call=convnextpose_implementation.flip_test,
            size_cause=size_cause,
        )
    else:  # the parity cases hold each batch and its horizontal flip
        coords, flipped = run_case(case), run_case(parity_cases[f"{case.name}-flipped"])
        actual = composed_flip_test(
            convnextpose_implementation, convnextpose_ckpt.spec, case.images, coords=coords, flipped=flipped
        )
    stats = compare_coords(
        actual, expected, atol=convnextpose_impl_tolerance.atol, rtol=convnextpose_impl_tolerance.rtol
    )
    if stats.ok:
        return
    diag = size_cause(case.images)
    if own and diag is None:
        diag = flip_diagnosis(
            convnextpose_implementation, convnextpose_ckpt.spec, case.images, actual, convnextpose_impl_tolerance.atol
        )
    what = "its flip_test" if own else "the authors' flip test around it"
    pytest.fail(
        failure_message(
            headline=f"{convnextpose_implementation.name}: {what} differs from the reference flip test "
            f"on the '{case.name}' "
            f"inputs of {convnextpose_ckpt_source.id}",
            stats=stats,
            actual=actual,
            expected=expected,
            diagnosis=diag or "see test_matches_reference_model on the flipped inputs for the network itself",
            tolerance_source=convnextpose_impl_tolerance.source,
            snippet=snippet_for(
                ckpt_path=convnextpose_ckpt_source.path,
                target=convnextpose_impl_source.display,
                case=case,
                stats=stats,
                kwargs=snippet_kwargs,
                **flip_snippet_exprs(convnextpose_ckpt.spec, case.images, own),
            ),
        ),
        pytrace=False,
    )
