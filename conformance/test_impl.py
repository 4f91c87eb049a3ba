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

from dataclasses import dataclass
from typing import Any, Callable, Optional

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


@dataclass
class Subject:
    """One implementation against one checkpoint: what every test here compares, and how it fails.

    Built once per test from the plugin's fixtures, so the tests read as the checks they are."""

    impl: Any
    source: Any  # plugin ImplSource
    ckpt: Any
    ckpt_source: Any
    ref_model: Any
    tolerance: Any  # plugin Tolerance
    snippet_kwargs: dict
    cases: dict
    cache: dict  # (implementation, checkpoint, case) -> output: one run per case for the session

    def size_cause(self, images: np.ndarray) -> Optional[str]:
        """The cause when a graph declared dynamic is right at another size only (else None)."""
        tol = self.tolerance
        return size_dependence(self.impl, self.cases, self.ref_model, images, tol.atol, tol.rtol)

    def outputs(self, images: np.ndarray, what: str, call: Optional[Callable] = None) -> np.ndarray:
        """The implementation's (B, J, 3) output, or a clean failure (it raised, or returned another shape)."""
        try:
            return checked_outputs(self.impl, images, self.ckpt.spec, what=what, ref_model=self.ref_model,
                                   tolerance=self.tolerance.atol, call=call)
        except ImplFailure as exc:
            failure = exc
        # outside the except: no "during handling of the above exception" chain in the report
        cause = self.size_cause(images) or failure.cause
        pytest.fail(failure.headline + (f"\n{cause}" if cause else ""), pytrace=False)

    def run(self, case: Any, call: Optional[Callable] = None) -> np.ndarray:
        """The output on a parity case, computed once per session."""
        key = (self.source, self.ckpt_source.id, case.name)
        if key not in self.cache:
            self.cache[key] = self.outputs(case.images, f"the '{case.name}' inputs", call=call)
        return self.cache[key]

    def compare(self, actual: np.ndarray, expected: np.ndarray) -> Any:
        return compare_coords(actual, expected, atol=self.tolerance.atol, rtol=self.tolerance.rtol)

    def fail(self, headline: str, stats: Any, actual: np.ndarray, expected: np.ndarray, diagnosis: str, case: Any,
             extra: str = "", **snippet_exprs: Any) -> None:
        message = failure_message(
            headline=headline, stats=stats, actual=actual, expected=expected, diagnosis=diagnosis,
            tolerance_source=self.tolerance.source,
            snippet=snippet_for(ckpt_path=self.ckpt_source.path, target=self.source.display, case=case, stats=stats,
                                kwargs=self.snippet_kwargs, **snippet_exprs))
        pytest.fail(message + extra, pytrace=False)


@pytest.fixture(scope="session")
def parity_cases(convnextpose_implementation, convnextpose_golden_for_ckpt, convnextpose_sample_inputs):
    return build_cases(convnextpose_implementation, convnextpose_golden_for_ckpt,
                       tuple(convnextpose_sample_inputs.shape[2:]))


@pytest.fixture(scope="session")
def output_cache():
    """(implementation, checkpoint, case) -> the implementation's output on that case: every test that
    needs it gets the same run (ports can be slow: float16 on a CPU, a NumPy port)."""
    return {}


@pytest.fixture(scope="session")
def diagnosis_hints():
    """(implementation, checkpoint) -> the cause found on an earlier batch: tried first on the next."""
    return {}


@pytest.fixture
def subject(request, convnextpose_implementation, convnextpose_impl_source, convnextpose_ckpt,
            convnextpose_ckpt_source, convnextpose_ref_model, convnextpose_impl_tolerance, parity_cases,
            output_cache) -> Subject:
    opts = state(request.config).options
    return Subject(convnextpose_implementation, convnextpose_impl_source, convnextpose_ckpt, convnextpose_ckpt_source,
                   convnextpose_ref_model, convnextpose_impl_tolerance, load_kwargs(opts.joints, opts.head_upsample),
                   parity_cases, output_cache)


@pytest.fixture
def case_of(subject, convnextpose_golden_for_ckpt):
    """Look up an input case by name; golden and second-size ones skip (with the reason) when unusable."""

    def get(name):
        why = None
        if name.startswith("golden"):
            why = golden_unusable(subject.impl, convnextpose_golden_for_ckpt, subject.ckpt_source.id)
        elif name == OTHER_SIZE:
            why = other_size_unusable(subject.impl)
        if why:
            pytest.skip(why)
        return subject.cases[name]

    return get


def test_output_is_float32_batch_by_joints_by_3(subject):
    impl = subject.impl
    raws = []  # the implementation's own return value, for its dtype (one run serves both checks)

    def run(x):
        raws.append(impl.raw(x))
        return to_numpy(raws[-1])

    out = subject.run(subject.cases["seeded"], call=run)
    raw = raws[-1] if raws else impl.raw(subject.cases["seeded"].images)
    if not is_float32(raw):
        pytest.fail(f"{impl.name}: output dtype {dtype_name(raw)}, expected float32", pytrace=False)
    if not np.isfinite(out).all():
        pytest.fail(f"{impl.name}: {int((~np.isfinite(out)).sum())} non-finite output values on seeded inputs",
                    pytrace=False)


@pytest.mark.parametrize("case_name", ["seeded", "seeded-flipped", "golden", "golden-flipped", OTHER_SIZE])
def test_matches_reference_model(case_name, case_of, subject, diagnosis_hints, convnextpose_pictures):
    case = case_of(case_name)
    expected = run_reference(subject.ref_model, case.images)
    actual = subject.run(case)
    stats = subject.compare(actual, expected)
    if stats.ok:
        return
    impl, spec = subject.impl, subject.ckpt.spec
    diagnosis = subject.size_cause(case.images)
    if diagnosis is None:
        key = (subject.source, subject.ckpt_source.id)
        diag = diagnose_network(subject.ref_model, spec, case.images, actual, expected, subject.tolerance.atol,
                                impl=impl, state_dict=subject.ckpt.state_dict, hint=diagnosis_hints.get(key))
        if diag.mistake is not None and diag.exact:
            diagnosis_hints[key] = diag.mistake.name
        diagnosis = diag.text()
    b, _, h, w = case.images.shape
    worst = stats.worst_sample
    picture = convnextpose_pictures.compare(
        expected[worst], actual[worst], labels=("reference", impl.name),
        title=f"'{case.name}' image {worst}: worst joint {stats.worst_joint_name}, "
              f"largest coordinate error {stats.max_abs:.3g} cells")
    subject.fail(f"{impl.name} differs from the reference model on the '{case.name}' inputs "
                 f"({b} images {h}x{w}{impl.axes_note}) of {subject.ckpt_source.id}",
                 stats, actual, expected, diagnosis, case, extra=f"\n{picture}")


def test_batch_result_equals_single_image_results(subject):
    case = subject.cases["seeded"]
    batched = subject.run(case)
    singles = np.concatenate([subject.outputs(case.images[i:i + 1], f"image {i} of the 'seeded' inputs alone")
                              for i in range(case.images.shape[0])])
    stats = subject.compare(batched, singles)
    if stats.ok:
        return
    subject.fail(f"{subject.impl.name}: the output for an image depends on the rest of its batch "
                 f"({subject.ckpt_source.id}); 'expected' is the image run alone",
                 stats, batched, singles,
                 "likely cause: statistics taken over the batch (BatchNorm in train mode, or a softmax or "
                 "normalisation across the batch axis); use the stored running mean/var", case,
                 expected_expr="np.concatenate([impl(x[i:i + 1]) for i in range(len(x))])")


@pytest.mark.parametrize("case_name", ["seeded", "golden"])
def test_flip_test_matches_reference(case_name, case_of, subject):
    """The implementation's own `flip_test` if it has one, else the authors' flip test around it."""
    impl, spec = subject.impl, subject.ckpt.spec
    if spec.joint_num not in (17, 18):
        pytest.skip(f"flip pairs are known for the Human3.6M joint sets (17, 18), not {spec.joint_num} joints")
    case = case_of(case_name)
    expected = reference_flip_test(subject.ref_model, spec, case.images)
    own = impl.has_flip_test
    if own:
        actual = subject.outputs(case.images, f"the '{case.name}' inputs (flip_test)", call=impl.flip_test)
    else:  # the parity cases hold each batch and its horizontal flip
        coords, flipped = subject.run(case), subject.run(subject.cases[f"{case.name}-flipped"])
        actual = composed_flip_test(impl, spec, case.images, coords=coords, flipped=flipped)
    stats = subject.compare(actual, expected)
    if stats.ok:
        return
    diag = subject.size_cause(case.images)
    if own and diag is None:
        diag = flip_diagnosis(impl, spec, case.images, actual, subject.tolerance.atol, coords=subject.run(case),
                              flipped=subject.run(subject.cases[f"{case.name}-flipped"]))
    what = "its flip_test" if own else "the authors' flip test around it"
    subject.fail(f"{impl.name}: {what} differs from the reference flip test on the '{case.name}' inputs of "
                 f"{subject.ckpt_source.id}", stats, actual, expected,
                 diag or "see test_matches_reference_model on the flipped inputs for the network itself", case,
                 **flip_snippet_exprs(spec, case.images, own))
