"""Conformance suite conftest: everything here is marked `conformance`, and the suite is
skipped with a clear reason when the convnextpose plugin is disabled (`-p no:convnextpose`),
instead of erroring on missing fixtures."""
from __future__ import annotations

from pathlib import Path

import pytest

#: the registration name of the plugin's core (pytest_convnextpose.plugin.CORE_PLUGIN_NAME): a stable
#: name, not a module path, so moving modules inside the package cannot silently skip the suite
CORE_PLUGIN_NAME = "convnextpose.core"

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    enabled = config.pluginmanager.has_plugin(CORE_PLUGIN_NAME)
    skip = pytest.mark.skip(reason="the convnextpose plugin is disabled (-p no:convnextpose)")
    for item in items:
        if _HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.conformance)
            if not enabled:
                item.add_marker(skip)
