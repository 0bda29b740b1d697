"""Where to act (place.py), on scenarios written the way Django's and the frameworks' docs write
them (tests/places/): generic views, a DetailView's template loop, ``{% with %}``, an inclusion
tag, a library view subclassed by the project, a library view used as is, django-polymorphic
and django-mptt.

For every fix shown, the test does what a user does: it pastes the shown code at ``place`` in a
copy of ``tests/places/views.py`` and checks that the patched view's query count no longer grows
with the data.
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from ddt_prefetch_panel import detect
from ddt_prefetch_panel.frames import Frame, is_library_file, is_test_file, tag_call
from tests.places import views
from tests.places.models import Author, Thread
from tests.places.seed import seed

pytestmark = pytest.mark.django_db
VIEWS = Path(views.__file__)
_pasted = itertools.count()


def report_for(client, url: str):
    with detect() as report:
        response = client.get(url)
    assert response.status_code == 200, url
    return report


def n_plus_ones(report):
    return [f for f in report.findings if f.kind == "n_plus_one"]


def paste(finding) -> object:
    """``tests/places/views.py`` with the finding's shown code pasted at its place, imported as a
    module of the same package (its relative imports work)."""
    place, snippets = finding.place, finding.snippets
    assert place["file"] == "tests/places/views.py", place
    lines = VIEWS.read_text().splitlines()
    index = place["line"] - 1
    assert lines[index].strip() == place["code"]
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    if place["kind"] in ("queryset", "class_attr"):
        lines[index:index + 1] = [indent + part for part in snippets["line"].split("\n")]
    elif place["kind"] == "override":
        header, *body = snippets["override"].split("\n")
        assert header == f"# in {place['class']}"
        lines[index + 1:index + 1] = [indent + "    " + part for part in body]
    else:
        raise AssertionError(f"nothing to paste at an {place['kind']} place")
    source = "\n".join([*snippets.get("import", "").splitlines(), *lines]) + "\n"
    path = VIEWS.with_name(f"_pasted_{next(_pasted)}.py")
    try:
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(f"tests.places.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        path.unlink()
    return module


def queries(view, **kwargs) -> int:
    request = RequestFactory().get("/")
    with CaptureQueriesContext(connection) as captured:
        response = view(request, **kwargs)
        if hasattr(response, "render"):
            response.render()
    assert response.status_code == 200
    return len(captured)


def view_of(module, name: str):
    attr = getattr(module, name)
    return attr.as_view() if isinstance(attr, type) else attr


# url, view in views.py, place kind (and attr), lookup of the fix
PASTED = {
    "list_model": ("/places/threads/", "ThreadListView", "class_attr", "model", "author"),
    "list_queryset": ("/places/threads/by-title/", "ThreadQuerysetListView", "class_attr", None, "author"),
    "detail_template_loop": ("/places/threads/{pk}/", "ThreadDetailView", "class_attr", "model", "posts__author"),
    "with_of_a_relation": ("/places/threads/posts/", "thread_posts", "queryset", None, "posts__author"),
    "inclusion_tag": ("/places/threads/results/", "ThreadResultsView", "class_attr", "model", "posts"),
    "library_view_subclassed": ("/places/threads/search/", "ThreadSearchView", "override", "get_queryset", "author"),
    "get_context_data": ("/places/posts/recent/", "RecentPostsView", "queryset", None, "thread"),
    "mptt_list_model": ("/places/categories/", "CategoryListView", "class_attr", "model", "parent"),
    "shared_mixin": ("/places/posts/feed/", "PostFeedView", "override", "get_queryset", "author"),
}


@pytest.mark.parametrize("name", sorted(PASTED))
def test_the_fix_pasted_at_the_place_makes_the_page_constant(client, name):
    url, view_name, kind, attr, lookup = PASTED[name]
    seed(3)
    detail = "{pk}" in url
    first = Thread.objects.order_by("pk").first()
    report = report_for(client, url.format(pk=first.pk))
    [finding] = [f for f in n_plus_ones(report) if f.lookup == lookup]
    assert finding.proof["status"] == "verified", finding.proof
    place = finding.place
    assert place["kind"] == kind and place.get("attr") == attr, place
    assert place["file"] == "tests/places/views.py"
    assert not is_library_file(str(VIEWS)) and "templates" not in place["file"]
    assert finding.callsite is not None
    assert finding.library is False

    kwargs = {"pk": first.pk} if detail else {}
    original = view_of(views, view_name)
    patched = view_of(paste(finding), view_name)
    before_small, after_small = queries(original, **kwargs), queries(patched, **kwargs)
    # The proof in page terms: what the page ran, and what it runs with the fix pasted.
    assert finding.proof["page_before"] == before_small
    assert abs(finding.proof["page_after"] - after_small) <= max(2, after_small // 10), (finding.proof, after_small)
    # Avoidable is what the proven fix removes on the page, shared by the findings it serves.
    served = [f for f in report.findings if f.fix_id == finding.fix_id]
    assert sum(f.avoidable for f in served) == finding.proof["page_before"] - finding.proof["page_after"]
    assert report.summary["avoidable"] <= report.summary["queries"]
    seed(5)  # more threads, and threads with more posts
    if detail:
        kwargs = {"pk": Thread.objects.order_by("pk").last().pk}
    before_large, after_large = queries(original, **kwargs), queries(patched, **kwargs)
    assert before_large > before_small, "the scenario is an N+1"
    assert after_large == after_small, "pasted at its place, the fix makes the count constant"
    assert after_large < before_large


def test_a_detail_views_template_loop_climbs_to_the_views_queryset(client):
    seed(3)
    thread = Thread.objects.first()
    [finding] = n_plus_ones(report_for(client, f"/places/threads/{thread.pk}/"))
    assert finding.relation == "places.Post.author"
    assert finding.model == "places.Thread" and finding.lookup == "posts__author"
    assert finding.callsite["template"] is True
    assert finding.snippets["line"] == ('model = Thread\nqueryset = Thread.objects.prefetch_related('
                                        'Prefetch("posts", queryset=Post.objects.select_related("author")))')
    assert "(.posts) is built in a template" in finding.note


def test_an_inclusion_tag_is_called_at_the_template_line_that_calls_it(client):
    seed(3)
    [finding] = n_plus_ones(report_for(client, "/places/threads/results/"))
    assert finding.callsite["filename"] == "places/thread_results.html"
    assert finding.callsite["code"] == "{% show_posts thread %}"
    assert [f["filename"] for f in finding.stack[:2]] == ["places/results.html", "places/thread_results.html"]


def test_a_library_view_used_as_is_is_upstream_with_nothing_to_paste(client):
    seed(3)
    [finding] = n_plus_ones(report_for(client, "/places/threads/table/"))
    place = finding.place
    assert place["kind"] == "upstream"
    assert (place["file"], place["package"], place["version"]) == ("ddtpp_fakelib/views.py", "ddtpp-fakelib", "1.0.0")
    assert finding.library is True
    assert not {"line", "override", "patch", "fix"} & set(finding.snippets)
    assert "ddtpp-fakelib 1.0.0" in finding.note and "nothing to paste" in finding.note


def test_an_upstream_loop_reading_a_project_property_offers_no_fix_and_no_loop_rewrite(client):
    """A library view builds and loops the queryset; per row it reads a property of the project's
    model that filters a relation (the shape of a CMS or shop framework calling an overridden
    model method). The to_attr rewrite of the property proves on the library's queryset, but
    pasted alone (the library's queryset cannot take the Prefetch) it reads a list nothing loads
    on every page: no fix card, no loop line, nothing to copy."""
    from ddt_prefetch_panel.panel import panel_context
    from django.template.loader import render_to_string

    seed(3)
    report = report_for(client, "/places/threads/table/first/")
    [finding] = n_plus_ones(report)
    assert finding.callsite["code"] == 'return self.posts.filter(draft=False).order_by("pk").first()'
    assert finding.place["kind"] == "upstream" and finding.library is True
    assert finding.fix_id is None and report.fixes == []
    assert not {"line", "fix", "access", "patch", "import"} & set(finding.snippets), finding.snippets
    html = render_to_string("ddt_prefetch_panel/panel.html", panel_context({"report": report.to_dict(), "error": None}))
    assert "data-ddtpp-snippet" not in html and "And in the loop" not in html  # nothing to copy
    assert "first_1_" not in report.to_markdown()


def test_a_project_read_that_bypasses_a_librarys_prefetch_is_named_as_the_cause(client):
    """The library's queryset prefetches ``posts``; the project's property filters them, which runs
    a query per row anyway. Nothing is pasted on the library's line, and the note points at the
    project's own read (the change to make) instead of sending the user upstream."""
    seed(3)
    report = report_for(client, "/places/threads/table/first/prefetched/")
    [finding] = n_plus_ones(report)
    assert finding.place["kind"] == "upstream" and report.fixes == []
    assert "The queryset already prefetches 'posts'" in finding.note
    assert "next((post for post in thread.posts.all() if post.draft == False), None)" in finding.note
    assert "the change is the read above, in your code" in finding.note
    assert "Report it upstream" not in finding.note


def test_a_loop_with_no_line_of_the_project_on_its_stack_gets_nothing_to_paste(client):
    """A library view wired as is loads each row by its key (as a sitemap or a search backend
    does): no frame of the project is on the loop's stack, so an ``in_bulk`` line written with
    the library's own names (``values``) is not offered, nor proven, and the finding is library."""
    from tests.toolbar import get_with_toolbar, stored_stats

    seed(3)
    _, request_id = get_with_toolbar(client, "/places/threads/by-key/")
    [finding] = [f for f in stored_stats(request_id)["report"]["findings"] if f["kind"] == "n_plus_one"]
    assert finding["callsite"] is None and finding["library"] is True
    assert not {"line", "fix", "patch", "import"} & set(finding["snippets"]), finding["snippets"]
    assert finding["proof"]["status"] == "skipped" and "inside an installed package" in finding["note"]


def test_a_polymorphic_child_relation_shows_no_fix_on_the_users_root(client):
    """django-polymorphic loads each child type while the template iterates; a select_related
    of a child's field on the user's ``Project`` queryset raises FieldError, so none is shown."""
    seed(3)
    [finding] = n_plus_ones(report_for(client, "/places/projects/"))
    assert finding.relation == "places.ResearchProject.supervisor"
    assert finding.library is False
    assert finding.method is None and not {"line", "fix", "patch"} & set(finding.snippets)
    assert finding.proof["status"] == "skipped"
    assert "No fix is shown" in finding.note and "places/project_list.html:2" in finding.note


def test_a_tests_own_setup_loop_is_test_code(client):
    """Objects created one by one in a test body are the test's setup; a read loop written in a
    test body is code under test like any other."""
    with detect() as report:
        for i in range(3):
            Author.objects.create(name=f"a{i}")
        authors = list(Author.objects.all())
        [a.thread_set.count() for a in authors]
    by_kind = {("write" if f.relation is None else "read"): f for f in n_plus_ones(report)}
    assert set(by_kind) == {"write", "read"}, report.to_markdown()
    assert by_kind["write"].test_code is True
    assert by_kind["read"].test_code is False


def test_a_view_called_from_a_test_is_not_test_code(client):
    seed(3)
    [finding] = n_plus_ones(report_for(client, "/places/threads/"))
    assert finding.test_code is False


def test_manage_py_is_never_project_code():
    assert is_library_file("/srv/project/manage.py")
    assert is_test_file("/srv/project/app/tests.py") and is_test_file("/srv/project/tests/test_views.py")
    assert not is_test_file("/srv/project/tests/places/views.py")


def test_tag_call_finds_the_calling_template_line():
    tag = Frame("/p/app/templatetags/tags.py", 7, "show_posts", "posts = list(thread.posts.all())")
    included = Frame("places/results.html", 2, "ForNode", "{% for post in posts %}", True)
    call = Frame("places/page.html", 4, "InclusionNode", "{% show_posts thread %}", True)
    loop = Frame("places/page.html", 3, "ForNode", "{% for thread in threads %}", True)
    view = Frame("/p/app/views.py", 9, "page", "return render(...)")
    assert tag_call((included, call, loop, view)) == 1
    assert tag_call((tag, call, loop, view)) == 1
    filter_use = Frame("places/page.html", 4, "VariableNode", "{{ thread|post_count }}", True)
    assert tag_call((tag, filter_use, loop)) == 1
    plain = Frame("places/page.html", 4, "VariableNode", "{{ thread.author }}", True)
    assert tag_call((plain, loop, view)) is None
    assert tag_call((view,)) is None


def test_the_panel_shows_where_to_act_before_and_after(client):
    from django.template.loader import render_to_string

    from ddt_prefetch_panel.panel import panel_context

    seed(3)
    report = report_for(client, "/places/threads/")
    html = render_to_string("ddt_prefetch_panel/panel.html", panel_context({"report": report.to_dict(), "error": None}))
    assert 'data-ddtpp-place="class_attr"' in html
    assert "tests/places/views.py:" in html
    assert "queryset = Thread.objects.select_related(&quot;author&quot;)" in html
    assert "act at `tests/places/views.py:" in report.to_markdown()
    [finding] = n_plus_ones(report)
    assert "act here `tests/places/views.py:" in finding.to_markdown()
    [upstream] = n_plus_ones(report_for(client, "/places/threads/table/"))
    assert "Upstream: built and looped inside ddtpp-fakelib 1.0.0" in upstream.to_markdown()


def test_a_mixins_shared_line_is_not_the_place_the_views_override_is(client):
    """``PublishedPostsMixin.get_queryset`` serves two views: a fix on its line would change the
    other one too, so the place is an override in the view that needs it."""
    seed(3)
    [finding] = n_plus_ones(report_for(client, "/places/posts/feed/"))
    assert finding.origin["function"] == "get_queryset" and "return Post.published" in finding.origin["code"]
    assert finding.place["class"] == "PostFeedView" and finding.place["code"] == (
        "class PostFeedView(PublishedPostsMixin, ListView):")
    assert finding.snippets["override"] == (
        "# in PostFeedView\ndef get_queryset(self):\n    return super().get_queryset().select_related(\"author\")")
    assert "line" not in finding.snippets
    assert "every class that inherits it" in finding.note


def test_the_patch_of_a_two_line_place_applies(client, tmp_path):
    """``model = Thread`` becomes two lines: the patch must be a valid unified diff."""
    import subprocess

    seed(3)
    [finding] = n_plus_ones(report_for(client, "/places/threads/"))
    patch = finding.snippets["patch"]
    added = [line for line in patch.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert added == ['+    queryset = Thread.objects.select_related("author")'], patch
    target = tmp_path / "tests" / "places"
    target.mkdir(parents=True)
    (target / "views.py").write_text(VIEWS.read_text())
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "fix.patch").write_text(patch)
    result = subprocess.run(["git", "apply", "--check", "fix.patch"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_admin_changelist_places_are_the_projects_model_admin(client, pizzeria):
    from django.contrib.auth.models import User

    User.objects.create_superuser("boss", "boss@example.com", "pw")
    client.login(username="boss", password="pw")
    with detect() as report:
        assert client.get("/admin/shop/order/").status_code == 200
    places = {f.relation: f.place for f in n_plus_ones(report)}
    assert places["shop.Order.customer"]["kind"] == "class_attr"
    assert places["shop.Order.customer"]["attr"] == "list_select_related"
    assert places["shop.Order.pizzas"]["kind"] == "override"  # a count per row: annotate in get_queryset
    assert {p["file"] for p in places.values()} == {"demo/shop/admin.py"}
    assert {p["class"] for p in places.values()} == {"OrderAdmin"}


def test_a_queryset_built_in_a_model_method_says_every_caller_shares_it():
    seed(3)
    author = Author.objects.order_by("pk").first()
    with detect() as report:
        titles = [post.thread.title for post in author.posts_written()]
    assert len(titles) == 3
    [finding] = n_plus_ones(report)
    assert finding.place["kind"] == "queryset"
    assert finding.place["code"] == 'return Post.objects.filter(author=self).order_by("pk")'
    assert "Author.posts_written(), which other views may call too" in finding.note
    assert "it changes this queryset only" not in finding.note  # it does not: every caller shares it


def test_a_manager_shared_by_two_pages_is_never_the_place(client):
    """``Post.published`` serves a page that reads tags and one that does not: a prefetch in the
    manager would add a query to the second. Each page's fix goes on its own view's line."""
    seed(3)
    reads_tags = n_plus_ones(report_for(client, "/places/posts/published/"))
    titles_only = n_plus_ones(report_for(client, "/places/posts/titles/"))
    for finding in reads_tags + titles_only:
        assert finding.place["kind"] == "queryset"
        assert finding.place["code"].startswith("return render(") and "Post.published.all()" in finding.place["code"]
        assert "PublishedManager.get_queryset() instead would affect every caller" in finding.note
    assert {f.lookup for f in reads_tags} == {"author", "tags"}
    assert {f.lookup for f in titles_only} == {"thread"}


def test_a_sliced_manager_call_kept_in_a_variable_gets_a_sliced_prefetch(tmp_path):
    """``latest = thread.posts.order_by("-id")[:2]``, iterated on the next line: the line that read
    the relation is where the to_attr list is read (``access_at``), and the sliced
    ``Prefetch(..., to_attr=...)`` is proven and works once pasted (issue 21)."""
    from tests.places import loops

    seed(3)
    with detect() as report:
        original = loops.latest_posts()
    [finding] = n_plus_ones(report)
    assert finding.method == "Prefetch" and finding.proof["status"] == "verified", finding.proof
    assert 'queryset=Post.objects.order_by("-id")[:2]' in finding.snippets["fix"]
    assert finding.access_at["code"] == 'latest = thread.posts.order_by("-id")[:2]'
    assert finding.callsite["code"] == "for post in latest:"
    assert finding.snippets["access"].startswith("latest = thread.")

    path = Path(loops.__file__)
    lines = path.read_text().splitlines()
    for lineno, text in ((finding.place["line"], finding.snippets["line"]),
                         (finding.access_at["lineno"], finding.snippets["access"])):
        old = lines[lineno - 1]
        lines[lineno - 1] = old[: len(old) - len(old.lstrip())] + text
    source = "\n".join([*finding.snippets["import"].splitlines(), *lines]) + "\n"
    pasted_path = path.with_name(f"_pasted_{next(_pasted)}.py")
    try:
        pasted_path.write_text(source.replace("from tests.places.models import Post", "from .models import Post"))
        spec = importlib.util.spec_from_file_location(f"tests.places.{pasted_path.stem}", pasted_path)
        pasted = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(pasted)
    finally:
        pasted_path.unlink()
    with CaptureQueriesContext(connection) as small:
        assert sorted(pasted.latest_posts()) == sorted(original)
    seed(5)
    expected = sorted(loops.latest_posts())
    with CaptureQueriesContext(connection) as large:
        assert sorted(pasted.latest_posts()) == expected
    assert len(small) == len(large) == 2


def test_a_tag_and_a_filter_with_the_same_arguments_in_a_loop_are_computed_once_before_it(client):
    """A CMS-style URL tag (one query per call) called with a constant in every row: the duplicate
    says how to compute it once. Applied to the template as shown, the page runs the query once
    and renders the same HTML."""
    from django.template import engines

    seed(4)
    report = report_for(client, "/places/threads/tagged/")
    duplicates = {f.snippets["fix"]: f for f in report.findings if f.kind == "duplicate"}
    assert sorted(duplicates) == ["{% tag_url 'django' as tag_url_django %}", "{% with tag_link_orm='orm'|tag_link %}"]
    tag, link = duplicates["{% tag_url 'django' as tag_url_django %}"], duplicates["{% with tag_link_orm='orm'|tag_link %}"]
    assert tag.snippets["in_loop"] == "{{ tag_url_django }}" and link.snippets["in_loop"] == "{{ tag_link_orm }}"
    assert "{% for thread in object_list %} (places/thread_tagged.html:3)" in tag.note
    assert not tag.library and tag.count == Thread.objects.count()
    assert "above the loop `{% tag_url 'django' as tag_url_django %}`, inside it `{{ tag_url_django }}`" in (
        report.to_markdown())
    # The finding's own block is fenced as template code, not as Python.
    assert "```django\n{% tag_url 'django' as tag_url_django %}\n```" in tag.to_markdown(), tag.to_markdown()

    source = (Path(views.__file__).parent / "templates/places/thread_tagged.html").read_text()
    patched = (source.replace("{% for thread in object_list %}", "\n".join([
        tag.snippets["fix"], link.snippets["fix"], "{% for thread in object_list %}"]))
        .replace("{% endfor %}", "{% endfor %}{% endwith %}")
        .replace("{% tag_url 'django' %}", tag.snippets["in_loop"])
        .replace("{{ 'orm'|tag_link }}", link.snippets["in_loop"]))
    engine = engines["django"]
    context = {"object_list": Thread.objects.order_by("pk")}

    def render(text: str) -> tuple[str, int]:
        with CaptureQueriesContext(connection) as captured:
            html = engine.from_string(text).render(context)
        return " ".join(html.split()), sum('"places_tag"' in q["sql"] for q in captured.captured_queries)

    (before, tag_queries), (after, fixed_queries) = render(source), render(patched)
    assert after == before and tag_queries == 2 * Thread.objects.count() and fixed_queries == 2


def test_an_inlines_repeated_choices_name_the_inline_and_load_them_once(admin_client, monkeypatch):
    """Django's tutorial admin (a thread with its posts inline): every inline form loads the author
    choices again. The duplicate names the project's inline, not a library line; the override
    shown, pasted into that class, loads the inline's choices once and renders the same page."""
    import re

    from tests.places import admin as places_admin

    seed(4)
    thread = Thread.objects.first()
    url = f"/admin/places/thread/{thread.pk}/change/"

    def choice_lists() -> tuple[int, bytes]:
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(url)
        assert response.status_code == 200
        # The whole list, read as ModelChoiceIterator reads it (PostgreSQL: inside a DECLARE ... CURSOR).
        lists = sum('SELECT "places_author"."id", "places_author"."name" FROM "places_author"' in q["sql"]
                    and "WHERE" not in q["sql"] for q in captured.captured_queries)
        page = response.content.split(b'id="djDebug"')[0]  # the toolbar's own timings differ
        return lists, re.sub(rb'name="csrfmiddlewaretoken" value="[^"]*"', b"", page)

    with detect() as report:
        assert admin_client.get(url).status_code == 200
    [duplicate] = [f for f in report.findings if f.kind == "duplicate" and f.model == "places.Author"]
    assert not duplicate.library
    assert (duplicate.callsite["filename"], duplicate.callsite["function"]) == ("tests/places/admin.py", "PostInline.author")
    assert duplicate.note.startswith("Every form of PostInline loaded the choices of 'author' again (6 queries; also "
                                     "ThreadAdmin (1))")
    assert duplicate.snippets["raw_id_fields"] == 'raw_id_fields = ["author"]'
    header, *body = duplicate.snippets["fix"].split("\n")
    assert header == "# in PostInline"

    before, page = choice_lists()
    source = Path(places_admin.__file__).read_text().replace("@admin.register(Thread)\n", "")
    source = source.replace("admin.site.register(Category, MPTTModelAdmin)\n", "")  # registered once already
    source = source.replace("    extra = 1\n", "    extra = 1\n" + "".join(f"    {line}\n" for line in body))
    pasted = {"__name__": "tests.places._pasted_admin"}
    exec(compile(source, "pasted_admin.py", "exec"), pasted)  # noqa: S102 (the project's file, with the paste)
    monkeypatch.setattr(places_admin.ThreadAdmin, "inlines", [pasted["PostInline"]])
    after, fixed_page = choice_lists()
    assert (before, after) == (7, 2) and fixed_page == page  # the inline's list once, ThreadAdmin's own once


def test_a_duplicate_called_from_a_project_helper_through_a_library_shortcut_is_the_projects():
    """``get_object_or_404`` issues the statement, but the project's helper called it for every
    post: that line is where to keep the first result, so the finding is not library code."""
    from tests.places.loops import same_thread_per_post

    seed(3)
    thread = Thread.objects.order_by("pk").first()
    with detect() as report:
        same_thread_per_post(thread)
    [duplicate] = [f for f in report.findings if f.kind == "duplicate" and f.model == "places.Thread"]
    assert not duplicate.library
    assert (duplicate.callsite["filename"], duplicate.callsite["function"]) == ("tests/places/loops.py", "thread_author")


def test_the_changelists_second_count_is_turned_off_on_the_projects_model_admin(admin_client, monkeypatch):
    """An unfiltered changelist counts its rows twice (the page's count and the full count): the
    duplicate names the project's ModelAdmin and the option that skips the second."""
    from tests.places.admin import ThreadAdmin

    seed(2)

    def counts() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get("/admin/places/thread/").status_code == 200
        return sum(q["sql"].startswith('SELECT COUNT(*) AS "__count" FROM "places_thread"') for q in captured.captured_queries)

    with detect() as report:
        assert admin_client.get("/admin/places/thread/").status_code == 200
    [duplicate] = [f for f in report.findings if f.kind == "duplicate" and f.model == "places.Thread"]
    assert not duplicate.library and duplicate.snippets["fix"] == "show_full_result_count = False"
    assert "fix `show_full_result_count = False`" in report.to_markdown()
    assert (duplicate.callsite["filename"], duplicate.callsite["code"]) == (
        "tests/places/admin.py", "class ThreadAdmin(admin.ModelAdmin):")
    assert counts() == 2
    monkeypatch.setattr(ThreadAdmin, "show_full_result_count", False)  # the line, pasted in the class
    assert counts() == 1


def test_a_project_model_on_the_default_model_admin_gets_the_registration_option(admin_client, pizzeria):
    with detect() as report:
        assert admin_client.get("/admin/shop/topping/").status_code == 200
    [duplicate] = [f for f in report.findings if f.kind == "duplicate"]
    assert not duplicate.library
    assert duplicate.snippets["fix"] == "admin.site.register(Topping, show_full_result_count=False)"
    assert (duplicate.callsite["filename"], duplicate.callsite["code"]) == (
        "demo/shop/admin.py", "admin.site.register([Category, Topping, Customer, LoyaltyCard, Pizza, Review])")
    with detect() as report:
        assert admin_client.get("/admin/auth/group/").status_code == 200
    [duplicate] = [f for f in report.findings if f.kind == "duplicate"]
    assert duplicate.library and duplicate.snippets["fix"].startswith("# admin.site.unregister(Group), then register")
    assert "registering Group again as it is raises AlreadyRegistered" in duplicate.note


def test_a_project_registration_with_a_librarys_model_admin_keeps_that_class(admin_client, monkeypatch):
    """``admin.site.register(Category, MPTTModelAdmin)`` (django-mptt's docs): the option goes on
    that line with the class kept; pasted, the changelist counts once and the tree admin stays."""
    from django.contrib import admin
    from mptt.admin import MPTTModelAdmin

    from tests.places.models import Category

    seed(2)

    def counts() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get("/admin/places/category/").status_code == 200
        return sum(q["sql"].startswith('SELECT COUNT(*) AS "__count" FROM "places_category"')
                   for q in captured.captured_queries)

    with detect() as report:
        assert admin_client.get("/admin/places/category/").status_code == 200
    [duplicate] = [f for f in report.findings if f.kind == "duplicate" and f.model == "places.Category"]
    fix = duplicate.snippets["fix"]
    assert fix == "admin.site.register(Category, MPTTModelAdmin, show_full_result_count=False)"
    assert not duplicate.library
    assert duplicate.callsite["code"] == "admin.site.register(Category, MPTTModelAdmin)"
    assert counts() == 2
    original = admin.site._registry[Category]
    admin.site.unregister(Category)
    try:
        eval(fix, {"admin": admin, "Category": Category, "MPTTModelAdmin": MPTTModelAdmin})  # the line, pasted
        pasted = admin.site._registry[Category]
    finally:
        admin.site._registry[Category] = original
    assert isinstance(pasted, MPTTModelAdmin) and pasted.show_full_result_count is False
    # The admin's URLs were bound to the registered instance when the URLconf loaded: give it the
    # pasted registration's option to count what that registration serves.
    monkeypatch.setattr(original, "show_full_result_count", pasted.show_full_result_count)
    assert counts() == 1


def test_a_repeated_content_type_lookup_gets_the_cached_lookup_on_its_line():
    from django.contrib.contenttypes.models import ContentType

    from tests.places.loops import thread_kinds

    seed(3)
    ContentType.objects.clear_cache()
    with detect() as report:
        thread_kinds()
    [duplicate] = [f for f in report.findings if f.kind == "duplicate"]
    assert duplicate.callsite["filename"] == "tests/places/loops.py" and not duplicate.library
    assert duplicate.snippets["fix"] == "kind = ContentType.objects.get_by_natural_key('places', 'thread')"
    ContentType.objects.clear_cache()
    with CaptureQueriesContext(connection) as captured:  # the fixed line, run once per thread
        for _ in range(3):
            eval(duplicate.snippets["fix"].split(" = ", 1)[1], {"ContentType": ContentType})  # noqa: S307
    assert len(captured.captured_queries) == 1
