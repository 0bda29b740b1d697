"""Django system checks for the settings and the toolbar integration."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from .conf import SETTING_NAME, setting_errors

PANEL_PATH = "ddt_prefetch_panel.panel.PrefetchPanel"
HINTS = {
    "E001": f"See the settings table in the README; {SETTING_NAME} is a dict of known keys.",
    "E002": 'Allowlist entries look like {"relation": "shop.Order.*"} or {"callsite": "*/legacy/*"}.',
    "E003": "Check the app label, model and field names (patterns use fnmatch: *, ?, [..]).",
}


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list:
    values = getattr(settings, SETTING_NAME, None)
    if values is None:
        return []
    return [
        Error(message, hint=HINTS.get(code), id=f"ddt_prefetch_panel.{code}")
        for code, message in setting_errors(values)
    ]


@register(Tags.compatibility)
def check_panel_configured(app_configs: Any = None, **kwargs: Any) -> list:
    panels = getattr(settings, "DEBUG_TOOLBAR_PANELS", None)
    if panels is None or PANEL_PATH in panels:
        return []
    return [
        Warning(
            "ddt_prefetch_panel is installed but its panel is not in DEBUG_TOOLBAR_PANELS.",
            hint=f'Add "{PANEL_PATH}" to DEBUG_TOOLBAR_PANELS (after the SQL panel), '
            "or remove the app if you only use detect() and test mode.",
            id="ddt_prefetch_panel.W001",
        )
    ]


def panel_checks() -> list:
    """Run by django-debug-toolbar for each configured panel (even when the app is missing)."""
    from django.apps import apps

    if apps.is_installed("ddt_prefetch_panel"):
        return []
    return [
        Error(
            f"{PANEL_PATH} is in DEBUG_TOOLBAR_PANELS but 'ddt_prefetch_panel' is not in INSTALLED_APPS.",
            hint="Add 'ddt_prefetch_panel' to INSTALLED_APPS: it installs the ORM hooks and ships the "
            "panel's templates and static files.",
            id="ddt_prefetch_panel.E004",
        )
    ]
