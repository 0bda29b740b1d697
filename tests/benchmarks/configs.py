"""The benchmark's configurations: plain data, read by ``bench.py`` and by ``settings.py``.

Each worker process of the benchmark runs one configuration for its whole life, the way a
development server runs one settings module: ``settings.py`` reads the key from the
``DDTPP_BENCH_CONFIG`` environment variable and builds ``INSTALLED_APPS``, ``MIDDLEWARE`` and
``DEBUG_TOOLBAR_PANELS`` from the entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

TOOLBAR_MIDDLEWARE = "debug_toolbar.middleware.DebugToolbarMiddleware"
SQL_PANEL = "debug_toolbar.panels.sql.SQLPanel"
OUR_PANEL = "ddt_prefetch_panel.panel.PrefetchPanel"
# django-debug-toolbar 8's PANELS_DEFAULTS (debug_toolbar/settings.py); ProfilingPanel and
# RedirectsPanel are in its DISABLE_PANELS by default, so they stay off here too.
DDT_DEFAULT_PANELS = (
    "debug_toolbar.panels.history.HistoryPanel",
    "debug_toolbar.panels.versions.VersionsPanel",
    "debug_toolbar.panels.timer.TimerPanel",
    "debug_toolbar.panels.settings.SettingsPanel",
    "debug_toolbar.panels.headers.HeadersPanel",
    "debug_toolbar.panels.request.RequestPanel",
    SQL_PANEL,
    "debug_toolbar.panels.staticfiles.StaticFilesPanel",
    "debug_toolbar.panels.templates.TemplatesPanel",
    "debug_toolbar.panels.alerts.AlertsPanel",
    "debug_toolbar.panels.cache.CachePanel",
    "debug_toolbar.panels.signals.SignalsPanel",
    "debug_toolbar.panels.tasks.TasksPanel",
    "debug_toolbar.panels.community.CommunityPanel",
    "debug_toolbar.panels.redirects.RedirectsPanel",
    "debug_toolbar.panels.profiling.ProfilingPanel",
)
# Our README's install section: after DDT's SQL panel.
DEFAULT_PLUS_OURS = tuple(p for panel in DDT_DEFAULT_PANELS for p in ((panel, OUR_PANEL) if panel == SQL_PANEL else (panel,)))


@dataclass(frozen=True)
class Config:
    key: str
    label: str
    panels: tuple[str, ...] | None = None  # None: no toolbar middleware at all
    apps: tuple[str, ...] = ()  # extra INSTALLED_APPS
    middleware: tuple[str, ...] = ()  # extra MIDDLEWARE (after the toolbar's, if any)
    peer: str = ""  # "zeal" / "nplusone": the module that must be importable
    panel_settings: tuple[tuple[str, object], ...] = ()  # DDT_PREFETCH_PANEL entries

    @property
    def toolbar(self) -> bool:
        return self.panels is not None

    @property
    def ours(self) -> bool:
        return OUR_PANEL in (self.panels or ())

    @property
    def sql(self) -> bool:
        return SQL_PANEL in (self.panels or ())

    @property
    def panel_ids(self) -> list[str]:
        return [path.rsplit(".", 1)[1] for path in self.panels or ()]


EAGER = (("PROOF_MODE", "eager"),)
LAZY = (("PROOF_MODE", "lazy"),)  # the panel's default, named so the report says which it ran

CONFIGS: tuple[Config, ...] = (
    Config("none", "no toolbar"),
    Config("ddt", "DDT, no panels", panels=()),
    # Proofs with the request (PROOF_MODE="eager"), as measured before the lazy default: the
    # worst case, when every request's panel is opened. Lazy requests run like "proofs off".
    Config("ours", "ours alone", panels=(OUR_PANEL,), panel_settings=EAGER),
    # The same with the replay proofs off (DDT_PREFETCH_PANEL["PROOFS"] = False): what they cost.
    Config("ours-noproofs", "ours alone, proofs off", panels=(OUR_PANEL,), panel_settings=(("PROOFS", False),)),
    # The default: analysis without replays at request end, the capture held (lazy.py) until the
    # panel is opened, which a benchmark request never does.
    Config("ours-lazy", "ours alone, lazy proofs", panels=(OUR_PANEL,), panel_settings=LAZY),
    Config("sql", "DDT SQL panel alone", panels=(SQL_PANEL,)),
    Config("sql+ours", "SQL panel + ours", panels=(SQL_PANEL, OUR_PANEL), panel_settings=EAGER),
    Config("default", "DDT default panels", panels=DDT_DEFAULT_PANELS),
    Config("default+ours", "default panels + ours", panels=DEFAULT_PLUS_OURS, panel_settings=EAGER),
    Config("default+ours-noproofs", "default panels + ours, proofs off", panels=DEFAULT_PLUS_OURS,
           panel_settings=(("PROOFS", False),)),
    Config("default+ours-lazy", "default panels + ours, lazy proofs", panels=DEFAULT_PLUS_OURS, panel_settings=LAZY),
    # Peers, each enabled as its README says for development, outside the toolbar.
    Config("zeal", "django-zeal alone", apps=("zeal",), middleware=("zeal.middleware.zeal_middleware",), peer="zeal"),
    Config("nplusone", "nplusone alone", apps=("nplusone.ext.django",),
           middleware=("nplusone.ext.django.NPlusOneMiddleware",), peer="nplusone"),
)
BY_KEY = {c.key: c for c in CONFIGS}
