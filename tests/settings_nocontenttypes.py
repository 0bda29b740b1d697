"""A project without django.contrib.contenttypes: the panel must start and work."""

SECRET_KEY = "tests-only"
DEBUG = True
USE_TZ = True
INSTALLED_APPS = ["django.contrib.staticfiles", "debug_toolbar", "ddt_prefetch_panel", "tests.plainapp"]
MIDDLEWARE = ["debug_toolbar.middleware.DebugToolbarMiddleware"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
ROOT_URLCONF = "tests.settings_nocontenttypes"
urlpatterns: list = []
DEBUG_TOOLBAR_PANELS = ["ddt_prefetch_panel.panel.PrefetchPanel"]
