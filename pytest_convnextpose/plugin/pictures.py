"""pytest sub-plugin: a PNG of the worst image when an implementation or a baseline comparison fails.

Pictures are written next to the JSON report (`--conformance-report PATH` -> `PATH`'s folder,
`<report stem>.<test>.png`) and, when pytest-html is in use, into its report's folder and attached
to the failing test there. Without either there is nowhere a reader would look, so nothing is
drawn. matplotlib is optional (the `plots` extra): without it the failure says how to get one.
The picture's path is also a user property of the test (`convnextpose_picture`), so the JSON
report lists it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from .report import PICTURE_PROPERTY
from .state import state


@dataclass
class Pictures:
    """What a test uses to draw its failure (the `convnextpose_pictures` fixture)."""

    folder: Optional[Path]
    prefix: str
    node: Any

    def compare(self, expected: Any, actual: Any, *, title: str, labels: tuple[str, str] = ("reference", "candidate"),
                unit: str = "heatmap cells") -> str:
        """Draw one comparison; returns a line for the failure message (where it is, or why not)."""
        if self.folder is None:
            return "(a picture of this failure is written with --conformance-report or pytest-html's --html)"
        from ..implementations.figure import PlotsUnavailable, draw_comparison

        path = self.folder / f"{self.prefix}.{_slug(self.node.nodeid.partition('::')[2])}.png"
        try:
            draw_comparison(path, expected, actual, title=title, labels=labels, unit=unit)
        except PlotsUnavailable as exc:
            return f"(no picture: {exc})"
        self.node.user_properties.append((PICTURE_PROPERTY, str(path)))  # the JSON report and pytest-html read it
        return f"picture: {path}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:150]


def picture_folder(config: pytest.Config) -> tuple[Optional[Path], str]:
    """(folder, file-name prefix): beside the JSON report, else beside pytest-html's report, else (None, "")."""
    report = state(config).options.report_path
    if report is not None:
        return report.parent, report.stem
    html = getattr(config.option, "htmlpath", None)
    if html and config.pluginmanager.hasplugin("html"):
        path = Path(html).expanduser().absolute()
        return path.parent, path.stem
    return None, ""


@pytest.fixture
def convnextpose_pictures(request: pytest.FixtureRequest) -> Pictures:
    """Draw the reference and the candidate pose of a failing test (see `Pictures.compare`)."""
    folder, prefix = picture_folder(request.config)
    return Pictures(folder, prefix, request.node)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any):
    """Attach the test's pictures to pytest-html's report (its `extras`), when that plugin is in use."""
    outcome = yield
    paths = [Path(v) for k, v in item.user_properties if k == PICTURE_PROPERTY]
    if not paths or call.when != "call" or not item.config.pluginmanager.hasplugin("html"):
        return
    import base64

    from pytest_html import extras

    report = outcome.get_result()  # base64 content: embedded in a self-contained report, an asset otherwise
    report.extras = [*getattr(report, "extras", []),
                     *(extras.png(base64.b64encode(p.read_bytes()).decode("ascii"), name=p.name) for p in paths)]
