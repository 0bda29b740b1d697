from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from graphene_django.views import GraphQLView as GrapheneView
from strawberry.django.views import AsyncGraphQLView as AsyncStrawberryView
from strawberry.django.views import GraphQLView as StrawberryView

from . import api, gql_graphene, gql_strawberry, views

urlpatterns = [
    path("api/", include(api.router.urls)),
    path("graphql/strawberry/", csrf_exempt(StrawberryView.as_view(schema=gql_strawberry.schema))),
    path("graphql/strawberry/async/", csrf_exempt(AsyncStrawberryView.as_view(schema=gql_strawberry.schema))),
    path("graphql/strawberry/fixed/", csrf_exempt(StrawberryView.as_view(schema=gql_strawberry.fixed_schema))),
    # No graphene debug middleware (on by default with DEBUG): it wraps every connection's
    # cursor for the rest of the process, which breaks later tests' database isolation.
    path("graphql/graphene/", csrf_exempt(GrapheneView.as_view(schema=gql_graphene.schema, middleware=[]))),
    path("jinja/books/", views.jinja_books),
    path("forms/copy/", views.copy_form),
    path("async/books/", views.async_books),
    path("exports/library/", views.export_library),
    path("generic/books/", views.BookListView.as_view()),
    path("generic/books/fixed/", views.FixedBookListView.as_view()),
    path("exports/visible/", views.export_visible),
]
