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
    from django.apps import apps

    panels = getattr(settings, "DEBUG_TOOLBAR_PANELS", None)
    if (panels is not None and PANEL_PATH in panels) or not apps.is_installed("debug_toolbar"):
        return []  # shown, or no toolbar to show it in (detect() and test mode only)
    where = (
        "DEBUG_TOOLBAR_PANELS is not set, so django-debug-toolbar uses its default panels, which do not include it"
        if panels is None else "its panel is not in DEBUG_TOOLBAR_PANELS"
    )
    return [
        Warning(
            f"ddt_prefetch_panel is installed but {where}.",
            hint=f'Set DEBUG_TOOLBAR_PANELS = [*PANELS_DEFAULTS, "{PANEL_PATH}"] '
            "(from debug_toolbar.settings import PANELS_DEFAULTS), "
            "or remove the app if you only use detect() and test mode.",
            id="ddt_prefetch_panel.W001",
        )
    ]


@register(Tags.compatibility)
def check_hooks_installed(app_configs: Any = None, **kwargs: Any) -> list:
    """A Django release renamed or changed a patched target: name what is off, keep running."""
    import django

    from .hooks import HOOKS, disabled_hooks, hook_failures

    detects = {spec.name: spec.detects for spec in HOOKS}
    hint = "Everything else keeps working. Upgrade ddt-prefetch-panel, or report the Django version."
    return [
        Warning(
            f"ddt_prefetch_panel could not hook {name} on Django {django.get_version()} ({reason}); "
            f"the panel cannot see {detects.get(name, 'what this hook observes')}.",
            hint=hint,
            id="ddt_prefetch_panel.W002",
        )
        for name, reason in disabled_hooks().items()
        if not reason.endswith("is not in INSTALLED_APPS")
    ] + [
        Warning(
            f"ddt_prefetch_panel's hook on {name} failed on Django {django.get_version()} ({reason}) and "
            f"skipped its own work for that call; the panel may miss {detects.get(name, 'what this hook observes')}.",
            hint=hint,
            id="ddt_prefetch_panel.W002",
        )
        for name, reason in hook_failures().items()
    ]


# The toolbar's own view (its panel content) and ours (the "All requests" tab), by URL name
# under the toolbar's namespace.
TOOLBAR_URL_NAMES = ("render_panel", "ddtpp_session")


@register(Tags.urls)
def check_toolbar_urls(app_configs: Any = None, **kwargs: Any) -> list:
    """A toolbar URL that a project pattern listed before it (a catch-all page router) answers
    instead: the panel cannot be opened. Silent where the toolbar's URLs are not routed at all
    (the toolbar says so itself) and where the URLconf cannot be loaded (Django reports that)."""
    shadowed = []
    for name in TOOLBAR_URL_NAMES:
        try:
            found = _shadowing_view(f"djdt:{name}")
        except Exception:  # an URLconf that does not import or resolve is not ours to report
            return []
        if found:
            shadowed.append(found)
    if not shadowed:
        return []
    answered = "; ".join(f"{url} is answered by {view}" for url, view in shadowed)
    return [
        Warning(
            f"Toolbar URLs reach a project view instead of the toolbar ({answered}): a URL pattern "
            "listed before debug_toolbar_urls() matches them, so the panel cannot be opened.",
            hint="Put debug_toolbar_urls() before any catch-all pattern in ROOT_URLCONF: "
            "urlpatterns = [*debug_toolbar_urls(), ...].",
            id="ddt_prefetch_panel.W003",
        )
    ]


def _shadowing_view(view_name: str) -> tuple[str, str] | None:
    """(URL, dotted view) when ``view_name`` reverses to a URL that resolves to another view."""
    from django.urls import NoReverseMatch, Resolver404, get_script_prefix, resolve, reverse

    try:
        url = reverse(view_name)
    except NoReverseMatch:
        return None
    prefix = get_script_prefix()
    path = "/" + url[len(prefix):] if url.startswith(prefix) else url
    try:
        match = resolve(path)
    except Resolver404:
        return url, "no view (404)"
    if match.view_name == view_name:
        return None
    func = getattr(match.func, "view_class", match.func)
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    return url, f"{module}.{qualname}" if module and qualname else repr(func)


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
