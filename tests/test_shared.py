"""A fix at a shared place is proven on every request through it (shared.py).

``tests/places/views.py``'s ``live_posts()`` helper builds the queryset of two pages: one reads
each post's author and tags, the other each post's thread. The tags page's fix on the helper's
line (a ``prefetch_related("tags")``) would add a query to the titles page; the titles page's
fix (a ``select_related("thread")``) costs the tags page nothing. Through the toolbar (eager and
lazy proofs, DDT's store) and through the crawl.
"""

from __future__ import annotations

import io

import pytest
from debug_toolbar.store import get_store
from django.core.management import call_command
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.db import connection

from ddt_prefetch_panel import shared
from ddt_prefetch_panel.management.commands.prefetch_report import Command
from tests.places.seed import seed
from tests.places.views import live_posts
from tests.toolbar import latest_request_id, render_panel, stored_stats

pytestmark = pytest.mark.django_db

TAGS = "/places/posts/live/"
TITLES = "/places/posts/live/titles/"


@pytest.fixture(autouse=True)
def fresh_history():
    get_store().clear()
    shared._held.clear()
    yield
    shared._held.clear()


def visit(client, url: str) -> str:
    assert client.get(url).status_code == 200
    return latest_request_id()


def at_the_helper(stats: dict) -> list[dict]:
    """The page's N+1 findings placed on live_posts()'s line."""
    return [f for f in stats["report"]["findings"]
            if f["kind"] == "n_plus_one" and (f.get("place") or {}).get("code") == 'return Post.objects.filter(draft=False).order_by("pk")']


def test_a_fix_that_adds_a_query_to_another_page_through_the_same_line_is_withheld(client):
    seed(3)
    visit(client, TITLES)
    tags_page = stored_stats(visit(client, TAGS))
    findings = at_the_helper(tags_page)
    assert {f["relation"] for f in findings} >= {"places.Post.tags"}
    for finding in findings:
        assert "line" not in finding["snippets"] and "fix" not in finding["snippets"]
        assert finding["proof"]["status"] == "failed"
        [hurt] = finding["proof"]["hurts"]
        assert hurt["request"] == f"GET {TITLES}"
        assert hurt["after"] == hurt["before"] + 1  # the prefetch's one query, read by nothing there
        assert f"GET {TITLES} ({hurt['before']} → {hurt['after']} queries)" in finding["note"]
        assert "live_posts() also builds the queryset of other requests" in finding["note"]
    assert not [fix for fix in tags_page["report"]["fixes"] if fix["place"]["code"].startswith("return Post.objects")]


def test_a_fix_that_costs_the_other_pages_nothing_is_shown_and_says_where_it_was_replayed(client):
    seed(3)
    visit(client, TAGS)
    titles_page = stored_stats(visit(client, TITLES))
    [finding] = at_the_helper(titles_page)
    assert finding["relation"] == "places.Post.thread"
    assert finding["proof"]["status"] == "verified"
    assert finding["proof"]["shared"] == [f"GET {TAGS}"]
    assert f"This line also built the queryset of GET {TAGS}" in finding["proof"]["detail"]
    line = finding["snippets"]["line"]
    assert line == 'return Post.objects.filter(draft=False).order_by("pk").select_related("thread")'

    # Pasted on the helper's line, both pages: the titles page stops growing, the tags page
    # runs exactly what it ran before.
    def pasted():
        return eval(line.removeprefix("return "), live_posts.__globals__)

    def count(queryset, read) -> int:
        with CaptureQueriesContext(connection) as queries:
            for post in queryset:
                read(post)
        return len(queries)

    titles = lambda post: post.thread.title  # noqa: E731
    tags = lambda post: (post.author.name, [t.name for t in post.tags.all()])  # noqa: E731
    assert count(pasted(), titles) == 1 < count(live_posts(), titles)
    assert count(pasted(), tags) == count(live_posts(), tags)


def test_the_pages_a_lazy_proof_sees_are_those_stored_when_the_panel_is_opened(client):
    """Eager, the tags page's proof saw no other request yet; opened later (the default, lazy),
    it sees the titles page requested after it."""
    seed(3)
    with override_settings(DDT_PREFETCH_PANEL={"PROOF_MODE": "lazy", "PROOF_BUDGET_MS": 3000}):
        tags_id = visit(client, TAGS)
        visit(client, TITLES)
        html = render_panel(client, tags_id)
    findings = at_the_helper(stored_stats(tags_id))
    assert findings and all(f["proof"]["status"] == "failed" and f["proof"]["hurts"] for f in findings)
    assert f"GET {TITLES}" in html


def test_a_cleared_history_is_not_replayed(client):
    seed(3)
    visit(client, TITLES)
    get_store().clear()  # the developer cleared the toolbar's history
    [finding, *_] = at_the_helper(stored_stats(visit(client, TAGS)))
    assert finding["proof"]["status"] == "verified" and "shared" not in finding["proof"]


def test_the_crawl_proves_each_page_against_every_other_page_whatever_their_order(client):
    seed(3)
    out, err = io.StringIO(), io.StringIO()
    call_command(Command(), TAGS, TITLES, "--format", "json", stdout=out, stderr=err)
    import json

    findings = json.loads(out.getvalue())["findings"]
    tags = [f for f in findings if f["relation"] == "places.Post.tags"]
    thread = [f for f in findings if f["relation"] == "places.Post.thread"]
    assert tags and all(f["proof"]["status"] == "failed" and f["proof"]["hurts"][0]["request"] == f"GET {TITLES}"
                        for f in tags)
    assert thread and thread[0]["proof"]["status"] == "verified" and thread[0]["proof"]["shared"] == [f"GET {TAGS}"]
    assert not shared._held  # the crawl holds its pages for itself, never in the panel's history
