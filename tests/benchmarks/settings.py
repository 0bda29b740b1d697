"""Settings of one benchmark worker (``tests/benchmarks/bench.py --worker KEY``).

A worker is a long-lived process serving one configuration, like a development server with
one settings module: ``DDTPP_BENCH_CONFIG`` names the configuration (``configs.py``),
``DDTPP_BENCH_DATA`` the data set (``synthetic``: the N+1 loops of ``urls.py``, one per loop shape; ``demo``:
the demo pizzeria's pages and a DRF API with nested serializers). In-memory SQLite; only
the middleware a configuration needs, so what is measured is the tool, its panels and the
view. DDT's store and its ``RESULTS_CACHE_SIZE`` are left at their defaults, as a dev server
keeps them.
"""

import importlib.util
import logging
import os
import warnings
from pathlib import Path

from tests.benchmarks.configs import BY_KEY, TOOLBAR_MIDDLEWARE

CONFIG = BY_KEY[os.environ.get("DDTPP_BENCH_CONFIG", "ours")]
DATA = os.environ.get("DDTPP_BENCH_DATA", "synthetic")
HAS_DRF = importlib.util.find_spec("rest_framework") is not None

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
    *(["debug_toolbar", "ddt_prefetch_panel"] if CONFIG.toolbar else []),
    *(["rest_framework"] if HAS_DRF else []),
    *CONFIG.apps,
    "shop",
]
MIDDLEWARE = [*([TOOLBAR_MIDDLEWARE] if CONFIG.toolbar else []), *CONFIG.middleware]

ROOT_URLCONF = "tests.benchmarks.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "tests" / "benchmarks" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    },
]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"

if CONFIG.toolbar:
    DEBUG_TOOLBAR_PANELS = list(CONFIG.panels)
    DEBUG_TOOLBAR_CONFIG = {
        # DDT's default callback also accepts REMOTE_ADDR 127.0.0.1 (INTERNAL_IPS); this one
        # skips its Docker host-name lookup, the same constant for every toolbar configuration.
        "SHOW_TOOLBAR_CALLBACK": "tests.benchmarks.urls.always_show",
        # The smoke test runs under pytest; the benchmark is a dev server, not a test run.
        "IS_RUNNING_TESTS": False,
        # Everything else at DDT's defaults: MemoryStore, RESULTS_CACHE_SIZE 25, RENDER_PANELS
        # None (panels fetched later, since the worker's environ says it is not multi-process).
    }

if CONFIG.panel_settings:
    DDT_PREFETCH_PANEL = dict(CONFIG.panel_settings)

if HAS_DRF:
    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": [],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
        "UNAUTHENTICATED_USER": None,
    }

# Peers, as their READMEs configure them for development, with their reports silenced.
if CONFIG.peer == "zeal":
    ZEAL_RAISE = False  # warn instead of raising; the warning category is ignored below
    warnings.filterwarnings("ignore", message=r"N\+1 detected", category=UserWarning)
if CONFIG.peer == "nplusone":
    NPLUSONE_RAISE = False
    NPLUSONE_LOGGER = logging.getLogger("nplusone")
    NPLUSONE_LOG_LEVEL = logging.WARN
    NPLUSONE_LOGGER.setLevel(logging.ERROR)  # its WARN messages are dropped
