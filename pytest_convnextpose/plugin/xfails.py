"""Expectation files (`--xfails-file FILE`): known failures, each with a reason.

Why: a port that is known to differ in one place (say, no flip test yet) should still
gate every other check in CI, and the known gap should be written down where reviewers
see it. Format, one entry per line:

    # comment lines and blank lines are ignored
    conformance/test_impl.py::test_flip_test_matches_reference   # our port has no flip test yet (#123)
    test_baseline.py::test_architecture_matches_baseline[         # head widened on purpose in PR 42

An entry is a test id *prefix*, then `#` (with whitespace before it), then a reason,
which is required. A prefix matches a test when the test's node id starts with it,
either as pytest prints it or counted from the test file's folder name or from the
test file name (so `conformance/test_impl.py::...` and `test_impl.py::...` both work
wherever the suite is installed). Matching tests are marked `xfail` (not strict: a
fixed test shows up as XPASS). An entry that matches no collected test is reported
as a warning, so stale entries do not pile up.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional


class XfailsFileError(ValueError):
    """The expectation file cannot be used; the message names file and line."""


@dataclass
class XfailEntry:
    prefix: str
    reason: str
    source: str  # "FILE:LINE", shown in the xfail reason and in warnings
    matched: int = field(default=0, compare=False)


def parse_line(line: str) -> tuple[str, str] | None:
    """`prefix  # reason` -> (prefix, reason); None for blank and comment lines; ValueError otherwise."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    cut = next((i for i, ch in enumerate(text) if ch == "#" and i > 0 and text[i - 1] in " \t"), None)
    if cut is None:
        raise ValueError("missing reason: write `<test id prefix>  # <why it is expected to fail>`")
    prefix, reason = text[:cut].strip(), text[cut + 1:].strip()
    if not reason:
        raise ValueError("empty reason after '#': say why the test is expected to fail")
    if any(ch.isspace() for ch in prefix):
        raise ValueError(f"test id prefix {prefix!r} contains whitespace")
    return prefix, reason


def parse_text(text: str, name: str = "<xfails>") -> list[XfailEntry]:
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            parsed = parse_line(line)
        except ValueError as exc:
            raise XfailsFileError(f"{name}:{number}: {exc}") from None
        if parsed is not None:
            entries.append(XfailEntry(parsed[0], parsed[1], f"{name}:{number}"))
    return entries


def read_file(path: str | Path) -> list[XfailEntry]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise XfailsFileError(f"{path}: cannot read the xfails file: {exc}") from None
    return parse_text(text, str(path))


def id_forms(nodeid: str, file: Optional[Path] = None) -> list[str]:
    """The node id as printed, from its file's parent folder, and from its file name.

    `file`: the test file on disk. The printed id depends on pytest's rootdir (run from a user's
    folder, the installed suite's ids are `test_impl.py::...`), the file does not."""
    path, sep, rest = nodeid.partition("::")
    parts = Path(path).parts if file is None else Path(file).parts
    forms = [nodeid]
    if len(parts) >= 2:
        forms.append("/".join(parts[-2:]) + sep + rest)
    if parts:
        forms.append(parts[-1] + sep + rest)
    return forms


def matching(entries: Iterable[XfailEntry], nodeid: str, file: Optional[Path] = None) -> list[XfailEntry]:
    forms = id_forms(nodeid, file)
    return [e for e in entries if any(f.startswith(e.prefix) for f in forms)]


def unmatched(entries: Iterable[XfailEntry]) -> list[XfailEntry]:
    return [e for e in entries if e.matched == 0]
