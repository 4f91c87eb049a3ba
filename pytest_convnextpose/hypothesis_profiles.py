"""Hypothesis profiles for the property tests of the conformance suite.

Registered when the plugin loads; chosen with Hypothesis' own `--hypothesis-profile NAME`.
The suite does not change the *global* profile (that would change the behaviour of a
user's other Hypothesis tests); instead its tests are decorated with `suite_settings()`,
which uses the profile the user picked if it is one of ours, else `convnextpose-dev`.
"""
from __future__ import annotations

from hypothesis import HealthCheck, settings

DEV, CI, THOROUGH = "convnextpose-dev", "convnextpose-ci", "convnextpose-thorough"
DEFAULT_PROFILE = DEV
PROFILES = (DEV, CI, THOROUGH)

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]


def register_profiles() -> None:
    """dev: quick local feedback; ci: more examples, derandomized (reproducible in CI);
    thorough: many examples for a release check. No deadlines: model builds vary in time."""
    settings.register_profile(DEV, max_examples=8, deadline=None, suppress_health_check=_SLOW_OK)
    settings.register_profile(CI, max_examples=20, deadline=None, derandomize=True, print_blob=True,
                              suppress_health_check=_SLOW_OK)
    settings.register_profile(THOROUGH, max_examples=200, deadline=None, print_blob=True,
                              suppress_health_check=_SLOW_OK)


def active_profile_name() -> str:
    """The user's profile if it is one of ours, else the default (`convnextpose-dev`)."""
    current = settings.get_current_profile_name()
    return current if current in PROFILES else DEFAULT_PROFILE


def suite_settings() -> settings:
    """Settings object for a suite test (evaluated when the test module is imported)."""
    register_profiles()
    return settings.get_profile(active_profile_name())
