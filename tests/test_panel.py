"""End to end through django-debug-toolbar: request -> store -> render_panel."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from ddt_prefetch_panel.panel import PrefetchPanel, panel_context
from tests.toolbar import get_with_toolbar, render_panel, stored_stats

pytestmark = pytest.mark.django_db


def test_demo_page_shows_relation_call_site_and_snippet(client, pizzeria):
    response, request_id = get_with_toolbar(client, "/forward-fk/bad/")
    assert b'id="djDebug"' in response.content
    html = render_panel(client, request_id)
    assert "shop.Order.customer" in html
    assert "forward FK" in html
    assert "demo/shop/views.py" in html or "shop/views.py" in html
    assert ".select_related(&quot;customer&quot;)" in html
    assert 'data-ddtpp-copy="snippet-1-1"' in html


def test_stats_survive_the_store_round_trip_unchanged(client, pizzeria):
    _, request_id = get_with_toolbar(client, "/nested/bad/")
    stats = stored_stats(request_id)
    assert stats["error"] is None
    assert json.loads(json.dumps(stats)) == stats
    [finding] = [f for f in stats["report"]["findings"] if f["kind"] == "n_plus_one"]
    assert finding["lookup"] == "pizzas__category"
    assert stats["report"]["summary"]["n_plus_one"] == 1


def test_nav_subtitle_counts_from_stored_stats(client, pizzeria):
    _, request_id = get_with_toolbar(client, "/reverse-fk/bad/")
    from debug_toolbar.toolbar import DebugToolbar

    toolbar = DebugToolbar.fetch(request_id, PrefetchPanel.panel_id)
    panel = toolbar.get_panel_by_id(PrefetchPanel.panel_id)
    assert panel.nav_subtitle.startswith("1 N+1 · ")
    assert "avoidable queries" in panel.nav_subtitle


def test_template_loop_call_site_is_the_template_line(client, pizzeria):
    _, request_id = get_with_toolbar(client, "/template-loop/bad/")
    report = stored_stats(request_id)["report"]
    [finding] = [f for f in report["findings"] if f["kind"] == "n_plus_one"]
    assert finding["callsite"]["template"] is True
    assert finding["callsite"]["filename"] == "shop/template_loop.html"
    assert "order.customer" in finding["callsite"]["code"]
    # The queryset is built in the view; that is where the fix goes.
    assert finding["origin"]["filename"].endswith("views.py")
    assert "Order.objects" in finding["origin"]["code"]


def test_fixed_page_shows_the_friendly_empty_state(client, pizzeria):
    _, request_id = get_with_toolbar(client, "/forward-fk/fixed/")
    html = render_panel(client, request_id)
    assert "No repeated queries." in html


def test_analysis_failure_is_shown_in_the_panel_and_the_page_still_renders(client, pizzeria, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("analysis exploded")

    monkeypatch.setattr("ddt_prefetch_panel.panel.analyze", boom)
    response, request_id = get_with_toolbar(client, "/forward-fk/bad/")
    assert b"djDebug" in response.content
    html = render_panel(client, request_id)
    assert "RuntimeError: analysis exploded" in html
    assert "could not analyse this request" in html


def test_everything_user_controlled_is_escaped():
    hostile = "<script>alert(1)</script>"
    finding = {
        "kind": "n_plus_one", "model": hostile, "relation": hostile, "lookup": hostile, "method": None,
        "count": 2, "avoidable": 1, "duration_ms": 1.0, "sql": f"SELECT '{hostile}'",
        "callsite": {"filename": hostile, "lineno": 1, "function": hostile, "code": hostile, "template": True},
        "stack": [{"filename": hostile, "lineno": 1, "function": hostile, "code": hostile, "template": False}],
        "origin": None, "snippets": {"fix": hostile}, "note": hostile,
    }
    from django.template.loader import render_to_string

    html = render_to_string(PrefetchPanel.template, panel_context(
        {"report": {"summary": {"queries": 2}, "findings": [finding]}, "error": None}
    ))
    assert hostile not in html
    assert "&lt;script&gt;" in html


@override_settings(DEBUG_TOOLBAR_PANELS=["ddt_prefetch_panel.panel.PrefetchPanel"])
def test_panel_works_without_the_sql_panel(client, pizzeria):
    from debug_toolbar.toolbar import DebugToolbar

    DebugToolbar._panel_classes = None
    try:
        _, request_id = get_with_toolbar(client, "/reverse-fk/bad/")
        assert stored_stats(request_id)["report"]["summary"]["n_plus_one"] == 1
    finally:
        DebugToolbar._panel_classes = None


def test_toolbar_own_requests_are_not_captured(client, pizzeria):
    _, request_id = get_with_toolbar(client, "/forward-fk/fixed/")
    render_panel(client, request_id)
    assert stored_stats(request_id)["report"]["summary"]["queries"] == 1
