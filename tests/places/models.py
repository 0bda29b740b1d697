"""A forum, a polymorphic project list and a category tree, written as Django's, django-polymorphic's
and django-mptt's documentation write their examples (issue 20's "where to act" scenarios)."""

from django.db import models
from mptt.models import MPTTModel, TreeForeignKey
from polymorphic.models import PolymorphicModel


class Author(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self):
        return self.name

    def posts_written(self):
        return Post.objects.filter(author=self).order_by("pk")


class Tag(models.Model):
    name = models.CharField(max_length=50)

    def __str__(self):
        return self.name


class Thread(models.Model):
    title = models.CharField(max_length=200)
    author = models.ForeignKey(Author, on_delete=models.CASCADE)

    def __str__(self):
        return self.title

    @property
    def first_published(self):
        """The thread's first published post: one query per thread wherever it is read."""
        return self.posts.filter(draft=False).order_by("pk").first()


class PublishedManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(draft=False)


class Post(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="posts")
    author = models.ForeignKey(Author, on_delete=models.CASCADE)
    body = models.TextField()
    draft = models.BooleanField(default=False)
    tags = models.ManyToManyField(Tag, blank=True)

    objects = models.Manager()  # The default manager.
    published = PublishedManager()  # Posts that are not drafts.

    def __str__(self):
        return self.body


# django-polymorphic: querysets of the base model return the child instances.
class Project(PolymorphicModel):
    topic = models.CharField(max_length=30)


class ArtProject(Project):
    artist = models.CharField(max_length=30)


class ResearchProject(Project):
    supervisor = models.ForeignKey(Author, on_delete=models.CASCADE)


# django-mptt
class Category(MPTTModel):
    name = models.CharField(max_length=50, unique=True)
    parent = TreeForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="children")

    class MPTTMeta:
        order_insertion_by = ["name"]

    def __str__(self):
        return self.name
