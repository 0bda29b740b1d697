from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"
    # Pinned here rather than in settings so the migration stays valid under
    # any settings module that installs the app (the demo's or the tests').
    default_auto_field = "django.db.models.BigAutoField"
