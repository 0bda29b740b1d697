from django.apps import AppConfig


class SocialConfig(AppConfig):
    """Models shaped like django-zeal's test app, under its app label, so relation names match its messages."""

    name = "tests.peers.social"
    label = "social"
    default_auto_field = "django.db.models.BigAutoField"
