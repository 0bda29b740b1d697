"""Concurrent requests and detect() blocks never see each other's queries.

(a) threads: six demo scenarios requested at once, each from its own thread and client; every
    request waits on a barrier once its capture runs, so all six captures are live together;
(b) ASGI: several requests gathered on one event loop (async views whose ORM work interleaves
    row by row through sync_to_async, and sync views run by the ASGI handler);
(c) detect() blocks, nested and not, in several threads at once.

Each request's stored findings must equal what the same page gives when requested alone.
"""

from __future__ import annotations

import asyncio
import re
import sys
import threading

import pytest
from asgiref.sync import async_to_sync
from debug_toolbar.store import get_store
from django.db import connections
from django.test import AsyncClient, Client

from ddt_prefetch_panel import detect
from shop.models import Order, Pizza
from tests.faults import views
from tests.toolbar import stored_stats

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("pizzeria")]

# page -> the N+1 relations it must report, and nothing else
SCENARIOS = {
    "/forward-fk/bad/": ["shop.Order.customer"],
    "/reverse-fk/bad/": ["shop.Order.pizzas"],
    "/m2m/bad/": ["shop.Pizza.toppings"],
    "/nested/bad/": ["shop.Pizza.category"],
    "/forward-fk/fixed/": [],
    "/reverse-fk-default-name/bad/": ["shop.Customer.review_set"],
}
ASYNC_SCENARIOS = {
    "/faults/async/forward-fk/": ["shop.Order.customer"],
    "/faults/async/reverse-fk/": ["shop.Order.pizzas"],
    "/faults/async/m2m/": ["shop.Pizza.toppings"],
    "/faults/async/fixed/": [],
    "/reverse-fk/bad/": ["shop.Order.pizzas"],  # a sync view, run by the ASGI handler
    "/forward-fk/fixed/": [],
}

REQUEST_ID = re.compile(rb'data-request-id="([^"]+)"')


def request_id(content: bytes) -> str:
    match = REQUEST_ID.search(content)
    assert match, "the toolbar was not rendered"
    return match.group(1).decode()


def fingerprint(stats: dict) -> tuple:
    """What must not change when other requests run at the same time."""
    assert stats and stats["error"] is None, stats
    report = stats["report"]
    findings = sorted(
        (f["kind"], f["relation"], f["lookup"], f["count"], f["avoidable"],
         (f["callsite"] or {}).get("filename"), (f["callsite"] or {}).get("lineno"))
        for f in report["findings"]
    )
    return report["summary"]["queries"], report["summary"]["errors"], tuple(findings)


def n_plus_one_relations(stats: dict) -> list:
    return sorted(f["relation"] for f in stats["report"]["findings"] if f["kind"] == "n_plus_one")


def alone(urls, asgi: bool = False) -> dict:
    """Each page requested on its own, one after the other: the reference."""
    reference = {}
    for url in urls:
        if asgi:
            response = async_to_sync(AsyncClient().get)(url)
        else:
            response = Client().get(url)
        assert response.status_code == 200
        reference[url] = fingerprint(stored_stats(request_id(response.content)))
    return reference


@pytest.fixture
def busy_switching():
    """Switch threads far more often than usual, so interleavings actually happen."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(interval)


@pytest.fixture
def clean_store():
    get_store().clear()
    yield
    get_store().clear()
    views.BARRIER = None


# --------------------------------------------------------------------------- (a) threads


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_threaded_requests_keep_their_own_findings(clean_store, busy_switching, round_):
    urls = list(SCENARIOS)
    reference = alone(urls)
    views.BARRIER = threading.Barrier(len(urls))
    results: dict = {}
    errors: list = []

    def run(url: str) -> None:
        try:
            response = Client().get("/faults/together" + url)
            assert response.status_code == 200, response.status_code
            results[url] = request_id(response.content)
        except BaseException as exc:  # reported by the main thread
            errors.append((url, exc))
            if views.BARRIER is not None:
                views.BARRIER.abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(url,)) for url in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(set(results.values())) == len(urls), "every request has its own toolbar"
    for url, expected in SCENARIOS.items():
        stats = stored_stats(results[url])
        assert n_plus_one_relations(stats) == expected, (url, stats["report"]["findings"])
        assert fingerprint(stats) == reference[url], url
    assert fingerprint(stored_stats(results["/forward-fk/fixed/"]))[2] == ()


# --------------------------------------------------------------------------- (b) ASGI


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_asgi_requests_keep_their_own_findings(clean_store, round_):
    urls = list(ASYNC_SCENARIOS)
    reference = alone(urls, asgi=True)

    async def gather():
        client = AsyncClient()
        return await asyncio.gather(*(client.get(url) for url in urls))

    responses = async_to_sync(gather)()
    ids = {}
    for url, response in zip(urls, responses):
        assert response.status_code == 200, url
        ids[url] = request_id(response.content)
    assert len(set(ids.values())) == len(urls)
    for url, expected in ASYNC_SCENARIOS.items():
        stats = stored_stats(ids[url])
        assert n_plus_one_relations(stats) == expected, (url, stats["report"]["findings"])
        assert fingerprint(stats) == reference[url], url


# --------------------------------------------------------------------------- (c) detect() in threads


def _forward_fk():
    return [o.customer.name for o in Order.objects.order_by("pk")]


def _reverse_fk():
    return [len(o.pizzas.all()) for o in Order.objects.order_by("pk")]


def _m2m():
    return [len(p.toppings.all()) for p in Pizza.objects.order_by("pk")]


def _category():
    return [p.category.name for p in Pizza.objects.order_by("pk")]


WORK = {
    "forward-fk": (_forward_fk, "shop.Order.customer"),
    "reverse-fk": (_reverse_fk, "shop.Order.pizzas"),
    "m2m": (_m2m, "shop.Pizza.toppings"),
    "category": (_category, "shop.Pizza.category"),
}


def test_detect_blocks_in_threads_see_only_their_own_queries(busy_switching):
    names = list(WORK)
    # Reference: each block alone (query counts per block).
    expected_queries = {}
    for name, (work, _) in WORK.items():
        with detect() as report:
            work()
        expected_queries[name] = report.summary["queries"]

    barrier = threading.Barrier(len(names))
    results: dict = {}
    errors: list = []

    def run(index: int, name: str) -> None:
        work, _ = WORK[name]
        inner_work, _ = WORK[names[(index + 1) % len(names)]]  # another thread's outer work
        try:
            with detect() as outer:
                barrier.wait(timeout=30)
                work()
                with detect() as inner:
                    barrier.wait(timeout=30)
                    inner_work()
                work()
            results[name] = (outer, inner)
        except BaseException as exc:
            errors.append((name, exc))
            barrier.abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, name)) for i, name in enumerate(names)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    for index, name in enumerate(names):
        outer, inner = results[name]
        inner_name = names[(index + 1) % len(names)]
        assert outer.summary["queries"] == 2 * expected_queries[name], name
        assert inner.summary["queries"] == expected_queries[inner_name], name
        assert {f.relation for f in outer.findings if f.kind == "n_plus_one"} == {WORK[name][1]}, name
        assert [f.relation for f in inner.findings if f.kind == "n_plus_one"] == [WORK[inner_name][1]], name
    for alias in connections:
        assert not connections[alias].execute_wrappers, "a capture left its wrapper behind"


def test_a_request_finishing_does_not_unwrap_another_requests_cursor(clean_store):
    """Under ASGI, sync code of all requests shares one thread's connection: when one request's
    capture stops it must not take the wrapper away from a capture that is still running."""

    async def gather():
        views.OTHER_REQUEST_DONE = asyncio.Event()
        client = AsyncClient()

        async def other():
            response = await client.get("/faults/async/forward-fk/")
            views.OTHER_REQUEST_DONE.set()
            return response

        return await asyncio.gather(client.get("/faults/held-cursor/"), other())

    try:
        held, other = async_to_sync(gather)()
    finally:
        views.OTHER_REQUEST_DONE = None
    assert held.status_code == other.status_code == 200
    assert n_plus_one_relations(stored_stats(request_id(other.content))) == ["shop.Order.customer"]
    stats = stored_stats(request_id(held.content))
    assert stats["report"]["summary"]["queries"] == 6, stats["report"]["summary"]
