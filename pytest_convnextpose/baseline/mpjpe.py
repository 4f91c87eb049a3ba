"""MPJPE of candidate and baseline on Human3.6M, for `--baseline` with `--h36m-root`.

The Human3.6M evaluation (data loading, crops, protocol-2 MPJPE) is the `h36m` package's
job; this module asks it for one number per checkpoint and reports the difference, or a
clear reason why there is none. It never invents a figure.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

#: f(root, checkpoint) -> protocol-2 MPJPE in mm
Evaluator = Callable[[Any, Any], float]


def mpjpe_difference(root: Optional[str], candidate: Any, baseline: Any, *,
                     evaluate: Optional[Evaluator] = None) -> dict[str, Any]:
    """{computed, protocol, candidate_mm, baseline_mm, regression_mm}; or {computed: False, reason}
    without data, or {computed: False, error} when the data is broken. `evaluate` defaults to
    `h36m.evaluate_mpjpe` (tests pass a stand-in)."""
    if not root:
        return {"computed": False, "reason": "no --h36m-root given"}
    from ..h36m.annotations import H36MDataError
    from ..h36m.evaluate import evaluate_mpjpe

    evaluate = evaluate or evaluate_mpjpe
    try:
        cand = float(evaluate(root, candidate))
        base = float(evaluate(root, baseline))
    except H36MDataError as exc:  # the data is at fault, not the checkpoints: the gate fails with this line
        return {"computed": False, "error": f"Human3.6M data error: {exc}"}
    return {"computed": True, "protocol": 2, "candidate_mm": cand, "baseline_mm": base, "regression_mm": cand - base}
