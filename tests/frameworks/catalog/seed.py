"""Deterministic rows for the framework scenarios."""

from .models import Author, Book, Copy, Publisher


def seed(authors: int = 4, books_per_author: int = 3) -> None:
    publishers = [Publisher.objects.create(name=f"Publisher {i}") for i in range(2)]
    for a in range(authors):
        author = Author.everyone.create(name=f"Author {a}", publisher=publishers[a % 2])
        for b in range(books_per_author):
            book = Book.objects.create(title=f"Book {a}.{b}", author=author, imprint=publishers[b % 2])
            Copy.objects.create(book=book, barcode=f"C{a}{b}")
