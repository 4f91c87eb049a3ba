"""The exit codes of every `convnextpose` subcommand (docs/spec.md, "The contract").

0 done and consistent; 1 the checkpoint loaded but has problems (nothing written);
2 refused: unreadable, corrupt, hostile, foreign or ambiguous input, an output that exists
without --force, a bad option; 3 our own failure: a written copy failed verification, or
an internal error. With several files, the worst (highest) code wins.
"""
from __future__ import annotations

from typing import Iterable

OK, PROBLEMS, REFUSED, FAILED = 0, 1, 2, 3

#: `ConversionReport.status` -> exit code (convert and export)
STATUS_CODES = {"converted": OK, "exported": OK, "problems": PROBLEMS, "refused": REFUSED, "exists": REFUSED,
                "failed": FAILED}


def worst(codes: Iterable[int]) -> int:
    """The exit code of a batch: the highest of its files' codes (0 for none)."""
    return max(codes, default=OK)
