"""A CMS-style blog: multi-table inheritance with a per-row downcast, django-modelcluster
relations and django-taggit tags."""

from django.contrib.contenttypes.models import ContentType
from django.db import models
from modelcluster.fields import ParentalKey, ParentalManyToManyField
from modelcluster.models import ClusterableModel
from taggit.managers import TaggableManager


class Page(ClusterableModel):
    title = models.CharField(max_length=100)
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")

    def save(self, *args, **kwargs):
        if not self.content_type_id:
            self.content_type = ContentType.objects.get_for_model(self)
        super().save(*args, **kwargs)

    @property
    def specific(self):
        """The most specific page object (one query per call, as CMSs do)."""
        model = ContentType.objects.get_for_id(self.content_type_id).model_class()
        if model is type(self):
            return self
        return model._default_manager.get(pk=self.pk)


class ArticlePage(Page):
    body = models.TextField(blank=True)


class BlogAuthor(models.Model):
    name = models.CharField(max_length=100)


class BlogPage(Page):
    authors = ParentalManyToManyField(BlogAuthor, related_name="blog_pages", blank=True)
    tags = TaggableManager(blank=True)


class GalleryImage(models.Model):
    page = ParentalKey(BlogPage, on_delete=models.CASCADE, related_name="gallery_images")
    caption = models.CharField(max_length=100)
