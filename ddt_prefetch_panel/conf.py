"""Settings: one dict, ``DDT_PREFETCH_PANEL``, shared by the panel, ``detect()`` and test mode."""

from __future__ import annotations

from typing import Any

from django.conf import settings

SETTING_NAME = "DDT_PREFETCH_PANEL"

DEFAULTS: dict[str, Any] = {
    # A group of similar statements from one call site is an N+1 from this many repeats.
    "THRESHOLD": 2,
    # Finding kinds to report.
    "KINDS": ["n_plus_one", "duplicate", "missing_index", "unused_prefetch"],
    # Include parameter values and SQL literals in shared output (Markdown/JSON).
    "SHOW_PARAMS": False,
    # Statements kept per group for display (counts and durations stay exact).
    "SAMPLE_SIZE": 3,
    # Stack frames kept per finding.
    "MAX_FRAMES": 30,
}


def get_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    config = dict(DEFAULTS)
    user = getattr(settings, SETTING_NAME, None)
    if isinstance(user, dict):
        config.update(user)
    if overrides:
        config.update(overrides)
    return config
