"""The accuracy gate: a result against the published figure of its variant (docs/spec.md §2).

One definition for the pytest gate (`conformance/test_accuracy.py`) and `convnextpose
evaluate`, so both print and write the same verdict for the same result.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .evaluate import EvalResult


@dataclass(frozen=True)
class Verdict:
    """`text` is the JSON `verdict`; `failure` the one-line reason when the gate fails (else None)."""

    text: str
    failure: Optional[str] = None

    @property
    def passed(self) -> bool:
        return self.failure is None


def published_figure(variant: Optional[str], protocol: int) -> Optional[float]:
    """The paper's figure for `variant` under `protocol` (mm), or None when there is none."""
    from reference_model import VARIANTS

    if variant not in VARIANTS:
        return None
    v = VARIANTS[variant]
    return v.mpjpe_protocol2_mm if protocol == 2 else v.pa_mpjpe_protocol1_mm


def judge(label: str, result: EvalResult, variant: Optional[str], *, tolerance_mm: float,
          max_frames: Optional[int]) -> Verdict:
    """Gate `result` at published + `tolerance_mm`; custom architectures, variants without a
    figure for the protocol and subsets (`max_frames`) are reported, never gated."""
    protocol = result.protocol
    published = published_figure(variant, protocol)
    if published is None:
        why = "custom architecture" if variant is None else f"no published protocol {protocol} figure for {variant}"
        return Verdict(f"reported only ({why})")
    if max_frames is not None:
        return Verdict(f"reported only (--max-frames {max_frames}: a subset; published {published} mm)")
    limit = published + tolerance_mm
    if result.primary_mm <= limit:
        return Verdict(f"pass: limit {limit:.2f} mm = published {published} + {tolerance_mm}")
    metric = result.primary_metric
    worst = max(result.scores[metric]["per_group"].items(), key=lambda kv: kv[1])
    return Verdict(f"FAIL: limit {limit:.2f} mm = published {published} + {tolerance_mm}",
                   f"{label}: protocol {protocol} {metric} {result.primary_mm:.2f} mm exceeds the published "
                   f"{published} mm for {variant} by more than {tolerance_mm} mm (worst action {worst[0]} "
                   f"{worst[1]:.2f} mm, {result.num_samples} frames)")


def result_document(result: EvalResult, label: str, verdict: Verdict) -> dict:
    """The per-checkpoint JSON of `--h36m-results` and `convnextpose evaluate --out`."""
    return dict(result.to_dict(), label=label, verdict=verdict.text)
