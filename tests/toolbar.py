"""Helpers to drive requests through django-debug-toolbar like a browser does."""

from __future__ import annotations

import json

from debug_toolbar.store import get_store
from django.test import Client

PANEL_ID = "PrefetchPanel"


def latest_request_id() -> str:
    ids = list(get_store().request_ids())
    assert ids, "the toolbar stored no request"
    return ids[-1]


def stored_stats(request_id: str) -> dict:
    """The panel's stats as the store gives them back (JSON round trip included)."""
    return get_store().panel(request_id, PANEL_ID)


def render_panel(client: Client, request_id: str) -> str:
    response = client.get("/__debug__/render_panel/", {"request_id": request_id, "panel_id": PANEL_ID})
    assert response.status_code == 200, response.content[:500]
    return json.loads(response.content)["content"]


def get_with_toolbar(client: Client, path: str) -> tuple[object, str]:
    get_store().clear()
    response = client.get(path)
    assert response.status_code == 200
    return response, latest_request_id()
