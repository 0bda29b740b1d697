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
