"""Earlier requests (AJAX included) stay browsable through DDT's history, with both stores."""

from __future__ import annotations

import json

import pytest
from debug_toolbar.models import HistoryEntry
from debug_toolbar.store import get_store
from django.db import connection
from debug_toolbar.toolbar import DebugToolbar

from ddt_prefetch_panel.panel import PrefetchPanel
from tests.toolbar import render_panel

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["debug_toolbar.store.MemoryStore", "debug_toolbar.store.DatabaseStore"])
def store(request, settings, pizzeria):
    settings.DEBUG_TOOLBAR_CONFIG = {**settings.DEBUG_TOOLBAR_CONFIG, "TOOLBAR_STORE_CLASS": request.param}
    store = get_store()
    assert f"{store.__module__}.{store.__name__}" == request.param
    database = store.__name__ == "DatabaseStore"
    if database:
        # DDT only exposes its migration when DatabaseStore is configured at startup.
        with connection.schema_editor() as editor:
            editor.create_model(HistoryEntry)
    store.clear()
    yield store
    store.clear()
    if database:
        with connection.schema_editor() as editor:
            editor.delete_model(HistoryEntry)


def test_ajax_request_findings_round_trip_through_the_store(client, store):
    client.get("/forward-fk/fixed/")
    client.get("/api/orders/bad/", headers={"x-requested-with": "XMLHttpRequest", "accept": "application/json"})
    ids = list(store.request_ids())
    assert len(ids) == 2
    stats = {rid: store.panel(rid, PrefetchPanel.panel_id) for rid in ids}
    summaries = sorted(s["report"]["summary"]["n_plus_one"] for s in stats.values())
    assert summaries == [0, 1]
    [ajax_id] = [rid for rid, s in stats.items() if s["report"]["summary"]["n_plus_one"] == 1]
    data = stats[ajax_id]
    assert json.loads(json.dumps(data)) == data
    [finding] = [f for f in data["report"]["findings"] if f["kind"] == "n_plus_one"]
    assert finding["relation"] == "shop.Order.customer"
    assert finding["origin"]["code"] == 'orders = Order.objects.order_by("pk")'

    # The history panel switches to the earlier request: our panel renders from the store alone.
    toolbar = DebugToolbar.fetch(ajax_id, PrefetchPanel.panel_id)
    assert toolbar.get_panel_by_id(PrefetchPanel.panel_id).nav_subtitle.startswith("1 N+1")
    html = render_panel(client, ajax_id)
    assert "shop.Order.customer" in html
