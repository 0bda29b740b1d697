"""strawberry-django: nested types resolved by the framework's default resolvers."""

import strawberry
import strawberry_django
from strawberry import auto

from .models import Author, Book, Publisher


@strawberry_django.type(Publisher)
class PublisherType:
    name: auto


@strawberry_django.type(Author)
class AuthorType:
    name: auto
    publisher: PublisherType


@strawberry_django.type(Book)
class BookType:
    title: auto
    author: AuthorType


@strawberry.type
class Query:
    books: list[BookType] = strawberry_django.field()


schema = strawberry.Schema(query=Query)


# The fixed version: the fix the panel suggests, pasted into the type's get_queryset.
@strawberry_django.type(Book, name="FixedBook")
class FixedBookType:
    title: auto
    author: "AuthorType"

    @classmethod
    def get_queryset(cls, queryset, info, **kwargs):
        return queryset.select_related("author__publisher")


@strawberry.type(name="Query")
class FixedQuery:
    books: list[FixedBookType] = strawberry_django.field()


fixed_schema = strawberry.Schema(query=FixedQuery)
