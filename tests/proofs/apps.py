from django.apps import AppConfig


class ProofsConfig(AppConfig):
    name = "tests.proofs"
    label = "proofs"
    default_auto_field = "django.db.models.BigAutoField"
