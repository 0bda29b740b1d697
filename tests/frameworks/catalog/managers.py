from django.db import models


class BookQuerySet(models.QuerySet):
    def visible(self):
        return self.filter(hidden=False)


class ActiveAuthorManager(models.Manager):
    """A custom manager whose own get_queryset() narrows every query (user code, not the origin)."""

    def get_queryset(self):
        return super().get_queryset().filter(active=True)

    def active(self):
        return self.get_queryset().order_by("name")
