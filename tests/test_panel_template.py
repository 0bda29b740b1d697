"""The panel's HTML: kind labels from one place, plural forms, the stylesheet and its CSP nonce."""

from __future__ import annotations

import re

import pytest
from django.template.loader import render_to_string
from django.test import override_settings

from ddt_prefetch_panel.findings import KIND_TITLES
from ddt_prefetch_panel.panel import PrefetchPanel, panel_context
from tests.toolbar import get_with_toolbar, render_panel


def finding(kind: str, count: int = 2, avoidable: int = 1) -> dict:
    return {
        "kind": kind, "model": "shop.Order", "relation": "shop.Order.customer", "lookup": "customer",
        "method": None, "count": count, "avoidable": avoidable, "duration_ms": 1.0, "sql": "SELECT 1",
        "callsite": None, "stack": [], "origin": None, "snippets": {}, "note": None,
    }


def render(summary: dict, findings: list[dict], **options) -> str:
    stats = {"report": {"summary": summary, "findings": findings}, "error": None}
    return render_to_string(PrefetchPanel.template, panel_context(stats, **options))


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


def test_every_kind_is_labelled_from_kind_titles():
    html = render({"queries": 8}, [finding(kind) for kind in KIND_TITLES])
    badges = re.findall(r'<span class="ddtpp-badge ddtpp-badge-(\w+)">([^<]*)</span>', html)
    assert badges == list(KIND_TITLES.items())


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        (
            {"queries": 1, "n_plus_one": 1, "duplicates": 1, "avoidable": 1},
            "1 query (0.0 ms): 1 N+1, 1 duplicate group, 1 avoidable query.",
        ),
        (
            {"queries": 5, "n_plus_one": 2, "duplicates": 3, "avoidable": 4},
            "5 queries (0.0 ms): 2 N+1, 3 duplicate groups, 4 avoidable queries.",
        ),
        ({"queries": 0}, "0 queries (0.0 ms): 0 N+1, 0 duplicate groups, 0 avoidable queries."),
    ],
)
def test_summary_plural_forms(summary, expected):
    assert expected in text(render(summary, []))


def test_translated_copy_messages_are_data_attributes_of_the_root():
    [root] = re.findall(r"<div class=\"ddtpp\" data-ddtpp-root[^>]*>", render({}, []))
    for name in ("copied", "copy-failed", "copied-status", "copy-failed-status"):
        assert re.search(rf'data-ddtpp-{name}="[^"]+"', root), name


def test_stylesheet_link_carries_the_nonce_or_is_left_to_panel_js():
    nonced = render({}, [], csp_nonce="abc123")
    assert re.search(r'<link nonce="abc123" rel="stylesheet" href="[^"]*panel\.css" data-ddtpp-css>', nonced)
    assert re.search(r'<link rel="stylesheet" href="[^"]*panel\.css" data-ddtpp-css>', render({}, []))
    html = render({}, [], csp_nonce=None, link_stylesheet=False)
    assert "<link" not in html
    assert re.search(r'data-ddtpp-stylesheet="[^"]*panel\.css"', html)


class NonceMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = "n0nce"
        return self.get_response(request)


@pytest.mark.django_db
def test_content_rendered_with_the_page_has_the_request_nonce(client, pizzeria):
    """With RENDER_PANELS the panel is part of the page: DDT's nonce goes on the stylesheet.
    Through DDT's AJAX view the stored toolbar has no request, and panel.js links it."""
    from django.conf import settings as django_settings

    with override_settings(
        MIDDLEWARE=["tests.test_panel_template.NonceMiddleware", *django_settings.MIDDLEWARE],
        DEBUG_TOOLBAR_CONFIG={**django_settings.DEBUG_TOOLBAR_CONFIG, "RENDER_PANELS": True},
    ):
        response, _ = get_with_toolbar(client, "/forward-fk/bad/")
    page = response.content.decode()
    assert re.search(
        r'<link nonce="n0nce" rel="stylesheet" href="[^"]*ddt_prefetch_panel/panel\.css" data-ddtpp-css>', page
    )

    _, request_id = get_with_toolbar(client, "/forward-fk/bad/")
    html = render_panel(client, request_id)
    assert "<link" not in html and "data-ddtpp-stylesheet=" in html


# --------------------------------------------------------------------------- proofs and fixes


def visible(html: str) -> str:
    """The text a reader sees: without the hidden textareas that feed the copy buttons."""
    return text(re.sub(r"<textarea.*?</textarea>", "", html, flags=re.S))


def proven(status: str, before: int | None = 11, after: int | None = 1, detail: str = "", fix: str = "") -> dict:
    return {"status": status, "before": before, "after": after, "rows": 10, "detail": detail, "fix": fix}


def render_report(findings: list[dict], fixes: list[dict] | None = None, summary: dict | None = None) -> str:
    stats = {"report": {"summary": summary or {"queries": 11}, "findings": findings, "fixes": fixes or []},
             "error": None}
    return render_to_string(PrefetchPanel.template, panel_context(stats))


@pytest.mark.parametrize(
    ("proof", "badge"),
    [
        (proven("verified"), "verified 11 → 1"),
        (proven("failed", after=11, detail="still repeats"), "failed 11 → 11"),
        (proven("skipped", None, None, detail="Proofs are turned off (PROOFS=False)."), "not verified"),
    ],
)
def test_proof_badge_of_each_status(proof, badge):
    html = render_report([{**finding("n_plus_one"), "proof": proof}])
    [shown] = re.findall(r'<span class="ddtpp-proof ddtpp-proof-(\w+)"[^>]*>([^<]*)</span>', html)
    assert shown == (proof["status"], badge)


def test_no_badge_without_a_proof():
    assert "ddtpp-proof-" not in render_report([finding("duplicate")])


def test_failed_proof_never_offers_a_fix_to_copy():
    """Even when stored data still carries the snippets (an older analysis), a failed fix has
    no copy button: the reason and the candidate tried are shown instead."""
    tried = '.prefetch_related("pizzas")'
    data = {
        **finding("n_plus_one"),
        "origin": {"filename": "shop/views.py", "lineno": 3, "function": "v", "code": "orders = Order.objects.all()"},
        "snippets": {"fix": tried, "line": f"orders = Order.objects.all(){tried}", "patch": "--- a\n+++ b",
                     "import": "from x import y"},
        "proof": proven("failed", after=11, detail="The fix did not remove the repeated queries (11 -> 11).", fix=tried),
        "note": "Mapped from the SQL. No fix is shown: The fix did not remove the repeated queries (11 -> 11).",
    }
    html = render_report([data])
    assert re.findall(r'data-ddtpp-copy="([^"]+)"', html) == ["report-markdown", "finding-markdown-1"]
    assert "data-ddtpp-snippet=" not in html and "ddtpp-after" not in html
    shown = visible(html)
    assert "Failed on this request's data, so no fix is shown." in shown
    assert "Tried: .prefetch_related(&quot;pizzas&quot;)" in shown
    assert "Result: The fix did not remove the repeated queries (11 -&gt; 11)." in shown
    # The note keeps what it adds, without repeating the proof.
    assert "Mapped from the SQL." in shown and shown.count("did not remove the repeated queries") == 1


def test_fix_card_of_a_verified_combined_fix():
    findings = [{**finding("n_plus_one"), "relation": r, "fix_id": 0, "proof": proven("verified")}
                for r in ("shop.Order.customer", "shop.Order.pizzas")]
    fix = {
        "origin": {"filename": "shop/views.py", "lineno": 7, "function": "orders", "code": "qs = Order.objects.all()"},
        "fix": '.select_related("customer").prefetch_related("pizzas")',
        "line": 'qs = Order.objects.all().select_related("customer").prefetch_related("pizzas")',
        "import": "", "lookups": ["customer", "pizzas"], "findings": [0, 1],
        "proof": proven("verified", 21, 2),
    }
    html = render_report(findings, [fix])
    card = html[html.index('data-ddtpp-fix="1"'):html.index('data-ddtpp-anchor="finding-1"')]
    shown = text(card)
    assert "Fix 1" in shown and "customer, pizzas" in shown and "for 2 findings" in shown
    assert "shop/views.py:7 in orders" in shown
    assert "Verified on this request: 21 → 2 queries for these loops" in shown
    assert re.findall(r'data-ddtpp-copy="([^"]+)"', card) == ["fix-1-line", "fix-1-fix"]  # no import to copy
    assert re.findall(r'data-ddtpp-goto="([^"]+)"', card) == ["finding-1", "finding-2"]
    assert "#1 N+1 shop.Order.customer" in shown and "#2 N+1 shop.Order.pizzas" in shown


def test_fix_card_without_an_origin_line_still_gives_the_call():
    fix = {"origin": None, "fix": '.select_related("customer")', "line": None, "import": "",
           "lookups": ["customer"], "findings": [0], "proof": proven("verified")}
    html = render_report([{**finding("n_plus_one"), "fix_id": 0, "proof": proven("verified")}], [fix])
    assert 'data-ddtpp-copy="fix-1-fix"' in html and 'data-ddtpp-copy="fix-1-line"' not in html
    assert "The line that builds the queryset was not seen" in text(html)


def test_fix_cards_and_findings_escape_user_text():
    hostile = "<img src=x onerror=alert(1)>"
    fix = {"origin": {"filename": hostile, "lineno": 1, "function": hostile, "code": hostile}, "fix": hostile,
           "line": hostile, "import": hostile, "lookups": [hostile], "findings": [0],
           "proof": proven("verified", detail=hostile, fix=hostile)}
    html = render_report([{**finding("n_plus_one"), "relation": hostile, "fix_id": 0,
                           "proof": proven("failed", detail=hostile, fix=hostile)}], [fix])
    assert hostile not in html and "&lt;img src=x" in html


def test_stale_fix_ids_and_finding_indices_are_ignored():
    fix = {"origin": None, "fix": ".x()", "line": None, "import": "", "lookups": [], "findings": [0, 7],
           "proof": proven("verified")}
    context = panel_context({"report": {"summary": {}, "findings": [{**finding("n_plus_one"), "fix_id": 3}],
                                        "fixes": [fix]}, "error": None})
    assert context["error"] is None
    assert context["findings"][0]["fix_number"] is None
    assert [f["number"] for f in context["fixes"][0]["findings"]] == [1]


def test_library_group_is_folded_and_the_empty_state_stays_away():
    path = "/srv/venv/lib/python3.12/site-packages/rest_framework/serializers.py"
    library = {**finding("n_plus_one"), "library": True,
               "origin": {"filename": path, "lineno": 1, "function": "to_representation", "code": "x"}}
    html = render_report([library])
    assert "No repeated queries." not in html
    assert re.search(r'<details class="ddtpp-group ddtpp-library" data-ddtpp-library>\s*<summary', html)
    assert "In library code (1): rest_framework" in text(html)
    assert 'data-ddtpp-copy="report-markdown"' in html


@pytest.mark.parametrize(
    ("filename", "package"),
    [
        ("/srv/venv/lib/python3.12/site-packages/rest_framework/serializers.py", "rest_framework"),
        (".venv/lib/python3.11/site-packages/ddtpp_fakelib/__init__.py", "ddtpp_fakelib"),
        ("/usr/lib/python3/dist-packages/six.py", "six"),
        ("C:\\venv\\Lib\\site-packages\\graphene_django\\fields.py", "graphene_django"),
        ("shop/views.py", None),
    ],
)
def test_site_package_of_a_file(filename, package):
    from ddt_prefetch_panel.panel import site_package

    assert site_package(filename) == package


def test_disabled_hooks_banner_says_what_each_hook_detects():
    from ddt_prefetch_panel.hooks import HOOKS

    spec = HOOKS[0]
    summary = {"queries": 1, "disabled_hooks": {spec.name: "AttributeError: gone",
                                                "django.contrib.contenttypes.fields:X.y": "django.contrib.contenttypes is not in INSTALLED_APPS"}}
    html = render_report([], summary=summary)
    [item] = re.findall(r"<li>(.*?)</li>", html, re.S)
    assert text(item) == f"{spec.detects} ({spec.name}: AttributeError: gone)"
    assert "No repeated queries." in html  # the banner does not hide the empty state
    assert "data-ddtpp-disabled-hooks" not in render_report([])


def test_a_downcast_and_a_load_by_key_are_named_as_such():
    downcast = {**finding("n_plus_one"), "model": "proofs.Page", "relation": "proofs.Page.articlepage",
                "relation_kind": "downcast", "related_model": "proofs.ArticlePage"}
    by_key = {**finding("n_plus_one"), "model": "proofs.Product", "relation": None,
              "relation_kind": "loaded by pk per hit"}
    subjects = re.findall(r'<code class="ddtpp-subject">([^<]*)</code>', render({"queries": 8}, [downcast, by_key]))
    assert subjects == ["proofs.Page.articlepage (downcast)", "proofs.Product loaded by pk per hit"]
