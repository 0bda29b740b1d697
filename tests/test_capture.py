from __future__ import annotations

import copy
import pickle
import threading

import pytest
from django.db import connection, connections

from ddt_prefetch_panel import capture as cap
from ddt_prefetch_panel import hooks
from ddt_prefetch_panel import detect
from shop.models import Customer, Order

pytestmark = pytest.mark.django_db(databases=["default", "other"])


def test_records_sql_params_duration_and_stack(pizzeria):
    with cap.capturing() as capture:
        list(Order.objects.filter(status="new"))
    [record] = capture.records
    assert record.alias == "default"
    assert "shop_order" in record.sql and "%s" in record.sql
    assert list(record.params) == ["new"]
    assert record.duration >= 0
    assert record.model is Order
    codes = [entry[0].co_name for entry in record.stack]
    assert "test_records_sql_params_duration_and_stack" in codes


def test_every_alias_is_captured_and_wrappers_are_removed_afterwards():
    with cap.capturing() as capture:
        for alias in ("default", "other"):
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
        assert all(connections[a].execute_wrappers for a in ("default", "other"))
    assert [r.alias for r in capture.records] == ["default", "other"]
    assert not connections["default"].execute_wrappers
    assert not connections["other"].execute_wrappers


def test_nested_detect_blocks_each_see_only_their_own_queries(pizzeria):
    with detect() as outer:
        Customer.objects.count()
        with detect() as inner:
            Order.objects.count()
            Order.objects.count()
        Customer.objects.count()
    assert inner.summary["queries"] == 2
    assert outer.summary["queries"] == 2


def test_failed_statements_are_recorded_and_the_error_propagates():
    with cap.capturing() as capture:
        with pytest.raises(Exception):
            with connection.cursor() as cursor:
                cursor.execute("SELECT * FROM no_such_table")
    [record] = capture.records
    assert record.error and "no_such_table" in record.error


def test_toolbar_tables_are_skipped_as_ddt_skips_them():
    """DDT's SQL panel skips the tables in its live DDT_MODELS set (its database store and
    cache table, registered only when used): ours skips the same set, not a name prefix."""
    from debug_toolbar.panels.sql.tracking import DDT_MODELS

    DDT_MODELS.add("ddt_store_table")
    try:
        with cap.capturing() as capture:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 WHERE 'ddt_store_table' = 'ddt_store_table'")
                cursor.execute("SELECT 1")
                cursor.execute("SELECT 'debug_toolbar_lookalike'")
    finally:
        DDT_MODELS.discard("ddt_store_table")
    sqls = [r.sql for r in capture.records]
    assert sqls == ["SELECT 1", "SELECT 'debug_toolbar_lookalike'"]


def test_orm_is_untouched_outside_a_capture(pizzeria):
    order = Order.objects.all()[0]
    assert hooks.instance_source(order) is None
    assert getattr(Order.objects.all().query, "_ddtpp", None) is None


def test_tagged_querysets_and_instances_pickle_and_copy_without_capture_state(pizzeria):
    with detect():
        queryset = Order.objects.filter(status="new")
        order = Order.objects.first()
        order.customer
        assert hooks.instance_source(order) is not None
        restored = pickle.loads(pickle.dumps(order))
        pickle.loads(pickle.dumps(queryset))
        clone = copy.deepcopy(order)
    assert hooks.instance_source(restored) is None
    assert hooks.instance_source(clone) is None
    assert restored.pk == order.pk


def test_queries_of_other_threads_are_not_recorded():
    def work():
        with connections["other"].cursor() as cursor:
            cursor.execute("SELECT 2")
        connections.close_all()

    with cap.capturing() as capture:
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert capture.records == []


def test_querysets_loaded_per_row_of_a_loop_do_not_keep_their_query(pizzeria):
    """``order.pizzas.all()`` per order: the fix goes on the orders' root, which keeps its Query
    for the replay; the per-order querysets keep only their slice (their Query would hold the
    parent instance and its where tree until the end of the request). A relation read once,
    from a single parent, stays replayable."""
    with cap.capturing() as capture:
        for order in Order.objects.all():
            list(order.pizzas.all())
        customer = Customer.objects.order_by("pk").first()
        list(customer.order_set.all())
    by_model = {}
    for root in capture.roots:
        by_model.setdefault(root.model.__name__, []).append(root)
    (orders, *_) = by_model["Order"]
    assert orders.query is not None and orders.rows > 1
    pizzas = by_model["Pizza"]
    assert len(pizzas) > 1 and all(r.query is None and r.hints is None and r.marks == (0, None) for r in pizzas)
    single = [r for r in by_model["Order"] if r.via is not None]
    assert single and single[0].query is not None


def test_the_source_tag_costs_no_memory_per_instance():
    """The Source sits on each loaded instance's ModelState; the slot is added to ModelState's
    shared attribute keys at start-up (capture.prime_model_state), so tagging keeps CPython's
    compact attribute storage (a full dict per tagged ModelState cost 240 bytes)."""
    import tracemalloc

    from django.db.models.base import ModelState

    marker = object()

    def states(tag: bool) -> tuple[list, int]:
        tracemalloc.start()
        try:
            made = []
            for _ in range(2_000):
                state = ModelState()
                state.adding = False
                state.db = "default"
                if tag:
                    setattr(state, cap.SOURCE_ATTR, marker)
                made.append(state)
            return made, tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()

    _, plain = states(False)
    _, tagged = states(True)
    assert (tagged - plain) / 2_000 < 16


def test_the_source_tag_stays_out_of_the_instance_dict(pizzeria):
    """User code copies ``obj.__dict__`` into ``Model(**...)`` (minus ``_state``): nothing of ours is there."""
    with detect():
        order = Order.objects.first()
        order.customer
        assert hooks.instance_source(order) is not None
        fields = {k: v for k, v in order.__dict__.items() if k != "_state" and not k.endswith("_cache")}
        assert Order(**fields).pk == order.pk


def test_a_released_capture_is_freed_without_the_cycle_collector(pizzeria):
    """The panel releases its capture after the analysis: its roots' Query objects (and the
    instances their hints hold) go away by reference counting, not at the next full collection."""
    import gc
    import weakref

    gc.disable()
    try:
        with cap.capturing() as capture:
            for order in Order.objects.all():
                order.customer  # interned hops, one per (descriptor, class, source)
                list(order.pizzas.all())
        queries = [weakref.ref(root.query) for root in capture.roots if root.query is not None]
        capture.release()
        del capture, order  # a loaded instance keeps its source, hence its root, alive
        alive = [ref for ref in queries if ref() is not None]
    finally:
        gc.enable()
    assert queries and alive == []


def test_compacting_a_finished_capture_keeps_every_parameter_count():
    counts = {hash(repr((i % 40,))): 1 + (i % 3) for i in range(40)}
    capture = cap.Capture()
    bucket = capture.buckets["k"] = cap.Bucket("default", "SELECT %s", (), None, 0, params=dict(counts))
    small = capture.buckets["s"] = cap.Bucket("default", "SELECT 1", (), None, 1, params={1: 2})
    huge = capture.buckets["h"] = cap.Bucket("default", "SELECT 2", (), None, 2, params={2**64 + i: 1 for i in range(9)})
    capture.compact()
    assert isinstance(bucket.params, cap.ParamCounts)
    assert dict(bucket.params.items()) == counts and len(bucket.params) == 40 and set(bucket.params) == set(counts)
    key = next(iter(counts))
    assert key in bucket.params and bucket.params.get(key) == counts[key] and bucket.params.get(12345, 0) == 0
    assert small.params == {1: 2}  # too small to matter
    assert type(huge.params) is dict  # an id() beyond 64 bits stays a dict
