from django.apps import AppConfig


class TestappConfig(AppConfig):
    """Models shaped like nplusone's Django test app, under its app label, so names match its messages."""

    name = "tests.peers.testapp"
    label = "testapp"
    default_auto_field = "django.db.models.BigAutoField"
