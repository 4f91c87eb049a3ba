"""Hypothesis profiles for the property tests of the conformance suite.

Chosen with Hypothesis' own `--hypothesis-profile NAME`. Registered by the plugin at
configure time only when that option names one of ours (before Hypothesis' own
`pytest_configure` loads it), and by `suite_settings()` whenever a suite module is imported:
a pytest run that never uses the suite does not import Hypothesis because of this plugin.
The suite does not change the *global* profile (that would change the behaviour of a
user's other Hypothesis tests); instead its tests are decorated with `suite_settings()`,
which uses the profile the user picked if it is one of ours, else `convnextpose-dev`.

Storage: Hypothesis keeps its example database and caches under `.hypothesis/` in the
current directory. A run of the conformance suite (`pytest --ckpt=X` from anywhere) moves
that into pytest's cache folder (`.pytest_cache/d/convnextpose-hypothesis`, so failing
examples are still replayed next time), or into a temporary folder removed at the end
under `-p no:cacheprovider`, unless the user chose a place (`HYPOTHESIS_STORAGE_DIRECTORY`,
or `hypothesis.configuration.set_hypothesis_home_dir` in a conftest).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from hypothesis import settings

DEV, CI, THOROUGH = "convnextpose-dev", "convnextpose-ci", "convnextpose-thorough"
DEFAULT_PROFILE = DEV
PROFILES = (DEV, CI, THOROUGH)


def register_profiles() -> None:
    """dev: quick local feedback; ci: more examples, derandomized (reproducible in CI);
    thorough: many examples for a release check. No deadlines: model builds vary in time."""
    from hypothesis import HealthCheck, settings

    slow_ok = [HealthCheck.too_slow, HealthCheck.data_too_large]
    settings.register_profile(DEV, max_examples=8, deadline=None, suppress_health_check=slow_ok)
    settings.register_profile(CI, max_examples=20, deadline=None, derandomize=True, print_blob=True,
                              suppress_health_check=slow_ok)
    settings.register_profile(THOROUGH, max_examples=200, deadline=None, print_blob=True,
                              suppress_health_check=slow_ok)


def register_if_selected(config: Any) -> None:
    """Register our profiles when `--hypothesis-profile` names one of them (else Hypothesis'
    own configure would reject the name); otherwise leave Hypothesis unimported."""
    if config.getoption("--hypothesis-profile", None) in PROFILES:
        register_profiles()


def active_profile_name() -> str:
    """The user's profile if it is one of ours, else the default (`convnextpose-dev`)."""
    from hypothesis import settings

    current = settings.get_current_profile_name()
    return current if current in PROFILES else DEFAULT_PROFILE


def suite_settings() -> settings:
    """Settings object for a suite test (evaluated when the test module is imported)."""
    from hypothesis import settings

    register_profiles()
    return settings.get_profile(active_profile_name())


HOME_ENV = "HYPOTHESIS_STORAGE_DIRECTORY"
CACHE_SUBDIR = "convnextpose-hypothesis"


def _current_home() -> tuple[Optional[Path], Optional[Path]]:
    """(home set so far or None, Hypothesis' default `<cwd at import>/.hypothesis`).

    Hypothesis has no public getter; its module globals are read defensively, so a future
    Hypothesis without them just means "not set" (we then choose the folder)."""
    import hypothesis.configuration as hc

    return getattr(hc, "__hypothesis_home_directory", None), getattr(hc, "__hypothesis_home_directory_default", None)


def keep_storage_out_of_cwd(config: Any) -> None:
    """Point Hypothesis' storage at pytest's cache folder (or a temporary one) for this run;
    the previous setting comes back when the run ends. No-op when the user chose a folder."""
    from hypothesis.configuration import set_hypothesis_home_dir

    if os.environ.get(HOME_ENV):
        return
    current, default = _current_home()
    if current is not None and current != default:
        return  # set by the user's own code: theirs to keep
    cache = getattr(config, "cache", None)
    if cache is not None:
        home = Path(cache.mkdir(CACHE_SUBDIR))
    else:
        home = Path(tempfile.mkdtemp(prefix="convnextpose-hypothesis-"))
        config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))
    set_hypothesis_home_dir(home)
    config.add_cleanup(lambda: set_hypothesis_home_dir(current))
