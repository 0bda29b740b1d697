from __future__ import annotations

from pathlib import Path

from django.apps import AppConfig

_PACKAGE = Path(__file__).resolve().parent


def _asset_root() -> str:
    """Where ``templates/`` and ``static/`` live.

    A built wheel carries them inside the package; in a source checkout they stay at the
    repository's top level, so the app points Django's app-directory loaders there.
    """
    if (_PACKAGE / "templates" / "ddt_prefetch_panel").is_dir():
        return str(_PACKAGE)
    checkout = _PACKAGE.parent
    if (checkout / "templates" / "ddt_prefetch_panel").is_dir():
        return str(checkout)
    return str(_PACKAGE)


class PrefetchPanelConfig(AppConfig):
    name = "ddt_prefetch_panel"
    verbose_name = "Prefetch panel for django-debug-toolbar"
    default_auto_field = "django.db.models.BigAutoField"
    path = _asset_root()

    def ready(self) -> None:
        from . import capture, checks, hooks  # noqa: F401  (importing checks registers them)

        capture.prime_model_state()
        hooks.install()
