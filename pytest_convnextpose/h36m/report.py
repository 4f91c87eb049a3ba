"""Human-readable lines and tables of an `EvalResult` (pytest's summary, `convnextpose evaluate`)."""

from __future__ import annotations

from .evaluate import EvalResult

#: metric -> short name in the headline, in the order shown
METRIC_LABELS = {"mpjpe": "MPJPE", "pa_mpjpe_authors": "PA no-scale", "pa_mpjpe_scaled": "PA with scale"}


def headline(res: EvalResult) -> str:
    """`protocol 2, 548 frames: mpjpe 51.05 mm (MPJPE 51.05, PA no-scale 36.10, PA with scale 35.20)`."""
    others = ", ".join(f"{METRIC_LABELS.get(k, k)} {v['mean']:.2f}" for k, v in res.scores.items())
    return f"protocol {res.protocol}, {res.num_samples} frames: {res.primary_metric} {res.primary_mm:.2f} mm ({others})"


def per_action_line(res: EvalResult) -> str:
    return ", ".join(f"{a} {v:.2f}" for a, v in res.scores[res.primary_metric]["per_group"].items())


def per_action_table(res: EvalResult) -> str:
    """One row per action (the authors' names, first-seen order) and a total row; a column per metric, mm."""
    names = list(res.scores)
    actions = list(res.scores[res.primary_metric]["per_group"])
    width = max([len("action"), len("all"), *map(len, actions)])
    heads = [METRIC_LABELS.get(n, n) for n in names]
    cols = [max(len(h), 8) for h in heads]
    rows = [f"{'action':<{width}}  " + "  ".join(f"{h:>{c}}" for h, c in zip(heads, cols))]
    for a in actions:
        rows.append(
            f"{a:<{width}}  " + "  ".join(f"{res.scores[n]['per_group'][a]:>{c}.2f}" for n, c in zip(names, cols))
        )
    rows.append(f"{'all':<{width}}  " + "  ".join(f"{res.scores[n]['mean']:>{c}.2f}" for n, c in zip(names, cols)))
    return "\n".join(rows)
