"""Lines for stderr, each written whole.

Python's stderr is write-through: `print(text, file=sys.stderr)` makes two writes, the text and
then the newline, so processes that share the stream (the ranks of `torchrun ... evaluate`) can
splice their messages into one line. One `write` of the whole line is one system call, and a
pipe never splits a write under PIPE_BUF (4096 bytes on Linux), so each line arrives whole.
"""
from __future__ import annotations

import sys

#: how much of an unforeseen exception's text an internal-error line keeps: enough to name the
#: failure, and the line stays well under PIPE_BUF (some exceptions carry pages of text)
MAX_DETAIL = 1000


def line(text: str) -> None:
    """`text` and its newline on stderr, in one write."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def error(message: object) -> None:
    """The one-line error every subcommand ends with when it refuses or fails."""
    line(f"convnextpose: error: {message}")
