"""Replay proofs (prove.py) on shapes from real projects (tests/proofs/).

For each shape: the proof's status and counts, and then what a user does with the advice:
every rewritten line the product shows is pasted over its origin line in a copy of the
scenario module, which must import, run with a constant number of queries at two row counts,
and return the same data as the original code.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from ddt_prefetch_panel import detect, prove
from tests.proofs import scenarios
from tests.proofs.models import (
    ArticlePage, Author, Bookmark, Cable, CableTermination, Circuit, Comment, ConsolePort, Device, GalleryImage, Image,
    Interface, Page, Post, Product, Site, Tag, Termination,
)

pytestmark = pytest.mark.django_db
SCENARIOS = Path(scenarios.__file__)


def seed(n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        author = Author.objects.create(name=f"author {i}")
        post = Post.objects.create(title=f"post {i}", author=author, published=i % 3 != 2)
        post.tags.set([Tag.objects.create(name=f"t{i}"), Tag.objects.create(name=f"u{i}")])
        for j in range(2):
            Comment.objects.create(post=post, body=f"c{i}{j}")
            image = Image.objects.create(file=f"img{i}-{j}.jpg", credit=author)
            GalleryImage.objects.create(post=post, image=image, sort_order=2 - j)
        article = ArticlePage.objects.create(title=f"page {i}", author=author, image=image)
        article.authors.set([author, Author.objects.create(name=f"co-author {i}")])
        Circuit.objects.create(
            cid=f"c{i}",
            term_a=Termination.objects.create(site=Site.objects.create(name=f"a{i}")),
            term_z=Termination.objects.create(site=Site.objects.create(name=f"z{i}")),
        )
        Bookmark.objects.create(content_type=ContentType.objects.get_for_model(Post), object_id=post.pk)


def analyse(name: str):
    with detect() as report:
        result = getattr(scenarios, name)()
    return report, result


def patched_module(report, tmp_path: Path, name: str):
    """The scenario module with every shown ``line`` (and ``access`` line) pasted in."""
    lines = SCENARIOS.read_text().splitlines()
    imports: set[str] = set()
    replacements: dict[int, str] = {}
    for fix in report.fixes:
        origin = fix["origin"]
        assert fix["line"], fix
        assert origin["filename"].endswith("tests/proofs/scenarios.py"), origin
        replacements[origin["lineno"]] = fix["line"]
        imports |= {line for line in fix["import"].splitlines() if line}
    for finding in report.findings:
        if finding.snippets.get("access"):
            replacements[finding.callsite["lineno"]] = finding.snippets["access"]
    for lineno, text in replacements.items():
        old = lines[lineno - 1]
        lines[lineno - 1] = old[: len(old) - len(old.lstrip())] + text
    path = tmp_path / f"patched_{name}.py"
    path.write_text("\n".join(sorted(imports) + lines) + "\n")
    spec = importlib.util.spec_from_file_location(f"patched_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def queries(function) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        result = function()
    return len(captured), result


SHAPES = {
    # name: (relation of one finding, the combined fix, whether all findings share it)
    # The expert's fix: the prefetched gallery joins its images (2 queries, not 3).
    "gallery_index": ("proofs.GalleryImage.image",
                      '.prefetch_related(Prefetch("gallery_images", queryset=GalleryImage.objects.select_related("image")))'),
    "three_relations": ("proofs.Post.tags", '.select_related("author").prefetch_related("tags", "comments")'),
    "downcast_pages": ("proofs.ArticlePage.author", '.select_related("articlepage__author")'),
    "both_ends": ("proofs.Termination.site", '.select_related("term_a__site", "term_z__site")'),
    "chunked": ("proofs.Post.author", '.select_related("author")'),
    "live_posts": ("proofs.Post.author", '.select_related("author")'),
    "library_reads": ("proofs.GalleryImage.image",
                      '.prefetch_related(Prefetch("gallery_images", queryset=GalleryImage.objects.select_related("image")))'),
    # Joining the author in the Post queryset runs one statement fewer than the plain lookup.
    "bookmarks": ("proofs.Post.author", '.prefetch_related(GenericPrefetch("target", [Post.objects.select_related("author")]))'),
    # Relations read off a downcast through the reverse one-to-one: one fix through it.
    "article_pages": ("proofs.ArticlePage.authors",
                      '.select_related("articlepage__image").prefetch_related("articlepage__authors")'),
    # Author.objects.get(pk=post.author_id) per post, then author.posts: one fix through Post.author,
    # with the loop line reading post.author.
    "author_cards": ("proofs.Author.posts", '.select_related("author").prefetch_related("author__posts")'),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_fix_is_verified_and_the_pasted_line_works(name, tmp_path):
    relation, combined = SHAPES[name]
    seed(4)
    report, original = analyse(name)
    n_plus_ones = report.by_kind("n_plus_one")
    assert relation in {f.relation for f in n_plus_ones}
    for finding in n_plus_ones:
        assert finding.proof["status"] == "verified", finding.proof
        assert finding.proof["after"] < finding.proof["before"]
        assert finding.fix_id is not None
    [fix] = report.fixes
    assert fix["fix"] == combined
    assert fix["proof"]["status"] == "verified"
    assert sorted(fix["findings"]) == sorted(report.findings.index(f) for f in n_plus_ones)

    module = patched_module(report, tmp_path, name)
    count_small, result_small = queries(getattr(module, name))
    assert result_small == original
    seed(4, start=4)
    count_large, result_large = queries(getattr(module, name))
    assert count_large == count_small, "the pasted fix must make the query count constant"
    assert result_large == getattr(scenarios, name)()
    unfixed, _ = queries(getattr(scenarios, name))
    assert count_large < unfixed
    assert count_large == fix["proof"]["after"]


def seed_cables(n: int, start: int = 0) -> None:
    """Cables with two ends each: an interface of one device, a console port of another."""
    for i in range(start, start + n):
        site = Site.objects.create(name=f"site {i}")
        cable = Cable.objects.create(label=f"cable {i}")
        interface = Interface.objects.create(name=f"eth{i}", device=Device.objects.create(name=f"sw{i}", site=site))
        port = ConsolePort.objects.create(name=f"con{i}", device=Device.objects.create(name=f"srv{i}", site=site))
        for end in (interface, port):
            CableTermination.objects.create(cable=cable, termination=end)


BOTH = '[ConsolePort.objects.select_related("device"), Interface.objects.select_related("device")]'
BOTH_SITES = '[ConsolePort.objects.select_related("device__site"), Interface.objects.select_related("device__site")]'
CABLE_SHAPES = {
    # name: (the shown fix, relations of the findings, statements with the fix)
    "termination_devices": (  # generic FK first
        f'.prefetch_related(GenericPrefetch("termination", {BOTH}))',
        {"proofs.ConsolePort.device", "proofs.Interface.device"}, 3),
    "cable_devices": (  # in the middle, after a reverse FK
        f'.prefetch_related(GenericPrefetch("terminations__termination", {BOTH}))',
        {"proofs.ConsolePort.device", "proofs.Interface.device"}, 4),
    "cable_sites": (  # in the middle, two hops after it
        f'.prefetch_related(GenericPrefetch("terminations__termination", {BOTH_SITES}))',
        {"proofs.Device.site"}, 4),
    "cable_ends": (  # last
        '.prefetch_related("terminations__termination")', {"proofs.CableTermination.termination"}, 4),
    # The project prefetches the generic FK already: GenericPrefetch takes that lookup's place.
    "known_ends_devices": (
        f'.prefetch_related(GenericPrefetch("terminations__termination", {BOTH}))',
        {"proofs.ConsolePort.device", "proofs.Interface.device"}, 4),
    "known_ends_sites": (
        f'.prefetch_related(GenericPrefetch("terminations__termination", {BOTH_SITES}))', {"proofs.Device.site"}, 4),
    "prefetched_cable_devices": (  # after the project's own prefetch
        f'.prefetch_related(GenericPrefetch("terminations__termination", {BOTH}))',
        {"proofs.ConsolePort.device", "proofs.Interface.device"}, 4),
}


@pytest.mark.parametrize("name", sorted(CABLE_SHAPES))
def test_a_generic_fk_anywhere_in_the_path_gets_a_proven_fix(name, tmp_path):
    """Cables -> ends -> the generic termination (an interface or a console port) -> its device:
    one queryset per content type seen, each joining what the loop reads after the generic FK."""
    shown, relations, fixed = CABLE_SHAPES[name]
    seed_cables(4)
    report, original = analyse(name)
    n_plus_ones = report.by_kind("n_plus_one")
    assert {f.relation for f in n_plus_ones} == relations
    [fix] = report.fixes
    assert fix["fix"] == shown
    assert all(f.snippets["fix"] == shown and f.proof["status"] == "verified" for f in n_plus_ones)
    if "GenericPrefetch" in shown:
        assert {f.method for f in n_plus_ones} == {"GenericPrefetch"}
        assert "from django.contrib.contenttypes.prefetch import GenericPrefetch" in fix["import"]
        assert "from tests.proofs.models import ConsolePort, Interface" in fix["import"]
    proof = fix["proof"]
    assert proof["status"] == "verified" and proof["after"] == fixed < proof["before"]

    module = patched_module(report, tmp_path, name)
    count_small, result_small = queries(getattr(module, name))
    assert result_small == original and count_small == fixed
    assert abs(proof["page_after"] - count_small) <= max(2, count_small // 10)
    seed_cables(4, start=4)
    count_large, result_large = queries(getattr(module, name))
    assert count_large == count_small, "the pasted fix must make the query count constant"
    assert result_large == getattr(scenarios, name)()


DEFERRED_SHAPES = {
    # name: (the shown fix, the pasted line, statements with the fix)
    "deferred_comments": (
        '.prefetch_related(Prefetch("comments", queryset=Comment.objects.only("body", "id", "post")))',
        'posts = Post.objects.prefetch_related(Prefetch("comments", queryset=Comment.objects.only("body", "id", "post")))'
        '.order_by("pk")', 2),
    # A field of an object the Prefetch's queryset joins is named by its path.
    "deferred_gallery": (
        '.prefetch_related(Prefetch("gallery_images", queryset=GalleryImage.objects.select_related("image")'
        '.only("image__file", "image__id", "post")))',
        'posts = Post.objects.prefetch_related(Prefetch("gallery_images", queryset=GalleryImage.objects'
        '.select_related("image").only("image__file", "image__id", "post"))).order_by("pk")', 2),
    # defer() loses the field; the project's other lookups stay where they are.
    "deferred_among_lookups": (
        '.prefetch_related(Prefetch("comments", queryset=Comment.objects.all()))',
        'posts = Post.objects.prefetch_related("tags", Prefetch("comments", queryset=Comment.objects.all()), '
        '"gallery_images").order_by("pk")', 4),
}


@pytest.mark.parametrize("name", sorted(DEFERRED_SHAPES))
def test_a_field_deferred_by_a_prefetch_is_loaded_by_its_queryset(name, tmp_path):
    """``Prefetch("comments", queryset=Comment.objects.only("id", "post"))`` and ``comment.body``
    read per comment: one query per comment. The Prefetch's queryset loads the field."""
    shown, line, fixed = DEFERRED_SHAPES[name]
    seed(4)
    report, original = analyse(name)
    [finding] = report.by_kind("n_plus_one")
    assert finding.relation_kind == "deferred field"
    assert finding.method == "Prefetch"
    assert finding.snippets["fix"] == shown
    assert finding.snippets["line"] == line
    assert finding.proof["status"] == "verified", finding.proof
    [fix] = report.fixes
    assert fix["line"] == line and fix["proof"]["status"] == "verified"
    assert "from django.db.models import Prefetch" in fix["import"]

    module = patched_module(report, tmp_path, name)
    count_small, result_small = queries(getattr(module, name))
    assert result_small == original and count_small == fixed
    assert abs(fix["proof"]["page_after"] - count_small) <= max(2, count_small // 10)
    seed(4, start=4)
    count_large, result_large = queries(getattr(module, name))
    assert count_large == count_small, "the pasted fix must make the query count constant"
    assert result_large == getattr(scenarios, name)()
    unfixed, _ = queries(getattr(scenarios, name))
    assert unfixed > count_large + 8


def test_a_field_deferred_by_a_filtered_prefetch_is_named_not_rewritten():
    """Its queryset filters: written out from a manager it would lose the filter, so the
    finding says where to add the field and offers nothing to paste."""
    seed(4)
    report, _ = analyse("deferred_filtered")
    [finding] = report.by_kind("n_plus_one")
    assert finding.relation == "proofs.Comment.body"
    assert finding.method is None and "fix" not in finding.snippets
    assert "'body' was deferred by the queryset of Prefetch(\"comments\"): add it to that queryset's only()" in (
        finding.note)


def test_rewritten_lines_keep_terminal_calls_last():
    seed(3)
    report, _ = analyse("chunked")
    assert report.fixes[0]["line"] == (
        'for post in Post.objects.order_by("pk").select_related("author").iterator(chunk_size=3):')
    report, _ = analyse("live_posts")
    assert report.fixes[0]["line"] == 'posts = Post.live.order_by("pk").select_related("author")'


def test_to_attr_is_not_offered_where_a_library_reads_the_manager():
    """The library reads ``.all()[0]``: a Prefetch(to_attr=...) list would never be read (it
    makes things worse), so the fix is the plain prefetch that serves that read."""
    seed(4)
    report, _ = analyse("library_reads")
    assert all("to_attr" not in (f.snippets.get("fix") or "") for f in report.findings)
    [finding] = report.by_kind("n_plus_one")
    root = next(r for r in _roots_of("library_reads") if r.model is Post)
    steps = prove.steps_for(_hops(Post, ("gallery_images",)), call=_slice_call(), aggregate=None)
    names = prove.namespace(Post, GalleryImage)
    to_attr = '.prefetch_related(Prefetch("gallery_images", queryset=GalleryImage.objects.all()[:1], to_attr="first"))'
    worse = prove.prove(root, to_attr, [steps], prove.Limits(), prove.Budget(5), names)
    assert worse["status"] == "failed" and worse["after"] >= worse["before"], worse
    assert finding.proof["status"] == "verified"


def _roots_of(name: str):
    from ddt_prefetch_panel import capture as cap

    with cap.capturing() as capture:
        getattr(scenarios, name)()
    return capture.roots


def _hops(model, path):
    from ddt_prefetch_panel.relate import describe_path

    return describe_path(model, path)


def _slice_call():
    from ddt_prefetch_panel.capture import Call

    return Call(high=1)


def test_generic_prefetch_covers_every_content_type_seen(tmp_path):
    """Bookmarks to posts and to images: one queryset per content type seen, the author joined
    where the type has one (the plain prefetch_related("target__author") would raise on an image)."""
    seed(4)
    for image in Image.objects.all()[:3]:
        Bookmark.objects.create(content_type=ContentType.objects.get_for_model(Image), object_id=image.pk)
    report, original = analyse("mixed_bookmarks")
    [finding] = report.by_kind("n_plus_one")
    assert finding.method == "GenericPrefetch"
    assert finding.proof["status"] == "verified"
    assert finding.snippets["fix"] == (
        '.prefetch_related(GenericPrefetch("target", [Post.objects.select_related("author"), Image.objects.all()]))')
    module = patched_module(report, tmp_path, "mixed_bookmarks")
    count, result = queries(module.mixed_bookmarks)
    assert result == original and count == 3


def test_first_candidate_fails_and_the_second_is_proven(tmp_path):
    """A to-many relation after the generic FK: the plain lookup runs fewer statements and goes
    first, but raises on an image (no tags); GenericPrefetch is proven instead."""
    seed(4)
    for image in Image.objects.all()[:3]:
        Bookmark.objects.create(content_type=ContentType.objects.get_for_model(Image), object_id=image.pk)
    report, original = analyse("mixed_bookmark_tags")
    [finding] = report.by_kind("n_plus_one")
    assert finding.method == "GenericPrefetch"
    assert finding.proof["status"] == "verified"
    assert finding.snippets["fix"] == (
        '.prefetch_related(GenericPrefetch("target", [Post.objects.prefetch_related("tags"), Image.objects.all()]))')
    assert "Tried first: .prefetch_related(\"target__tags\") failed" in finding.note
    module = patched_module(report, tmp_path, "mixed_bookmark_tags")
    count, result = queries(module.mixed_bookmark_tags)
    assert result == original and count == 4


def test_nothing_provable_shows_no_line_and_says_why():
    seed(3)
    with detect() as report, transaction.atomic():
        for post in Post.objects.select_for_update().order_by("pk"):
            post.author.name
    [finding] = report.by_kind("n_plus_one")
    assert finding.relation == "proofs.Post.author"
    assert finding.proof["status"] == "skipped"
    assert "select_for_update" in finding.proof["detail"]
    assert finding.method is None and "fix" not in finding.snippets and "line" not in finding.snippets
    assert "No fix is shown" in finding.note and report.fixes == []


def test_a_failing_fix_is_reported_failed_with_its_reason():
    seed(3)
    root = next(r for r in _roots_of("three_relations") if r.model is Post)
    names = prove.namespace(Post)
    steps = [prove.steps_for(_hops(Post, ("tags",)))]
    broken = prove.prove(root, '.prefetch_related("no_such_relation")', steps, prove.Limits(), prove.Budget(5), names)
    assert broken["status"] == "failed" and "AttributeError" in broken["detail"]
    useless = prove.prove(root, '.select_related("author")', steps, prove.Limits(), prove.Budget(5), names)
    assert useless["status"] == "failed" and "did not remove" in useless["detail"]


def test_replays_never_write_and_never_count_toward_assert_num_queries():
    seed(4)
    before = {model: model.objects.count() for model in (Post, Author, Tag, Comment, Image)}
    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record), CaptureQueriesContext(connection) as captured:
        with detect() as report:
            scenarios.three_relations()
    assert {f.proof["status"] for f in report.by_kind("n_plus_one")} == {"verified"}
    # The page ran 1 + 3 x 4 queries; the replays ran many more, none of them counted...
    assert len(captured) == 13 == report.summary["queries"]
    assert len(statements) > 13
    # ... and none of them wrote (a savepoint/transaction that is rolled back is all there is).
    writes = [s for s in statements if s.lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE", "CREATE")]
    assert writes == []
    assert {model: model.objects.count() for model in before} == before


def test_proofs_can_be_turned_off_and_are_bounded():
    seed(4)
    with detect(PROOFS=False) as report:
        scenarios.three_relations()
    assert {f.proof["status"] for f in report.by_kind("n_plus_one")} == {"skipped"}
    assert all(f.snippets.get("fix") for f in report.by_kind("n_plus_one"))
    with detect(PROOF_BUDGET_MS=0) as report:
        scenarios.three_relations()
    assert {f.proof["status"] for f in report.by_kind("n_plus_one")} == {"skipped"}
    assert all("budget" in f.proof["detail"] and "fix" not in f.snippets for f in report.by_kind("n_plus_one"))
    with detect(PROOF_MAX_ROWS=2) as report:
        scenarios.three_relations()
    assert {f.proof["rows"] for f in report.by_kind("n_plus_one")} == {2}


def test_every_fix_shown_on_the_demo_pages_is_verified(client):
    """Issue 11's bar: on each demo scenario, every N+1 that shows a fix carries a verified
    proof, and each combined fix is verified too."""
    from shop import urls as shop_urls
    from shop.seed import seed as seed_pizzeria

    seed_pizzeria(orders=10)
    checked = 0
    for pattern in shop_urls.urlpatterns:
        if not (pattern.name or "").endswith("-bad"):
            continue
        with detect() as report:
            response = client.get("/" + str(pattern.pattern))
        assert response.status_code == 200, pattern.name
        for finding in report.by_kind("n_plus_one"):
            if finding.snippets.get("fix"):
                checked += 1
                assert finding.proof["status"] == "verified", (pattern.name, finding.relation, finding.proof)
        assert all(fix["proof"]["status"] == "verified" for fix in report.fixes), pattern.name
    assert checked >= 15


def within_page_count(fix: dict, real: int) -> bool:
    """The proof's whole-page count with the fix is the count of the page once it is pasted."""
    return abs(fix["proof"]["page_after"] - real) <= max(2, real // 10)


def test_a_per_row_downcast_and_the_relations_read_off_it_are_one_fix_on_the_child_model(tmp_path):
    """``page.specific`` loads each page again as an ArticlePage by its key, then the loop reads
    the article's authors and image. The re-fetch is reported as the downcast it is, and all
    three N+1s get one fix at the pages' line: query ArticlePage with the same filters (a
    select_related on Page cannot help: the loop loads the row again anyway)."""
    seed(4)
    ArticlePage.objects.create(title="draft", author=Author.objects.first(), live=False)  # the filter must stay
    report, original = analyse("specific_pages")
    n_plus_ones = report.by_kind("n_plus_one")
    by_relation = {f.relation: f for f in n_plus_ones}
    assert set(by_relation) == {"proofs.Page.articlepage", "proofs.ArticlePage.authors", "proofs.ArticlePage.image"}
    downcast = by_relation["proofs.Page.articlepage"]
    assert downcast.title == "N+1: proofs.Page.articlepage (downcast)"
    assert (downcast.model, downcast.lookup, downcast.relation_kind) == ("proofs.Page", "articlepage", "downcast")
    assert downcast.count == 4 and downcast.related_model == "proofs.ArticlePage"
    assert "loaded again as ArticlePage by its key at tests/proofs/models.py" in downcast.note
    assert by_relation["proofs.ArticlePage.authors"].lookup == "articlepage__authors"
    assert by_relation["proofs.ArticlePage.authors"].model == "proofs.Page"
    [fix] = report.fixes
    shown = 'ArticlePage.objects.filter(live=True).order_by("pk").select_related("image").prefetch_related("authors")'
    assert fix["fix"] == shown
    assert fix["line"] == f"pages = {shown}"
    assert fix["import"] == "from tests.proofs.models import ArticlePage"
    assert fix["proof"]["status"] == "verified", fix["proof"]
    assert sorted(fix["findings"]) == sorted(report.findings.index(f) for f in n_plus_ones)
    assert sum(f.avoidable for f in n_plus_ones) == fix["proof"]["page_before"] - fix["proof"]["page_after"]
    for finding in n_plus_ones:
        assert finding.fix_id == 0 and finding.snippets["fix"] == shown and finding.proof["status"] == "verified"
        assert finding.avoidable <= finding.count, (finding.relation, finding.avoidable, finding.count)
        assert finding.place["kind"] == "queryset" and finding.place["code"].startswith("pages = Page.objects")

    module = patched_module(report, tmp_path, "specific_pages")
    count_small, result_small = queries(module.specific_pages)
    assert result_small == original
    assert within_page_count(fix, count_small), (fix["proof"], count_small)
    seed(4, start=4)
    count_large, result_large = queries(module.specific_pages)
    assert count_large == count_small, "the pasted fix must make the query count constant"
    assert result_large == scenarios.specific_pages()
    unfixed, _ = queries(scenarios.specific_pages)
    assert count_large < unfixed


def test_relations_read_through_the_reverse_one_to_one_downcast_count_as_the_page_runs(tmp_path):
    seed(4)
    report, _ = analyse("article_pages")
    [fix] = report.fixes
    module = patched_module(report, tmp_path, "article_pages")
    count, _ = queries(module.article_pages)
    assert within_page_count(fix, count), (fix["proof"], count)
    authors = next(f for f in report.findings if f.relation == "proofs.ArticlePage.authors")
    assert any("page.articlepage" in c["code"] for c in authors.callsites)  # the downcast level is counted in
    assert "through proofs.Page.articlepage (downcast), one query per row" in authors.note


def test_a_downcast_that_would_drop_rows_shows_no_line_and_says_why():
    """Some pages are not articles: querying ArticlePage instead would drop them from the page."""
    seed(3)
    Page.objects.create(title="plain page")
    report, _ = analyse("specific_titles")
    [downcast] = report.by_kind("n_plus_one")
    assert downcast.relation == "proofs.Page.articlepage" and downcast.relation_kind == "downcast"
    assert downcast.proof["status"] == "failed"
    assert "Only 3 of the first 4 Page rows are ArticlePage rows" in downcast.proof["detail"]
    assert "line" not in downcast.snippets and "fix" not in downcast.snippets and downcast.method is None
    assert "No fix is shown" in downcast.note and report.fixes == []


def test_only_the_downcast(tmp_path):
    """Nothing read off the re-fetched rows but their own fields: the fix is the child query alone."""
    seed(4)
    report, original = analyse("specific_titles")
    [downcast] = report.by_kind("n_plus_one")
    assert downcast.relation == "proofs.Page.articlepage"
    [fix] = report.fixes
    assert fix["line"] == 'pages = ArticlePage.objects.filter(live=True).order_by("pk")'
    assert fix["proof"]["status"] == "verified" and fix["proof"]["after"] == 1
    module = patched_module(report, tmp_path, "specific_titles")
    count, result = queries(module.specific_titles)
    assert (count, result) == (1, original)
    assert within_page_count(fix, count)


def test_rows_loaded_by_key_per_search_hit_get_in_bulk_on_the_hits(tmp_path):
    """``for hit_id in ids: Product.objects.get(pk=hit_id)``: named as the per-row load it is,
    and fixed with one ``in_bulk(ids)`` on the loop's own list, proven on this request's keys."""
    ids = [Product.objects.create(name=f"product {i}").pk for i in range(6)][::-1]
    with detect() as report:
        names = scenarios.search_hits(ids)
    [finding] = report.by_kind("n_plus_one")
    assert finding.title == "N+1: proofs.Product loaded by pk per hit"
    assert (finding.model, finding.relation, finding.method) == ("proofs.Product", None, "in_bulk")
    assert finding.snippets["fix"] == "product_by_pk = Product.objects.in_bulk(ids)  # once, before the loop"
    assert finding.snippets["access"] == "return [product_by_pk[hit_id].name for hit_id in ids]"
    assert finding.proof["status"] == "verified" and finding.proof["after"] == 1

    lines = SCENARIOS.read_text().splitlines()
    lineno = finding.callsite["lineno"]
    indent = lines[lineno - 1][: len(lines[lineno - 1]) - len(lines[lineno - 1].lstrip())]
    lines[lineno - 1: lineno] = [indent + finding.snippets["fix"], indent + finding.snippets["access"]]
    path = tmp_path / "patched_search_hits.py"
    path.write_text("\n".join(lines) + "\n")
    spec = importlib.util.spec_from_file_location("patched_search_hits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    count, result = queries(lambda: module.search_hits(ids))
    assert (count, result) == (1, names)
    more = ids + [Product.objects.create(name=f"product {i}").pk for i in range(6, 12)]
    count, result = queries(lambda: module.search_hits(more))
    assert (count, result) == (1, scenarios.search_hits(more))


def test_a_downcast_written_in_the_loop_becomes_the_row_itself(tmp_path):
    """``article = ArticlePage.objects.get(id=page.id)`` in the loop body: the fix queries
    ArticlePage at the pages' line and the loop line reads the row itself (``article = page``);
    both edits are part of the one fix, proven and pasted together."""
    seed(4)
    report, original = analyse("hand_downcast")
    downcast = next(f for f in report.findings if f.relation == "proofs.Page.articlepage")
    assert downcast.snippets["access"] == "article = page"
    [fix] = report.fixes
    assert fix["line"] == 'pages = ArticlePage.objects.filter(live=True).order_by("pk").select_related("image")'
    assert [a["line"] for a in fix["access"]] == ["article = page"]
    assert fix["proof"]["status"] == "verified"
    module = patched_module(report, tmp_path, "hand_downcast")
    count_small, result = queries(module.hand_downcast)
    assert (count_small, result) == (1, original)
    assert within_page_count(fix, count_small), (fix["proof"], count_small)
    seed(4, start=4)
    assert queries(module.hand_downcast) == (1, scenarios.hand_downcast())


def test_relations_read_off_rows_loaded_by_key_climb_to_the_looped_queryset():
    seed(3)
    report, _ = analyse("author_cards")
    posts = next(f for f in report.findings if f.relation == "proofs.Author.posts")
    assert (posts.model, posts.lookup) == ("proofs.Post", "author__posts")
    assert "loads one by one by key at tests/proofs/scenarios.py" in posts.note
    [fix] = report.fixes
    assert [a["line"] for a in fix["access"]] == ["author = post.author"]


def test_a_child_query_on_a_line_other_pages_share_is_replayed_on_them_rebased():
    """``pages_of(live)`` builds the pages of a page that downcasts each page (and reads its
    image) and of one that reads titles only. The child query costs the titles page nothing (a
    join it does not read), so it is shown; where that page lists pages that are not articles
    (the drafts), the child query would drop them there, so it is withheld and says so."""
    from ddt_prefetch_panel import shared
    from ddt_prefetch_panel.capture import capturing

    seed(3)

    def cards_beside_titles(live: bool):
        with shared.crawling() as pages:
            with capturing() as other:
                scenarios.page_titles(live)
            pages.append(shared.Held(other, "GET /titles/"))
            report, _ = analyse("page_cards")
        return report

    report = cards_beside_titles(True)
    [fix] = report.fixes
    assert fix["line"] == 'return ArticlePage.objects.filter(live=live).order_by("pk").select_related("image")'
    assert fix["proof"]["shared"] == ["GET /titles/"]

    Page.objects.create(title="a plain draft", live=False)
    ArticlePage.objects.create(title="an article draft", author=Author.objects.first(), live=False)
    report = cards_beside_titles(False)
    assert report.fixes == []
    downcast = next(f for f in report.findings if f.relation == "proofs.Page.articlepage")
    [hurt] = downcast.proof["hurts"]
    assert hurt["request"] == "GET /titles/" and "Only 1 of the first 2 Page rows are ArticlePage rows" in hurt["error"]
    assert "line" not in downcast.snippets and "fix" not in downcast.snippets


def test_one_object_loaded_once_by_key_is_no_refetch_of_the_looped_rows():
    """The loop reads a relation of one author loaded once by its key (not per post): the same
    statement per post, a duplicate, never an N+1 through Post.author."""
    seed(3)
    with detect() as report:
        posts = list(Post.objects.order_by("pk"))
        author = Author.objects.get(pk=posts[0].author_id)
        for _post in posts:
            list(author.coauthored.all())
    assert report.by_kind("n_plus_one") == []
    [duplicate] = report.by_kind("duplicate")
    assert duplicate.count == 3


def test_the_panel_shows_a_downcast_and_its_child_query_fix(client):
    """Through the toolbar: the stored stats (a JSON round trip) keep the downcast and the one fix
    that queries ArticlePage, and the panel names the downcast and shows that line to copy."""
    from tests.toolbar import get_with_toolbar, render_panel, stored_stats

    seed(3)
    _response, request_id = get_with_toolbar(client, "/proofs/specific/")
    report = stored_stats(request_id)["report"]
    [fix] = report["fixes"]
    line = 'pages = ArticlePage.objects.filter(live=True).order_by("pk").select_related("image").prefetch_related("authors")'
    assert fix["line"] == line and fix["proof"]["status"] == "verified"
    assert {f["relation_kind"] for f in report["findings"] if f["relation"] == "proofs.Page.articlepage"} == {"downcast"}
    html = render_panel(client, request_id)
    assert '<code class="ddtpp-subject">proofs.Page.articlepage (downcast)</code>' in html
    assert escape(line) in html
