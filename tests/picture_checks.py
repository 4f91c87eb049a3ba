"""What a failure picture must be, for the tests that make a comparison fail on purpose.

A failing `--impl`/`--onnx` parity test and a failing baseline drift test both promise the same
thing (docs/plugin.md, "Pictures"): one PNG next to the JSON report, its path in the failure
message and in the report's test entry, and the image attached to pytest-html's report.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest


def picture_options(folder: Path) -> tuple[Path, Path, list[str]]:
    """(JSON report path, pytest-html path, the command-line options naming them)."""
    report, html = folder / "out" / "report.json", folder / "html" / "report.html"
    return report, html, [f"--conformance-report={report}", f"--html={html}", "--self-contained-html"]


def require_picture_tools() -> None:
    pytest.importorskip("matplotlib", reason="pictures need the plots extra (matplotlib), part of the test extra")
    pytest.importorskip("pytest_html", reason="the pytest-html attachment needs pytest-html, part of the test extra")


def assert_one_picture(result: pytest.RunResult, report: Path, html: Path, test_name: str) -> None:
    """Exactly one PNG for the one failed test `test_name`: written, announced, listed and attached."""
    result.assert_outcomes(failed=1)
    (png,) = report.parent.glob(f"{report.stem}.{test_name}*.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    result.stdout.fnmatch_lines([f"*picture: {png}*"])
    checkpoints = json.loads(report.read_text())["checkpoints"]
    (entry,) = [t for c in checkpoints for t in c["tests"] if t["outcome"] == "failed"]
    assert entry["pictures"] == [str(png)]
    assert "data:image/png;base64," in html.read_text(), "the picture is not attached to the pytest-html report"
