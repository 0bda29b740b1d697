"""Issue 12: library code is not user code.

The loop runs inside a framework (DRF serializers, GraphQL resolvers, form widgets, Jinja2,
asgiref's thread hop); the call site is the project's declaration that made it loop, the
origin is the project's queryset, and the fix goes where the framework expects it.

The framework modules are imported at collection time (through the URLconf), before any
capture starts, as under ``runserver``.
"""

from __future__ import annotations

import inspect
import json
import textwrap

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import AsyncClient
from django.test.utils import CaptureQueriesContext

import tests.urls  # noqa: F401  (imports every framework module now, before any capture)
from ddt_prefetch_panel import detect
from tests.frameworks.blog import views as blog_views
from tests.frameworks.blog.seed import seed as seed_blog
from tests.frameworks.catalog import exports, gql_graphene, gql_strawberry
from tests.frameworks.catalog import views as catalog_views
from tests.frameworks.catalog.forms import CopyForm
from tests.frameworks.catalog.seed import seed as seed_catalog
from tests.frameworks.lines import at, line_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(db):
    seed_catalog(authors=4, books_per_author=3)


@pytest.fixture
def blog(db):
    seed_blog(pages=4)


def only(report, relation: str):
    found = [f for f in report.findings if f.kind == "n_plus_one" and f.relation == relation]
    assert len(found) == 1, [(f.kind, f.relation, f.callsite) for f in report.findings]
    return found[0]


def assert_verified(finding) -> None:
    assert finding.proof is not None, finding.snippets
    assert finding.proof["status"] == "verified", finding.proof
    assert finding.proof["after"] < finding.proof["before"], finding.proof


# --------------------------------------------------------------------------- DRF


def test_drf_nested_serializer_names_the_field_and_the_viewset_queryset(client, catalog):
    with detect() as report:
        response = client.get("/fw/api/books/", {"format": "json"})
    assert response.status_code == 200
    finding = only(report, "catalog.Book.author")
    assert finding.method == "select_related"
    assert finding.snippets["fix"] == '.select_related("author")'
    assert at(finding.callsite, "catalog/api.py", "    author = AuthorBriefSerializer()")
    assert finding.callsite["function"] == "BookSerializer.author"
    assert at(finding.origin, "catalog/api.py", "    queryset = Book.objects.all()")
    assert finding.snippets["line"].startswith("queryset = Book.objects.")
    assert '.select_related("author")' in finding.snippets["line"]
    assert finding.library is False
    assert_verified(finding)
    assert finding.stack, "the whole stack stays available"


def test_drf_rows_sharing_parents_are_one_finding_not_one_plus_n(client, catalog):
    """12 books by 4 authors through a nested serializer: the author reads repeat exactly for
    books of one author. One N+1 says so; no duplicate finding restates it (issue 22)."""
    with detect() as report:
        assert client.get("/fw/api/books/", {"format": "json"}).status_code == 200
    assert [f.kind for f in report.findings] == ["n_plus_one"], report.to_markdown()
    [finding] = report.findings
    assert finding.relation == "catalog.Book.author" and finding.count == 12 and finding.identical == 8


def test_drf_serializer_method_field_and_custom_manager_in_get_queryset(client, catalog):
    with detect() as report:
        response = client.get("/fw/api/authors/", {"format": "json"})
    assert response.status_code == 200
    books = only(report, "catalog.Author.books")
    assert books.method == "prefetch_related"
    assert at(books.callsite, "catalog/api.py", "    books = BookBriefSerializer(many=True)")
    assert books.callsite["function"] == "AuthorSerializer.books"
    publisher = only(report, "catalog.Author.publisher")
    assert publisher.method == "select_related"
    assert at(publisher.callsite, "catalog/api.py", "author.publisher.name")
    assert publisher.callsite["function"].endswith("get_display")
    for finding in (books, publisher):
        # The user's call of the manager in the viewset, never the manager's own get_queryset().
        assert at(finding.origin, "catalog/api.py", "        return Author.objects.active()")
        assert finding.snippets["line"].startswith("return Author.objects.active().")
        assert "get_queryset" in (finding.note or "") + json.dumps(finding.snippets)
        assert finding.library is False
        assert_verified(finding)


def test_drf_queryset_method_of_the_model_manager(client, catalog):
    with detect() as report:
        client.get("/fw/api/visible-books/", {"format": "json"})
    finding = only(report, "catalog.Book.author")
    assert at(finding.origin, "catalog/api.py", "        return Book.objects.visible()")
    assert at(finding.callsite, "catalog/api.py", "    author = AuthorBriefSerializer()")
    assert_verified(finding)


def test_drf_nested_serializer_path_names_the_outer_field(client, catalog):
    with detect() as report:
        assert client.get("/fw/api/author-catalogue/", {"format": "json"}).status_code == 200
    finding = only(report, "catalog.Book.imprint")
    assert finding.lookup == "books__imprint"
    assert at(finding.callsite, "catalog/api.py", "    imprint = PublisherSerializer()")
    assert finding.callsite["function"] == "AuthorCatalogueSerializer.catalogue → imprint"
    assert at(finding.origin, "catalog/api.py", '    queryset = Author.objects.prefetch_related("books")')
    assert 'Prefetch("books"' in finding.snippets["fix"] or '"books__imprint"' in finding.snippets["fix"]
    assert_verified(finding)


# --------------------------------------------------------------------------- GraphQL

STRAWBERRY_QUERY = "{ books { title author { name publisher { name } } } }"


def test_strawberry_django_nested_types(client, catalog):
    with detect() as report:
        response = client.post("/fw/graphql/strawberry/", {"query": STRAWBERRY_QUERY}, content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    assert "errors" not in response.json()
    [finding] = [f for f in report.findings if f.kind == "n_plus_one"]
    assert finding.relation == "catalog.Author.publisher"
    assert finding.lookup == "author__publisher"
    assert finding.method == "select_related"
    assert at(finding.callsite, "catalog/gql_strawberry.py", "    publisher: PublisherType")
    assert finding.callsite["function"] == "AuthorType.publisher"
    assert any(at(c, "catalog/gql_strawberry.py", "    author: AuthorType") for c in finding.callsites)
    assert at(finding.origin, "catalog/gql_strawberry.py", "    books: list[BookType] = strawberry_django.field()")
    # The framework's own places, not .only() at the view: the type's get_queryset (works as
    # is) or the field's optimizer hints; the declaration line itself is not rewritten.
    assert "line" not in finding.snippets
    assert finding.snippets["hints"].startswith(
        'books: list[BookType] = strawberry_django.field(select_related=["author__publisher"])')
    assert finding.snippets["get_queryset"].startswith("# in BookType\n")
    assert finding.library is False
    assert_verified(finding)
    # Pasted into the type (gql_strawberry.FixedBookType), the query count is constant.
    fixed = inspect.getsource(gql_strawberry.FixedBookType.get_queryset)
    assert textwrap.dedent(fixed).strip() == finding.snippets["get_queryset"].split("\n", 1)[1]
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/fw/graphql/strawberry/fixed/", {"query": STRAWBERRY_QUERY},
                               content_type="application/json")
    assert "errors" not in response.json() and len(queries) == 1


def test_strawberry_django_async_view_keeps_the_type_field_as_call_site(catalog):
    """Async resolvers: execute_field has returned when the thread loads the rows; the call
    site comes from graphql-core's await_result() coroutine through the awaiting stack."""

    async def run():
        return await AsyncClient().post("/fw/graphql/strawberry/async/", {"query": STRAWBERRY_QUERY},
                                        content_type="application/json")

    with detect() as report:
        response = async_to_sync(run)()
    assert response.status_code == 200 and "errors" not in response.json()
    [finding] = [f for f in report.findings if f.kind == "n_plus_one"]
    assert finding.relation == "catalog.Author.publisher"
    assert finding.callsite["function"] == "AuthorType.publisher"
    assert finding.origin["function"] == "Query.books"


def test_graphene_django_object_type(client, catalog):
    with detect() as report:
        response = client.post("/fw/graphql/graphene/", {"query": "{ books { title author { name } } }"},
                               content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    assert "errors" not in response.json()
    finding = only(report, "catalog.Book.author")
    assert finding.callsite["function"] == "BookNode.author"
    assert finding.callsite["filename"].endswith("tests/frameworks/catalog/gql_graphene.py")
    assert at(finding.origin, "catalog/gql_graphene.py", "        return Book.objects.all()")
    assert finding.snippets["line"] == 'return Book.objects.all().select_related("author")'
    assert_verified(finding)


def test_graphene_django_list_field_fix_goes_into_the_node_types_get_queryset(client, catalog):
    query = {"query": "{ allBooks { title author { name } } }"}
    with detect() as report:
        response = client.post("/fw/graphql/graphene/", query, content_type="application/json")
    assert "errors" not in response.json()
    finding = only(report, "catalog.Book.author")
    assert finding.callsite["function"] == "BookNode.author"
    assert at(finding.origin, "catalog/gql_graphene.py", "    all_books = DjangoListField(BookNode)")
    assert finding.origin["function"] == "Query.all_books"
    assert "line" not in finding.snippets and finding.library is False
    snippet = finding.snippets["get_queryset"]
    assert snippet == (
        "# in BookNode\n@classmethod\ndef get_queryset(cls, queryset, info):\n"
        '    return queryset.select_related("author")'
    )
    assert_verified(finding)
    # Pasted into BookNode, the query count is constant.
    namespace: dict = {}
    exec(textwrap.dedent(snippet.split("\n", 1)[1]).replace("@classmethod\n", ""), namespace)
    gql_graphene.BookNode.get_queryset = classmethod(namespace["get_queryset"])
    try:
        with CaptureQueriesContext(connection) as queries:
            response = client.post("/fw/graphql/graphene/", query, content_type="application/json")
    finally:
        del gql_graphene.BookNode.get_queryset  # back to DjangoObjectType's
    assert "errors" not in response.json() and len(queries) == 1


# --------------------------------------------------------------------------- forms, Jinja2, async


def test_model_choice_field_labels_reading_a_foreign_key(catalog):
    with detect() as report:
        CopyForm().as_p()
    finding = only(report, "catalog.Book.author")
    assert at(finding.callsite, "catalog/forms.py", "    book = forms.ModelChoiceField(")
    assert finding.callsite["function"] == "CopyForm.book"
    assert at(finding.origin, "catalog/forms.py", "    book = forms.ModelChoiceField(")
    assert finding.snippets["line"] == (
        'book = forms.ModelChoiceField(queryset=Book.objects.all().select_related("author"))'
    )
    assert_verified(finding)


def test_jinja2_template_line_through_debug_info(client, catalog):
    with detect() as report:
        response = client.get("/fw/jinja/books/")
    assert response.status_code == 200
    finding = only(report, "catalog.Book.author")
    assert finding.callsite["template"] is True
    assert finding.callsite["filename"] == "catalog/books.jinja"
    assert finding.callsite["lineno"] == line_of("catalog/jinja2/catalog/books.jinja", "book.author.name")
    assert "book.author.name" in finding.callsite["code"]
    assert at(finding.origin, "catalog/views.py", '    books = Book.objects.order_by("pk")')
    assert_verified(finding)


def test_async_view_call_site_is_the_coroutine_line(client, catalog):
    with detect() as report:
        response = client.get("/fw/async/books/")
    assert response.status_code == 200
    [finding] = [f for f in report.findings if f.kind == "n_plus_one"]
    assert at(finding.callsite, "catalog/views.py", "await Author.everyone.aget(pk=book.author_id)")
    assert finding.callsite["function"] == "async_books"
    assert at(finding.origin, "catalog/views.py", 'async for book in Book.objects.order_by("pk")')


def test_async_view_through_the_async_client(catalog):
    async def run():
        return await AsyncClient().get("/fw/async/books/")

    with detect() as report:
        response = async_to_sync(run)()
    assert response.status_code == 200
    [finding] = [f for f in report.findings if f.kind == "n_plus_one"]
    assert at(finding.callsite, "catalog/views.py", "await Author.everyone.aget(pk=book.author_id)")
    assert at(finding.origin, "catalog/views.py", 'async for book in Book.objects.order_by("pk")')


# --------------------------------------------------------------------------- third-party relation fields


def test_taggit_and_modelcluster_relations_are_named_and_prefetched(blog):
    with detect() as report:
        blog_views.page_summaries()
    tags = only(report, "blog.BlogPage.tags")
    authors = only(report, "blog.BlogPage.authors")
    images = only(report, "blog.BlogPage.gallery_images")
    for finding, lookup in ((tags, "tags"), (authors, "authors"), (images, "gallery_images")):
        assert finding.method == "prefetch_related", finding.relation
        assert finding.lookup == lookup
        assert f'"{lookup}"' in finding.snippets["fix"]
        assert at(finding.origin, "blog/views.py", '    pages = BlogPage.objects.order_by("pk")')
        assert_verified(finding)
    assert tags.related_model == "taggit.Tag"
    assert at(tags.defined_at, "blog/models.py", "    tags = TaggableManager(")
    assert at(authors.defined_at, "blog/models.py", "    authors = ParentalManyToManyField(")
    assert at(images.defined_at, "blog/models.py", "    page = ParentalKey(")


def test_per_row_multi_table_downcast(blog):
    """``page.specific`` loads each page again as its child model: one downcast finding per
    child model. The pages are of two child models, so no query of one of them returns the
    page's rows: nothing paste-able, and the proof says why (a select_related on Page would not
    serve the loop, which loads the row again anyway)."""
    with detect() as report:
        blog_views.specific_titles()
    for relation, child in (("blog.Page.articlepage", "ArticlePage"), ("blog.Page.blogpage", "BlogPage")):
        finding = only(report, relation)
        assert finding.relation_kind == "downcast" and finding.title.endswith(f"{relation} (downcast)")
        assert finding.method is None and "fix" not in finding.snippets and "line" not in finding.snippets
        assert finding.proof["status"] == "failed"
        assert f"Page rows are {child} rows: a {child} query would drop the others" in finding.proof["detail"]
        assert f"No fix is shown: {child}.objects.order_by(\"pk\") was replayed" in finding.note
        assert at(finding.origin, "blog/views.py", '    pages = Page.objects.order_by("pk")')


def test_defined_at_through_an_abstract_base(catalog):
    with detect() as report:
        exports.imprints()
    finding = only(report, "catalog.Book.imprint")
    assert at(finding.defined_at, "catalog/models.py", "    imprint = models.ForeignKey(")


def test_queryset_built_by_a_generic_view_names_the_users_subclass(client, catalog):
    """Django's ListView builds the queryset from ``model = Book``: the origin is the library
    method that decided it, named after the project's subclass, with an override to paste."""
    with detect() as report:
        response = client.get("/fw/generic/books/")
    assert response.status_code == 200
    finding = only(report, "catalog.Book.author")
    assert finding.callsite["template"] is True
    assert finding.callsite["filename"] == "catalog/book_list.jinja"
    assert finding.origin["function"] == "BookListView.get_queryset"
    assert finding.origin["filename"].endswith("django/views/generic/list.py")
    assert finding.origin["library"] is True
    # Django's own line is not the user's to rewrite: the place is the subclass's ``model =``,
    # with the queryset declared beside it (or the override).
    assert finding.place == {"file": "tests/frameworks/catalog/views.py", "line": finding.place["line"],
                             "code": "model = Book", "kind": "class_attr", "class": "BookListView", "attr": "model"}
    assert finding.snippets["line"] == 'model = Book\nqueryset = Book.objects.select_related("author")'
    assert finding.snippets["override"] == (
        "# in BookListView\n"
        "def get_queryset(self):\n"
        '    return super().get_queryset().select_related("author")'
    )
    assert "declare the queryset on the class (keep model =)" in finding.note
    assert finding.library is False
    assert_verified(finding)
    pasted = textwrap.dedent(inspect.getsource(catalog_views.FixedBookListView.get_queryset)).strip()
    assert pasted == finding.snippets["override"].split("\n", 1)[1]
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/fw/generic/books/fixed/").status_code == 200
    assert len(queries) == 1


def test_drf_prefetch_unused_in_one_mode_is_made_conditional_never_removed(client, catalog):
    with detect() as report:
        assert client.get("/fw/api/author-modes/", {"format": "json"}).status_code == 200
    assert not report.findings, report.to_markdown()  # the full mode reads everything it loads
    with detect() as report:
        assert client.get("/fw/api/author-modes/", {"format": "json", "brief": "1"}).status_code == 200
    unused = {f.lookup: f for f in report.by_kind("unused_prefetch")}
    assert sorted(unused) == ["books", "publisher"]  # the brief serializer reads neither
    finding = unused["books"]
    assert at(finding.origin, "catalog/api.py", "        queryset = Author.objects.active()")
    assert "line" not in finding.snippets  # not "remove it": the other mode needs it
    assert "remove" not in finding.snippets["fix"]
    assert 'queryset = queryset.prefetch_related("books")' in finding.snippets["conditional"]
    assert finding.snippets["conditional"].startswith("# in AuthorModesViewSet\ndef get_queryset(self):")
    assert "AuthorModesViewSet serves several" in finding.note


def test_no_harness_line_in_a_finding_of_a_framework_view(client, catalog):
    """The test's own client.get line is an entry point: never origin, call site or evaluation."""
    with detect() as report:
        client.get("/fw/api/books/", {"format": "json"})  # the harness line
    finding = only(report, "catalog.Book.author")
    harness = line_of("../test_frameworks.py", "{\"format\": \"json\"})  # the harness line")
    for frame in (finding.origin, finding.callsite, finding.evaluated_at):
        assert frame is None or not (frame["filename"].endswith("test_frameworks.py") and frame["lineno"] == harness)
    assert finding.evaluated_at["library"] is True
    assert finding.evaluated_at["function"] == "ListSerializer.to_representation"


def test_index_evidence_stays_invisible_under_graphenes_debug_cursor(catalog):
    """graphene-django's debug middleware (on by default with DEBUG) wraps every connection's
    cursor and leaves it there: EXPLAIN must still bypass Django's query log."""
    from graphene_django.debug.middleware import DjangoDebugContext

    from tests.frameworks.catalog.models import Book

    debug = DjangoDebugContext()  # wraps connection.cursor() as the middleware does
    try:
        with CaptureQueriesContext(connection) as captured:
            with detect() as report:
                for title in ("Book 0.0", "Book 1.1", "Book 2.2"):
                    list(Book.objects.filter(title=title))
    finally:
        debug.disable_instrumentation()
    [finding] = report.by_kind("missing_index")
    assert finding.model == "catalog.Book" and finding.evidence["plan"]
    statements = [q["sql"] for q in captured.captured_queries]
    assert not [s for s in statements if "EXPLAIN" in s or "ddtpp_" in s]
    assert len(statements) == 3
