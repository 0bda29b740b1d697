"""Settings for ``tests/benchmarks/bench.py``: the demo's ``shop`` models, in-memory SQLite.

Only what a request through django-debug-toolbar needs, so the measured path is the
toolbar, its panels and the view, not unrelated middleware. ``bench.py`` switches
``MIDDLEWARE`` and ``DEBUG_TOOLBAR_PANELS`` per configuration at run time.
"""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent
SECRET_KEY = "benchmark-only"
DEBUG = True  # as on a development server, where the toolbar runs
ALLOWED_HOSTS = ["*"]
INTERNAL_IPS = ["127.0.0.1"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "debug_toolbar",
    "ddt_prefetch_panel",
    "shop",
]

TOOLBAR_MIDDLEWARE = ["debug_toolbar.middleware.DebugToolbarMiddleware"]
MIDDLEWARE = list(TOOLBAR_MIDDLEWARE)

ROOT_URLCONF = "tests.benchmarks.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    },
]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"

# Every panel any configuration uses, so debug_toolbar.urls (built once) knows all their URLs.
DEBUG_TOOLBAR_PANELS = [
    "debug_toolbar.panels.sql.SQLPanel",
    "ddt_prefetch_panel.panel.PrefetchPanel",
]
DEBUG_TOOLBAR_CONFIG = {
    "SHOW_TOOLBAR_CALLBACK": "tests.benchmarks.urls.always_show",
    "IS_RUNNING_TESTS": False,
    "TOOLBAR_STORE_CLASS": "debug_toolbar.store.MemoryStore",
    # RENDER_PANELS: DDT's default (None: panels are fetched later, not rendered in the page).
}
