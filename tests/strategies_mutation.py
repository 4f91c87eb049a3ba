"""Hypothesis strategies that mutate legitimate checkpoint bytes, and the fuzz loop's bookkeeping.

A mutation is a short list of edits applied in order: bit flips, truncation, zeroed spans,
splices (bytes from another file, including hostile payloads, inserted or overwritten) and
duplicated spans. The outcome of reading a mutant must be a load or a `CheckpointError`.

Long profile (>= 10,000 cases): `CONVNEXTPOSE_FUZZ_LONG=1 CONVNEXTPOSE_FUZZ_REPORT=out.json
python -m pytest tests/test_security_fuzz.py -p no:cacheprovider -q` (see SECURITY.md).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import strategies as st

LONG = os.environ.get("CONVNEXTPOSE_FUZZ_LONG") == "1"
#: examples per container: fast profile for the normal run, long profile on demand
EXAMPLES = int(os.environ.get("CONVNEXTPOSE_FUZZ_EXAMPLES", "1700" if LONG else "120"))


@dataclass(frozen=True)
class Edit:
    kind: str  # flip | truncate | zero | splice | overwrite | duplicate
    pos: float  # relative position in [0, 1)
    arg: int = 0
    donor: bytes = b""


def edits(donors: list[bytes]) -> st.SearchStrategy[list[Edit]]:
    pos = st.floats(0, 1, exclude_max=True, allow_nan=False)
    flip = st.builds(Edit, st.just("flip"), pos, st.integers(0, 7))
    trunc = st.builds(Edit, st.just("truncate"), pos)
    zero = st.builds(Edit, st.just("zero"), pos, st.integers(1, 64))
    dup = st.builds(Edit, st.just("duplicate"), pos, st.integers(1, 256))
    donor = st.sampled_from(donors).flatmap(
        lambda d: st.tuples(st.integers(0, max(len(d) - 1, 0)), st.integers(1, 512)).map(
            lambda ab: d[ab[0] : ab[0] + ab[1]]
        )
    )
    splice = st.builds(Edit, st.sampled_from(["splice", "overwrite"]), pos, st.just(0), donor)
    return st.lists(st.one_of(flip, flip, trunc, zero, dup, splice), min_size=1, max_size=4)


def apply(data: bytes, mutation: list[Edit]) -> bytes:
    out = bytearray(data)
    for e in mutation:
        if not out:
            break
        i = int(e.pos * len(out))
        if e.kind == "flip":
            out[i] ^= 1 << e.arg
        elif e.kind == "truncate":
            del out[i:]
        elif e.kind == "zero":
            out[i : i + e.arg] = bytes(len(out[i : i + e.arg]))
        elif e.kind == "duplicate":
            out[i:i] = out[i : i + e.arg]
        elif e.kind == "splice":
            out[i:i] = e.donor
        else:  # overwrite
            out[i : i + len(e.donor)] = e.donor
    return bytes(out)


@dataclass
class Tally:
    """Figures for SECURITY.md: tried, loaded, refused by layer and family, crashes, executions."""

    tried: int = 0
    loaded: int = 0
    refused_by_layer: Counter = field(default_factory=Counter)
    refused_by_family: Counter = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)
    executed: int = 0
    slowest_s: float = 0.0
    peak_mb: float = 0.0
    legit_tried: int = 0
    legit_refused: int = 0
    disagreements: list[str] = field(default_factory=list)
    inspect_exits: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "files_tried": self.tried,
            "loaded": self.loaded,
            "refused_by_layer": dict(self.refused_by_layer),
            "refused_by_family": dict(self.refused_by_family),
            "crashes": len(self.crashes),
            "crash_examples": self.crashes[:5],
            "executed": self.executed,
            "slowest_case_s": round(self.slowest_s, 3),
            "peak_growth_one_case_mb": round(self.peak_mb, 1),
            "legitimate_tried": self.legit_tried,
            "legitimate_refused": self.legit_refused,
            "disagreements": len(self.disagreements),
            "disagreement_examples": self.disagreements[:5],
            "inspect_exits": dict(self.inspect_exits),
        }
