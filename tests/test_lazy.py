"""Proofs off the request path (lazy.py): ``PROOF_MODE`` "lazy" (the panel's default), "eager" and
"off", through real requests with the toolbar, DDT's store and its render_panel view."""

from __future__ import annotations

import pytest
from django.test import override_settings

from ddt_prefetch_panel import capture as cap
from ddt_prefetch_panel import prove, shared
from ddt_prefetch_panel.panel import PrefetchPanel
from shop.models import Order
from tests.test_panel_template import text
from tests.toolbar import get_with_toolbar, render_panel, stored_stats

pytestmark = pytest.mark.django_db

PAGE = "/reverse-fk/bad/"  # orders and their pizzas: one N+1, its prefetch_related proven


def mode(name: str):
    return override_settings(DDT_PREFETCH_PANEL={"PROOF_MODE": name})


@pytest.fixture
def replays(monkeypatch) -> list:
    """Every replay run (prove.run), as it happens."""
    calls: list = []
    run = prove.run

    def counted(*args, **kwargs):
        calls.append(args[1])
        return run(*args, **kwargs)

    monkeypatch.setattr(prove, "run", counted)
    return calls


def n_plus_one(stats: dict) -> dict:
    [finding] = [f for f in stats["report"]["findings"] if f["kind"] == "n_plus_one"]
    return finding


def test_lazy_proofs_cost_the_request_nothing_and_run_when_the_panel_is_opened(client, pizzeria, replays):
    with mode("lazy"):
        _, request_id = get_with_toolbar(client, PAGE)
        stats = stored_stats(request_id)
        assert replays == [] and stats["proofs"] == "pending"
        assert n_plus_one(stats)["proof"]["status"] == "skipped"
        from debug_toolbar.toolbar import DebugToolbar

        panel = DebugToolbar.fetch(request_id, PrefetchPanel.panel_id).get_panel_by_id(PrefetchPanel.panel_id)
        assert panel.nav_subtitle.startswith("1 N+1 · ")  # the sidebar needs no proof

        html = render_panel(client, request_id)
    assert replays, "opening the panel replays the fix"
    stats = stored_stats(request_id)
    proof = n_plus_one(stats)["proof"]
    assert stats["proofs"] == "opened" and proof["status"] == "verified" and proof["when"] == "opened"
    assert "(replayed when opened)" in text(html)
    assert proof["page_after"] < proof["page_before"]
    replays.clear()
    render_panel(client, request_id)  # stored: opening it again replays nothing
    assert replays == []


def test_eager_proofs_run_with_the_request(client, pizzeria, replays):
    with mode("eager"):
        _, request_id = get_with_toolbar(client, PAGE)
    stats = stored_stats(request_id)
    assert replays and "proofs" not in stats
    proof = n_plus_one(stats)["proof"]
    assert proof["status"] == "verified" and proof["when"] == "request"


def test_proof_mode_off_never_replays(client, pizzeria, replays):
    with mode("off"):
        _, request_id = get_with_toolbar(client, PAGE)
        render_panel(client, request_id)
    assert replays == []
    proof = n_plus_one(stored_stats(request_id))["proof"]
    assert proof["status"] == "skipped" and "turned off" in proof["detail"]


def test_a_proof_made_after_the_data_changed_says_so_and_replays_todays_rows(client, pizzeria):
    with mode("lazy"):
        _, request_id = get_with_toolbar(client, PAGE)
        Order.objects.filter(pk__in=list(Order.objects.order_by("-pk").values_list("pk", flat=True)[:3])).delete()
        render_panel(client, request_id)
    proof = n_plus_one(stored_stats(request_id))["proof"]
    assert proof["detail"].startswith("The data changed since the request (10 rows then, 7 now): replayed on today's rows.")
    assert proof["status"] == "verified"


def test_a_request_no_longer_held_says_its_fixes_can_no_longer_be_proven(client, pizzeria):
    """The database store keeps requests across restarts; the captures are this process's."""
    with mode("lazy"):
        _, first = get_with_toolbar(client, PAGE)
        shared._held.clear()  # the server restarted
        html = render_panel(client, first)
    stats = stored_stats(first)
    assert stats["proofs"] == "expired"
    assert n_plus_one(stats)["proof"]["status"] == "skipped"
    assert "This request is no longer held in memory" in text(html)


def test_the_all_requests_tab_proves_what_it_reads(client, pizzeria):
    from ddt_prefetch_panel.session import session_report

    with mode("lazy"):
        _, request_id = get_with_toolbar(client, PAGE)
        report = session_report()
    [entry] = [f for f in report["findings"] if f["kind"] == "n_plus_one"]
    assert entry["proof"]["status"] == "verified" and entry["proof"]["when"] == "opened"
    assert stored_stats(request_id)["proofs"] == "opened"
    assert request_id not in shared.pending_ids()  # proven once; still held for other requests' fixes



def test_the_process_holds_the_captures_of_the_last_results_cache_size_requests(client, pizzeria):
    toolbar = dict(__import__("django.conf").conf.settings.DEBUG_TOOLBAR_CONFIG)
    with mode("lazy"), override_settings(DEBUG_TOOLBAR_CONFIG={**toolbar, "RESULTS_CACHE_SIZE": 2}):
        shared._held.clear()
        ids = [get_with_toolbar(client, PAGE)[1] for _ in range(3)]
        assert list(shared._held) == ids[1:]


def test_a_held_capture_is_kept_small_and_proves_what_the_request_end_proves(client, pizzeria):
    """What a held capture keeps is shrunk (its parameter counts in arrays, a per-row root's
    statement only where shown), never what its analysis finds."""
    with mode("eager"):
        eager = n_plus_one(stored_stats(get_with_toolbar(client, PAGE)[1]))
    with mode("lazy"):
        _, lazy_id = get_with_toolbar(client, PAGE)  # the store is cleared first: one request in it
        held = shared._held[lazy_id].capture
        render_panel(client, lazy_id)
    buckets = list(held.buckets.values())
    assert any(isinstance(bucket.params, cap.ParamCounts) for bucket in buckets)
    per_row = [root for root in held.roots if root.via is not None]  # order.pizzas.all() per order
    assert len(per_row) == 10 and all(root.seq >= 0 for root in per_row)
    # Past its bucket's shown samples, a per-row root's statement is counted, not kept as a Record,
    # unless it was the slowest of its bucket when it ran (the slow-query check reads that one).
    kept = [root.record for root in per_row if root.record is not None]
    [bucket] = [b for b in buckets if any(sample is kept[0] for sample in b.samples)]
    samples = [record for record in kept if any(record is sample for sample in bucket.samples)]
    assert len(samples) == 3 and all(record.params is not None for record in kept)
    floor = max(record.duration for record in samples)
    for record in kept[3:]:  # each was slower than every statement of its bucket before it
        assert record.duration > floor
        floor = record.duration
    lazy = n_plus_one(stored_stats(lazy_id))
    assert lazy["sql"] == eager["sql"] and lazy["params"] == eager["params"]
    for key in ("count", "identical", "relation", "snippets", "callsite", "avoidable", "evidence", "fingerprint"):
        assert lazy[key] == eager[key], key
    assert lazy["proof"]["status"] == eager["proof"]["status"] == "verified"
    assert (lazy["proof"]["before"], lazy["proof"]["after"]) == (eager["proof"]["before"], eager["proof"]["after"])
