"""Human3.6M accuracy (docs/spec.md §6): the checkpoint, evaluated with the authors' protocol, must
not be worse than its published figure by more than `--mpjpe-tolerance` (default 1 mm).

Skipped without `--h36m-root`. Custom architectures and subsets (`--max-frames`) are
reported, never gated: there is no published figure for them to meet. A data problem (an
unreadable annotation, a missing image, a malformed predictions file) fails the test with
the one line that names the file, not a traceback through the evaluation's internals.
"""

from __future__ import annotations

import pytest

from pytest_convnextpose.plugin.accuracy import record_result

pytestmark = pytest.mark.accuracy


def _evaluated(run):
    """`run()`'s result; a data error fails the test with its message alone (it names the file)."""
    from pytest_convnextpose.h36m import H36MDataError

    try:
        return run()
    except H36MDataError as exc:
        message = f"Human3.6M data error: {exc}"
    pytest.fail(message, pytrace=False)  # outside the handler: no "during handling" chain


def _judge(request, label: str, result, variant, opts) -> None:
    from pytest_convnextpose.h36m.gate import judge

    verdict = judge(label, result, variant, tolerance_mm=opts.tolerance_mm, max_frames=opts.max_frames)
    record_result(request.config, label, result, verdict)
    if not verdict.passed:
        pytest.fail(verdict.failure, pytrace=False)


def test_h36m_error_within_published_figure(
    request, convnextpose_ckpt, convnextpose_ckpt_source, convnextpose_torch_device, convnextpose_h36m_options
):
    opts = convnextpose_h36m_options
    if not opts.enabled:
        pytest.skip("no Human3.6M data: pass --h36m-root DIR (the authors' annotation layout)")
    if opts.preds is not None:
        pytest.skip("--h36m-preds given: the predictions file is scored by test_h36m_predictions_file")
    from pytest_convnextpose.h36m import evaluate_checkpoint

    result = _evaluated(
        lambda: evaluate_checkpoint(
            convnextpose_ckpt,
            opts.root,
            device=convnextpose_torch_device,
            protocol=opts.protocol,
            use_flip_test=opts.flip_test,
            bbox_source=opts.bbox_source,
            rootnet_file=opts.rootnet_file,
            max_frames=opts.max_frames,
            batch_size=opts.batch_size,
            workers=opts.workers,
        )
    )
    _judge(request, convnextpose_ckpt_source.id, result, convnextpose_ckpt.variant, opts)


def test_h36m_predictions_file(request, convnextpose_h36m_options):
    opts = convnextpose_h36m_options
    if opts.preds is None:
        pytest.skip("no predictions file: pass --h36m-preds FILE with --h36m-root DIR")
    from pytest_convnextpose.h36m import score_predictions_file

    result = _evaluated(
        lambda: score_predictions_file(
            opts.preds,
            opts.root,
            protocol=opts.protocol,
            bbox_source=opts.bbox_source,
            rootnet_file=opts.rootnet_file,
            max_frames=opts.max_frames,
            aligned=opts.preds_aligned,
        )
    )
    _judge(request, opts.preds.stem, result, opts.preds_variant, opts)
