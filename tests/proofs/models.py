"""Shapes from real projects where a fix read off the models alone breaks when pasted.

A blog with a gallery accessor ending in ``.first()``, a multi-table-inheritance page tree,
circuits with two paths to one model, a custom manager that filters, a generic foreign key
followed by a foreign key, a library accessor that reads ``.all()[0]``, cables whose
ends point generically at interfaces or console ports of devices (a generic key in the
middle of a path), a CMS-style ``page.specific`` that re-fetches the child row by key, and
products a search returns as ids.
"""

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=50)


class Tag(models.Model):
    name = models.CharField(max_length=50)


class Image(models.Model):
    file = models.CharField(max_length=100)
    credit = models.ForeignKey(Author, null=True, on_delete=models.SET_NULL, related_name="+")


class PublishedManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(published=True)


class Post(models.Model):
    title = models.CharField(max_length=50)
    published = models.BooleanField(default=True)
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="posts")
    tags = models.ManyToManyField(Tag, related_name="posts")

    objects = models.Manager()
    live = PublishedManager()

    def main_image(self):
        """The accessor real CMS code has: the first gallery item's image."""
        item = self.gallery_images.first()
        return item.image if item else None


class GalleryImage(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="gallery_images")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    sort_order = models.IntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "pk"]


class Comment(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="comments")
    body = models.CharField(max_length=100)


class Page(models.Model):
    title = models.CharField(max_length=50)
    live = models.BooleanField(default=True)

    @property
    def specific(self):
        """The most specific page, as a CMS's ``page.specific`` gives it: one query per call,
        unless the page already is one."""
        if isinstance(self, ArticlePage):
            return self
        try:
            return ArticlePage._default_manager.get(id=self.id)
        except ArticlePage.DoesNotExist:
            return self


class ArticlePage(Page):
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="articles")
    authors = models.ManyToManyField(Author, related_name="coauthored", blank=True)
    image = models.ForeignKey(Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")


class Site(models.Model):
    name = models.CharField(max_length=50)


class Termination(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="terminations")


class Circuit(models.Model):
    cid = models.CharField(max_length=20)
    term_a = models.ForeignKey(Termination, on_delete=models.CASCADE, related_name="+")
    term_z = models.ForeignKey(Termination, on_delete=models.CASCADE, related_name="+")


class Bookmark(models.Model):
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    object_id = models.PositiveIntegerField()
    target = GenericForeignKey("content_type", "object_id")


class Device(models.Model):
    name = models.CharField(max_length=50)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="devices")


class Interface(models.Model):
    name = models.CharField(max_length=50)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="interfaces")


class ConsolePort(models.Model):
    name = models.CharField(max_length=50)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="console_ports")


class Cable(models.Model):
    label = models.CharField(max_length=50)


class CableTermination(models.Model):
    """One end of a cable: an interface or a console port (a network inventory's shape)."""

    cable = models.ForeignKey(Cable, on_delete=models.CASCADE, related_name="terminations")
    termination_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    termination_id = models.PositiveIntegerField()
    termination = GenericForeignKey("termination_type", "termination_id")


class Product(models.Model):
    name = models.CharField(max_length=50)
