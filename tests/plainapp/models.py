"""Two models in a project without django.contrib.contenttypes (no auth, no admin)."""

from django.db import models


class Shelf(models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        app_label = "plainapp"


class Volume(models.Model):
    shelf = models.ForeignKey(Shelf, on_delete=models.CASCADE, related_name="volumes")
    title = models.CharField(max_length=50)

    class Meta:
        app_label = "plainapp"
