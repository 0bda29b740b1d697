"""Settings for the test suite: the demo's pizzeria models, the toolbar always shown."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "tests-only"
DEBUG = True
ALLOWED_HOSTS = ["*"]
INTERNAL_IPS = ["127.0.0.1"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "debug_toolbar",
    "ddt_prefetch_panel",
    "shop",
    # Shapes of real projects for replay proofs (tests/test_prove.py).
    "tests.proofs",
    # Models of the peer tools' test suites (tests/test_peer_cases.py).
    "tests.peers.social",
    "tests.peers.testapp",
    # Framework scenarios (tests/test_frameworks*.py): real DRF, GraphQL, taggit, modelcluster.
    "rest_framework",
    "graphene_django",
    "taggit",
    "tests.frameworks.catalog",
    "tests.frameworks.blog",
    # Where-to-act scenarios written from the docs (tests/places/, issue 20).
    "polymorphic",
    "mptt",
    "tests.places",
]

MIDDLEWARE = [
    "debug_toolbar.middleware.DebugToolbarMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "tests" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [],
        "APP_DIRS": True,  # each app's jinja2/ directory: the framework tests' and the demo's
    },
]

# PostgreSQL when the environment names a server (make test starts one), SQLite otherwise.
if os.environ.get("DDTPP_POSTGRES_HOST"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ["DDTPP_POSTGRES_HOST"],
            "PORT": os.environ.get("DDTPP_POSTGRES_PORT", "5432"),
            "NAME": os.environ.get("DDTPP_POSTGRES_DB", "ddtpp"),
            "USER": os.environ.get("DDTPP_POSTGRES_USER", "postgres"),
            "PASSWORD": os.environ.get("DDTPP_POSTGRES_PASSWORD", ""),
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
# A second alias: captures must cover every connection.
DATABASES["other"] = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}

STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DEBUG_TOOLBAR_PANELS = [
    "debug_toolbar.panels.history.HistoryPanel",
    "debug_toolbar.panels.versions.VersionsPanel",
    "debug_toolbar.panels.timer.TimerPanel",
    "debug_toolbar.panels.settings.SettingsPanel",
    "debug_toolbar.panels.headers.HeadersPanel",
    "debug_toolbar.panels.request.RequestPanel",
    "debug_toolbar.panels.sql.SQLPanel",
    "ddt_prefetch_panel.panel.PrefetchPanel",
    "debug_toolbar.panels.templates.TemplatesPanel",
    "debug_toolbar.panels.cache.CachePanel",
    "debug_toolbar.panels.signals.SignalsPanel",
]
DEBUG_TOOLBAR_CONFIG = {
    "SHOW_TOOLBAR_CALLBACK": "tests.urls.always_show",
    "IS_RUNNING_TESTS": False,
}

# Most tests read a request's stored stats without opening the panel: proofs at the end of the
# request. tests/test_lazy.py covers the panel's default, PROOF_MODE="lazy". `make test` runs two
# workers on a two-core machine: a replay budget of 300 ms (the default) could be spent by the
# machine's load rather than by the replays, so the tests that are about the budget set it.
DDT_PREFETCH_PANEL = {"PROOF_MODE": "eager", "PROOF_BUDGET_MS": 3000}
