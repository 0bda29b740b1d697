"""graphene-django: DjangoObjectType nodes and a resolver that returns a queryset."""

import graphene
from graphene_django import DjangoListField, DjangoObjectType

from .models import Author, Book


class AuthorNode(DjangoObjectType):
    class Meta:
        model = Author
        fields = ("id", "name")


class BookNode(DjangoObjectType):
    class Meta:
        model = Book
        fields = ("id", "title", "author")


class Query(graphene.ObjectType):
    books = graphene.List(BookNode)
    all_books = DjangoListField(BookNode)  # graphene-django builds this queryset itself

    def resolve_books(root, info):
        return Book.objects.all()


schema = graphene.Schema(query=Query)
