"""End to end through django-debug-toolbar: request -> store -> render_panel."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from django.template.loader import render_to_string
from django.test import override_settings
from django.utils.html import escape

from ddt_prefetch_panel.panel import PrefetchPanel, panel_context
from tests.test_panel_template import text
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


# --------------------------------------------------------------------------- proven fixes


def panel_of(client, path: str) -> tuple[dict, dict, str]:
    """(stored stats, template context, rendered HTML) of the panel for one demo page."""
    _, request_id = get_with_toolbar(client, path)
    stats = stored_stats(request_id)
    return stats, panel_context(stats), render_panel(client, request_id)


def sections(html: str) -> list[str]:
    """``fix-N`` / ``finding-N`` anchors in the order the panel shows them."""
    return re.findall(r'data-ddtpp-anchor="((?:fix|finding)-\d+)"', html)


def test_combined_fix_card_comes_first_with_its_proof_and_findings(client, pizzeria):
    stats, context, html = panel_of(client, "/combined/bad/")
    report = stats["report"]
    [fix] = report["fixes"]
    assert fix["fix"].startswith('.select_related("customer").prefetch_related(') and "pizzas" in fix["fix"]
    assert fix["proof"]["status"] == "verified"
    assert sorted(fix["findings"]) == [0, 1]
    [card] = context["fixes"]
    assert card["findings"] == [
        {"number": 1, "kind": "n_plus_one", "kind_label": "N+1", "subject": report["findings"][0]["relation"],
         "library": False},
        {"number": 2, "kind": "n_plus_one", "kind_label": "N+1", "subject": report["findings"][1]["relation"],
         "library": False},
    ]
    # The card before every finding; each finding links back to it.
    assert sections(html) == ["fix-1", "finding-1", "finding-2"]
    assert html.count('data-ddtpp-goto="fix-1"') == 2
    assert 'data-ddtpp-goto="finding-1"' in html and 'data-ddtpp-goto="finding-2"' in html
    assert "→ Fix 1 (with 1 other finding)" in html
    # Both the rewritten origin line and the call itself can be copied, as analysis gave them.
    card_html = html[html.index('data-ddtpp-fix="1"'):html.index('data-ddtpp-anchor="finding-1"')]
    assert f'<code data-ddtpp-text="fix-1-line">{escape(fix["line"])}</code>' in card_html
    assert f'<code data-ddtpp-text="fix-1-fix">{escape(fix["fix"])}</code>' in card_html
    assert 'data-ddtpp-copy="fix-1-line"' in card_html and 'data-ddtpp-copy="fix-1-fix"' in card_html
    before, after = fix["proof"]["before"], fix["proof"]["after"]
    # Replayed at half the page's rows (and at all of them, where the count stays the same).
    assert 2 * fix["proof"]["rows"] <= 10 and before > 2 * fix["proof"]["rows"] and after <= 3
    assert f"Verified on this request: {before} → {after} queries for these loops" in text(card_html)
    page_before, page_after = fix["proof"]["page_before"], fix["proof"]["page_after"]
    assert page_before == report["summary"]["queries"] > page_after == page_before - sum(
        f["count"] for f in report["findings"][:2]) + after - 1
    assert f"; this page: {page_before} → {page_after} queries" in text(card_html)
    assert f"replayed on {fix['proof']['rows']} rows in a rolled-back savepoint" in text(card_html)
    assert f"verified {before} → {after}" in text(card_html)
    # The finding's own fix is still there, folded: the combined one is what to paste.
    assert html.count('<details class="ddtpp-alone">') == 2


def test_two_roots_two_cards_each_finding_linked_to_its_own(client, pizzeria):
    stats, context, html = panel_of(client, "/o2o/bad/")
    report = stats["report"]
    assert len(report["fixes"]) == 2
    for number, card in enumerate(context["fixes"], 1):
        [member] = card["findings"]
        finding = next(f for f in context["findings"] if f["number"] == member["number"])
        assert finding["fix_number"] == number and finding["fix_partners"] == 0
        assert card["line"] == report["fixes"][number - 1]["line"]
        assert card["line"].startswith(card["origin"]["code"])
    assert sorted(sections(html)[:2]) == ["fix-1", "fix-2"]
    assert "(with " not in text(html)
    assert '<details class="ddtpp-alone">' not in html


def test_filtered_prefetch_card_carries_its_import(client, pizzeria):
    stats, context, html = panel_of(client, "/filtered-prefetch/bad/")
    [card] = context["fixes"]
    assert "from django.db.models import Prefetch" in card["import"].splitlines()
    assert card["import"] == stats["report"]["fixes"][0]["import"]
    assert 'to_attr="vegetarian_pizzas"' in card["line"]
    assert f'<code data-ddtpp-text="fix-1-import">{card["import"]}</code>' in html
    assert 'data-ddtpp-copy="fix-1-import"' in html
    assert card["proof"]["verified"] and card["pasteable"]


def test_nested_page_one_lookup_one_card(client, pizzeria):
    stats, context, html = panel_of(client, "/nested/bad/")
    [card] = context["fixes"]
    assert card["lookups"] == ["pizzas__category"]
    assert card["line"] == 'orders = Order.objects.prefetch_related("pizzas__category").order_by("pk")'
    assert "queries for this loop" in text(html)


def wrong_advice(monkeypatch, fix: str = '.prefetch_related("pizzas")') -> None:
    """The advice for a forward FK becomes a plausible but wrong fix (prefetching another
    relation), which analysis then really replays on the request's data."""
    from ddt_prefetch_panel import analyze

    real = analyze.advise_relation

    def advise(*args, **kwargs):
        advice = real(*args, **kwargs)
        if advice is not None and advice.method == "select_related":
            advice = dataclasses.replace(advice, method="prefetch_related", snippets={"fix": fix},
                                         proof_call=None, fallbacks=[])
        return advice

    monkeypatch.setattr(analyze, "advise_relation", advise)


def test_failed_proof_shows_what_was_tried_and_no_fix_to_paste(client, pizzeria, monkeypatch):
    wrong_advice(monkeypatch)
    stats, context, html = panel_of(client, "/forward-fk/bad/")
    [finding] = [f for f in stats["report"]["findings"] if f["kind"] == "n_plus_one"]
    assert finding["proof"]["status"] == "failed"
    assert finding["proof"]["fix"] == '.prefetch_related("pizzas")'
    assert "did not remove the repeated queries" in finding["proof"]["detail"]
    assert stats["report"]["fixes"] == [] and context["fixes"] == []
    assert 'data-ddtpp-snippet="fix"' not in html
    assert 'data-ddtpp-copy="origin-after-' not in html and 'data-ddtpp-copy="snippet-' not in html
    assert re.findall(r'data-ddtpp-copy="([^"]+)"', html) == ["report-markdown", "finding-markdown-1"]
    shown = text(html)
    assert "failed" in shown and "Failed on this request's data, so no fix is shown." in shown
    assert "Tried:" in shown and escape(finding["proof"]["detail"]) in html


@override_settings(DDT_PREFETCH_PANEL={"PROOF_BUDGET_MS": 0})
def test_fix_not_replayed_is_not_verified_and_not_shown(client, pizzeria):
    stats, context, html = panel_of(client, "/forward-fk/bad/")
    [finding] = [f for f in stats["report"]["findings"] if f["kind"] == "n_plus_one"]
    assert finding["proof"]["status"] == "skipped"
    assert context["fixes"] == [] and 'data-ddtpp-snippet="fix"' not in html
    assert 'data-ddtpp-proof="skipped">not verified</span>' in html
    assert "Not verified on this request." in text(html)
    assert "replay budget of 0 ms" in text(html)


@override_settings(DDT_PREFETCH_PANEL={"PROOFS": False})
def test_proofs_off_fix_shown_as_not_verified(client, pizzeria):
    stats, context, html = panel_of(client, "/forward-fk/bad/")
    [finding] = [f for f in context["findings"] if f["kind"] == "n_plus_one"]
    assert finding["proof"]["status"] == "skipped" and not finding["proof"]["counted"]
    assert 'data-ddtpp-snippet="fix"' in html and 'data-ddtpp-copy="origin-after-1"' in html
    assert 'data-ddtpp-proof="skipped">not verified</span>' in html
    assert "Proofs are turned off" in text(html)


def test_disabled_hooks_banner_names_what_the_panel_cannot_see(client, pizzeria):
    from ddt_prefetch_panel import hooks

    spec = hooks.HookSpec("tests.test_panel:Gone.method", "nothing", ("self",), lambda original: original)
    hooks.install([spec])
    try:
        stats, context, html = panel_of(client, "/forward-fk/bad/")
    finally:
        hooks._status.pop(spec.name)
    reason = stats["report"]["summary"]["disabled_hooks"][spec.name]
    assert reason.startswith("AttributeError")
    assert [hook["name"] for hook in context["disabled_hooks"]] == [spec.name]
    assert "data-ddtpp-disabled-hooks" in html
    assert "Some detections are off." in text(html)
    assert f"({spec.name}: {reason})" in text(html).replace("&#x27;", "'")
    # Findings are still shown under the banner.
    assert 'data-ddtpp-anchor="finding-1"' in html


def test_a_hook_that_failed_is_named_in_a_banner_and_the_page_still_renders(client, pizzeria, monkeypatch):
    from ddt_prefetch_panel import hooks

    def broken(*args, **kwargs):
        raise RuntimeError("tagging broke")

    monkeypatch.setattr(hooks, "_hop_for", broken)
    monkeypatch.setattr(hooks, "_failures", {})
    stats, context, html = panel_of(client, "/forward-fk/bad/")
    assert stats["report"]["summary"]["hook_failures"] == {hooks.FORWARD_GET_OBJECT: "RuntimeError: tagging broke"}
    assert "data-ddtpp-hook-failures" in html
    assert "Some detections failed on this site." in text(html)
    assert "N+1s on forward foreign keys and one-to-one fields" in text(html)


def test_library_only_findings_are_folded_with_their_package(db):
    from ddt_prefetch_panel import detect
    from tests.frameworks.fakelib import ensure_installed

    ensure_installed()
    from tests.frameworks.catalog import exports
    from tests.frameworks.catalog.seed import seed

    seed(authors=4, books_per_author=3)
    with detect() as report:
        exports.export_everything()  # built and looped by the library
        exports.export_visible()  # built by the project, looped by the library
    data = report.to_dict()
    assert sorted(f["library"] for f in data["findings"] if f["kind"] == "n_plus_one") == [False, True]
    context = panel_context({"report": json.loads(json.dumps(data)), "error": None})
    [folded] = context["library_findings"]
    assert folded["package"] == "ddtpp_fakelib" and context["library_packages"] == ["ddtpp_fakelib"]
    assert all(not f["library"] for f in context["findings"]) and context["findings"]
    assert all(not card["library"] for card in context["fixes"])
    assert all(card["library"] for card in context["library_fixes"])
    html = render_to_string(PrefetchPanel.template, context)
    group = html[html.index("<details class=\"ddtpp-group ddtpp-library\""):]
    assert group.startswith('<details class="ddtpp-group ddtpp-library" data-ddtpp-library>')  # closed
    assert "In library code (1): ddtpp_fakelib" in text(group)
    assert f'data-ddtpp-anchor="finding-{folded["number"]}"' in group
    assert f'data-ddtpp-anchor="finding-{folded["number"]}"' not in html[:html.index("data-ddtpp-library")]


@pytest.mark.parametrize("path", [
    "/faults/bulk-writes/", "/faults/signal-handler/", "/reverse-fk/bad/", "/nested/bad/", "/combined/bad/",
    "/filtered-prefetch/bad/", "/count-per-row/bad/",
])
def test_the_sql_panel_sees_the_same_statements_with_and_without_our_panel(client, pizzeria, path):
    # The observer promise through a real request: our hooks run no statement of their own (no read
    # before a save()'s UPDATE, no forced filter), so DDT's SQL panel lists what the page ran.
    from django.conf import settings
    from debug_toolbar.store import get_store

    def statements(panels: list[str]) -> list[str]:
        with override_settings(DEBUG_TOOLBAR_PANELS=panels):
            _, request_id = get_with_toolbar(client, path)
            return [query["raw_sql"] for query in get_store().panel(request_id, "SQLPanel")["queries"]]

    ours = list(settings.DEBUG_TOOLBAR_PANELS)
    without = [panel for panel in ours if panel != "ddt_prefetch_panel.panel.PrefetchPanel"]
    assert len(without) == len(ours) - 1
    plain = statements(without)
    assert statements(ours) == plain


@pytest.mark.parametrize("path", ["/reverse-fk/bad/", "/nested/bad/", "/admin/shop/order/", "/places/threads/"])
def test_the_query_count_is_djangos_count_for_the_page_without_the_toolbar(admin_client, pizzeria, path):
    """The summary counts what the page ran, as Django's log does without the toolbar. With the
    toolbar on, Django's log has the toolbar's own statements too (its Request panel loads the
    session after the response, when no view did): neither we nor the SQL panel count those."""
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.test import Client
    from debug_toolbar.store import get_store

    _, request_id = get_with_toolbar(admin_client, path)
    without_toolbar = Client()  # a client loads its middleware once: a new one, same session
    without_toolbar.cookies = admin_client.cookies
    with override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if not m.startswith("debug_toolbar.")]):
        with CaptureQueriesContext(connection) as plain:
            assert without_toolbar.get(path).status_code == 200
    summary = stored_stats(request_id)["report"]["summary"]
    assert summary["queries"] == len(plain.captured_queries) > 0
    assert summary["queries"] == len(get_store().panel(request_id, "SQLPanel")["queries"])
