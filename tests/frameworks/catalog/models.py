from django.db import models

from .managers import ActiveAuthorManager, BookQuerySet


class Publisher(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Author(models.Model):
    name = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    publisher = models.ForeignKey(Publisher, on_delete=models.CASCADE, related_name="authors")

    objects = ActiveAuthorManager()
    everyone = models.Manager()

    class Meta:
        base_manager_name = "everyone"

    def __str__(self) -> str:
        return self.name


class Imprinted(models.Model):
    """An abstract base declaring a foreign key (``defined_at`` must point here)."""

    imprint = models.ForeignKey(Publisher, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        abstract = True


class Book(Imprinted):
    title = models.CharField(max_length=100)
    hidden = models.BooleanField(default=False)
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")

    objects = BookQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.title} by {self.author.name}"

    def clean(self) -> None:
        imprint = self.author.publisher
        if self.imprint_id is None:
            self.imprint = imprint


class Copy(models.Model):
    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="copies")
    barcode = models.CharField(max_length=20)
