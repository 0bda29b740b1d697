"""The project's calls into a third-party export library (ddtpp_fakelib, in site-packages)."""

import ddtpp_fakelib

from .models import Book


def export_everything():
    return ddtpp_fakelib.export_model(Book, ["title", "author__name"])


def export_visible():
    return ddtpp_fakelib.export_rows(Book.objects.visible(), ["title", "author__name"])


def imprints():
    return [book.imprint.name for book in Book.objects.order_by("pk")]


def export_typed():
    return ddtpp_fakelib.export_with_types(Book.objects.order_by("pk"))


def repeated_lookups():
    return [Book.objects.filter(title="Book 0.0").first() for _ in range(3)]
