"""Progress bars for long work, honest in a terminal and quiet in a log.

tqdm redraws one line with `\r` frames; written to a file or a CI log that becomes one
line per update. So a bar is drawn only when stderr is a terminal; otherwise the work runs
without one (the command's own summary says what happened).
"""

from __future__ import annotations

import sys
from typing import Any, Iterable


def progress_bar(
    iterable: Iterable[Any], *, desc: str, unit: str, disable: bool = False, total: int | None = None
) -> Any:
    """A tqdm bar on stderr, disabled when asked or when stderr is not a terminal."""
    from tqdm import tqdm

    interactive = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    return tqdm(
        iterable,
        desc=desc,
        unit=unit,
        total=total,
        file=sys.stderr,
        disable=disable or not interactive,
        dynamic_ncols=True,
    )
