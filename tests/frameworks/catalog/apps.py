from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "tests.frameworks.catalog"
    label = "catalog"
    default_auto_field = "django.db.models.BigAutoField"
