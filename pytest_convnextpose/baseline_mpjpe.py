"""MPJPE of candidate and baseline on Human3.6M, for `--baseline` with `--h36m-root`.

Why separate: the Human3.6M evaluation (data loading, crops, protocol 2 MPJPE) belongs
to the accuracy work (`pytest_convnextpose.h36m`, `pytest_convnextpose.metrics`). This
module only asks it for one number per checkpoint and reports the difference, or a
clear reason why there is none; it never invents a figure.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Optional

#: the accuracy module's entry point, tried in order: f(root, checkpoint) -> MPJPE in mm (protocol 2)
_ENTRY_POINTS = (("pytest_convnextpose.h36m", "evaluate_mpjpe"),
                 ("pytest_convnextpose.h36m", "mpjpe_protocol2"))


def _evaluator() -> Optional[Callable[[Any, Any], float]]:
    for module, name in _ENTRY_POINTS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue
            raise
        fn = getattr(mod, name, None)
        if callable(fn):
            return fn
    return None


def mpjpe_difference(root: Optional[str], candidate: Any, baseline: Any) -> dict[str, Any]:
    """{computed, candidate_mm, baseline_mm, regression_mm}; or {computed: False, reason} when it
    cannot be computed (no data, no evaluator), or {computed: False, error} when the data is broken."""
    if not root:
        return {"computed": False, "reason": "no --h36m-root given"}
    evaluate = _evaluator()
    if evaluate is None:
        names = ", ".join(f"{m}.{n}" for m, n in _ENTRY_POINTS)
        return {"computed": False,
                "reason": f"the Human3.6M evaluator is not available in this installation (looked for {names})"}
    try:
        cand = float(evaluate(root, candidate))
        base = float(evaluate(root, baseline))
    except _data_errors() as exc:  # the data is at fault, not the checkpoints: the gate fails with this line
        return {"computed": False, "error": f"Human3.6M data error: {exc}"}
    return {"computed": True, "protocol": 2, "candidate_mm": cand, "baseline_mm": base, "regression_mm": cand - base}


def _data_errors() -> tuple[type[BaseException], ...]:
    try:
        from .h36m import H36MDataError
    except ModuleNotFoundError:
        return ()
    return (H36MDataError,)
