"""Scenario tests for the analysis pipeline (issue 13): what a user reads for each pattern.

Each test runs real ORM code inside ``detect()`` and asserts the finding a user relies on
(kind, relation, lookup, method, fix) or its absence.
"""

from __future__ import annotations

import pytest

from django.db.models import prefetch_related_objects

from ddt_prefetch_panel import detect
from ddt_prefetch_panel.testing import ignore_n_plus_one
from shop.models import Customer, Order

pytestmark = pytest.mark.django_db


def _n_plus_ones(report) -> list:
    return [f for f in report.findings if f.kind == "n_plus_one"]


# --------------------------------------------------------------------------- item 10: settings


def test_threshold_one_reports_a_single_lazy_load_on_a_multi_row_result(pizzeria):
    with detect(THRESHOLD=1) as report:
        orders = list(Order.objects.all())
        orders[0].customer.name
    [finding] = _n_plus_ones(report)
    assert (finding.relation, finding.lookup, finding.count) == ("shop.Order.customer", "customer", 1)
    with detect() as report:  # the default threshold of 2: one load is not an N+1
        orders = list(Order.objects.all())
        orders[0].customer.name
    assert _n_plus_ones(report) == []


def test_threshold_one_ignores_objects_loaded_one_at_a_time(pizzeria):
    first = Order.objects.order_by("pk").first()
    with detect(THRESHOLD=1) as report:
        Order.objects.order_by("pk").first().customer.name
        Order.objects.order_by("pk")[0].customer.name
        Order.objects.get(pk=first.pk).customer.name
        list(Customer.objects.filter(pk=first.customer_id)[:1])[0].review_set.count()
    assert _n_plus_ones(report) == []


@pytest.mark.parametrize("options, error, words", [
    ({"THRESHOLD": 0}, ValueError, "at least 1"),
    ({"THRESHOLD": "2"}, ValueError, "must be int"),
    ({"KINDS": ["n_plus_two"]}, ValueError, "Unknown kinds"),
    ({"THRESHOD": 2}, TypeError, "valid options: THRESHOLD, KINDS"),
])
def test_invalid_detect_options_raise_naming_what_is_valid(options, error, words):
    with pytest.raises(error, match=words):
        with detect(**options):
            pass


def test_ignore_n_plus_one_with_patterns_drops_only_what_they_match(pizzeria):
    def loops():
        for order in Order.objects.all():
            order.customer.name
        for customer in Customer.objects.all():
            list(customer.review_set.all())

    with detect() as report:
        with ignore_n_plus_one({"relation": "shop.Order.customer"}):
            loops()
    assert [f.relation for f in _n_plus_ones(report)] == ["shop.Customer.review_set"]
    assert report.summary["allowed"] == 1
    with detect() as report:
        with ignore_n_plus_one({"relation": "shop.Order.customer"}):
            with ignore_n_plus_one([{"model": "shop.Customer"}]):  # patterns add up
                loops()
        loops()  # after the blocks, everything is reported again
    assert sorted(f.relation for f in _n_plus_ones(report)) == ["shop.Customer.review_set", "shop.Order.customer"]
    assert report.summary["allowed"] == 2


def test_ignore_n_plus_one_rejects_invalid_patterns():
    with pytest.raises(ValueError, match="unknown keys"):
        with ignore_n_plus_one({"modle": "shop.Order"}):
            pass


# --------------------------------------------------------------------------- item 1: prefetch_related_objects


def test_prefetch_related_objects_per_instance_is_an_n_plus_one_with_one_call_as_the_fix(pizzeria):
    with detect() as report:
        customers = list(Customer.objects.all())
        for customer in customers:
            prefetch_related_objects([customer], "review_set")
    [finding] = _n_plus_ones(report)
    assert (finding.relation, finding.lookup, finding.method) == (
        "shop.Customer.review_set", "review_set", "prefetch_related_objects")
    assert finding.count == len(customers) and finding.avoidable == len(customers) - 1
    assert finding.snippets["fix"] == 'prefetch_related_objects(customers, "review_set")'
    assert finding.snippets["line"] == 'customers = list(Customer.objects.all().prefetch_related("review_set"))'
    assert finding.proof["status"] == "verified"


def test_prefetch_related_objects_on_the_list_or_per_chunk_is_quiet(pizzeria):
    with detect() as report:
        customers = list(Customer.objects.all())
        prefetch_related_objects(customers, "review_set")
        for customer in Customer.objects.prefetch_related("review_set").iterator(chunk_size=2):
            list(customer.review_set.all())
        for pk in [c.pk for c in customers[:2]]:  # objects loaded one at a time: nothing to batch
            prefetch_related_objects([Customer.objects.get(pk=pk)], "review_set")
    assert [f for f in _n_plus_ones(report) if f.relation == "shop.Customer.review_set"] == []


# --------------------------------------------------------------------------- item 5: deferred fields


def test_deferred_field_of_a_select_related_object_gets_only_with_the_field_path(pizzeria):
    with detect() as report:
        orders = Order.objects.select_related("customer").only("status", "customer__id")
        for order in orders:
            order.customer.name
    [finding] = _n_plus_ones(report)
    assert (finding.relation, finding.lookup, finding.method) == ("shop.Customer.name", "customer__name", "only")
    assert finding.snippets["fix"] == '.only("customer__id", "customer__name", "status")'
    assert finding.snippets["line"] == (
        'orders = Order.objects.select_related("customer").only("customer__id", "customer__name", "status")')
    assert finding.proof["status"] == "verified"


def test_deferred_field_with_defer_gets_the_field_removed_from_defer(pizzeria):
    with detect() as report:
        for order in Order.objects.defer("notes"):
            order.notes
    [finding] = _n_plus_ones(report)
    assert (finding.relation, finding.lookup, finding.method) == ("shop.Order.notes", "notes", "defer")
    assert finding.snippets["fix"] == ".defer(None)"
    assert finding.proof["status"] == "verified"


# --------------------------------------------------------------------------- item 3: hops that look alike


def test_self_fk_chain_on_one_line_is_fixed_with_the_whole_chain():
    from tests.peers.social.models import Node

    for i in range(4):
        top = Node.objects.create(name=f"top{i}")
        Node.objects.create(name="leaf", relation=Node.objects.create(name=f"middle{i}", relation=top))
    with detect() as report:
        names = [leaf.relation.relation.name for leaf in Node.objects.filter(name="leaf")]
    assert len(names) == 4
    [finding] = _n_plus_ones(report)
    assert (finding.lookup, finding.method, finding.count) == ("relation__relation", "select_related", 8)
    assert finding.snippets["fix"] == '.select_related("relation__relation")'
    assert finding.proof["status"] == "verified"
    with detect() as report:  # one object: its chain is two single loads, never an N+1
        Node.objects.filter(name="leaf").first().relation.relation
    assert _n_plus_ones(report) == []


# --------------------------------------------------------------------------- item 6: writes per row


def test_statements_are_counted_once_in_the_summary(pizzeria):
    with detect(KINDS=["n_plus_one", "duplicate"]) as report:
        orders = list(Order.objects.all())
        for order in orders:  # an N+1 whose statements repeat (customers with several orders)
            Customer.objects.filter(pk=order.customer_id).first()
        first = orders[0].customer_id
        for _ in range(3):  # the same statement from another line: a duplicate of the N+1's ones
            Customer.objects.filter(pk=first).first()
    summary = report.summary
    assert summary["avoidable"] <= summary["queries"]
    duplicates = [f for f in report.findings if f.kind == "duplicate"]
    assert all(f.avoidable <= 2 for f in duplicates)  # only its own 3 statements, one kept
    assert sum(f.avoidable for f in report.findings) == summary["avoidable"]


def test_two_library_lines_are_two_call_sites(pizzeria):
    """The same SQL from two lines of a library, called from one project line, is two N+1s: the
    tidied stack (project frames only) is the same, the library lines are not."""
    import sysconfig

    source = "def evaluate(queryset):\n    return list(queryset)\n\n\ndef evaluate_too(queryset):\n    return list(queryset)\n"
    library: dict = {}
    exec(compile(source, f"{sysconfig.get_paths()['purelib']}/ddtpp_two_lines.py", "exec"), library)  # noqa: S102
    customers = list(Customer.objects.filter(order__isnull=False).distinct()[:6])
    with detect(KINDS=["n_plus_one"]) as report:
        for i, customer in enumerate(Customer.objects.filter(pk__in=[c.pk for c in customers])):
            library["evaluate" if i % 2 else "evaluate_too"](Order.objects.filter(customer=customer))
    findings = _n_plus_ones(report)
    assert len(findings) == 2 and sorted(f.count for f in findings) == [3, 3]


def test_the_demos_duplicates_say_what_to_change_and_the_fixed_page_does_it(client, pizzeria):
    """The demo's duplicates page: a category loaded in the view and again in two helpers, and a
    count run on every pass of a loop. Each duplicate names its change; the demo's fixed page,
    written that way, has neither duplicate."""
    with detect(KINDS=["duplicate"]) as report:
        assert client.get("/duplicates/bad/").status_code == 200
    by_model = {f.model: f for f in report.findings}
    assert by_model["shop.Order"].snippets == {"fix": "order_count = Order.objects.count()",
                                               "in_loop": "rows.append(_status_row(status, counts, order_count))"}
    assert by_model["shop.Category"].snippets["fix"] == (
        "# pass category to _classic_pizzas_sold(), _classic_menu() instead of loading it again there")
    with detect(KINDS=["duplicate"]) as report:
        assert client.get("/duplicates/fixed/").status_code == 200
    assert report.findings == []


def test_one_line_reading_a_relation_with_two_filter_values_keeps_them_apart_and_offers_no_clashing_fix():
    """A helper filters thread.posts by the value its caller passes (True, then False): two N+1s
    on one line. Each says its value; their fixes (one to_attr each, read back by one line) would
    clash pasted together, so none is shown; the session report keeps both entries."""
    from ddt_prefetch_panel.session import aggregate
    from tests.places.loops import drafts_and_published
    from tests.places.seed import seed

    seed(3)
    with detect() as report:
        drafts_and_published()
    findings = _n_plus_ones(report)
    assert sorted(f.variant for f in findings) == ["draft=False", "draft=True"]
    assert len({f.fingerprint for f in findings}) == 2
    assert report.fixes == [] and all("fix" not in f.snippets and f.fix_id is None for f in findings)
    assert all(f.proof["status"] == "skipped" and "would clash" in f.note for f in findings)
    assert "| `places.Thread.posts` [draft=True] |" in report.to_markdown()
    assert findings[0].to_markdown().startswith(f"### N+1: places.Thread.posts [{findings[0].variant}]")
    session = aggregate([({"test": "t"}, report.to_dict())])
    assert sorted(e["variant"] for e in session["findings"] if e["kind"] == "n_plus_one") == ["draft=False", "draft=True"]


def _latest_review_by_rating(order: Order):
    """A per-row lookup the cache serves once warm: only a cold cache runs its query."""
    from django.core.cache import cache

    key = f"ddtpp-test-review-{order.pk}"
    found = cache.get(key)
    if found is None:
        found = order.customer.review_set.filter(rating=order.pk % 5).first() or 0
        cache.set(key, found)
    return found


def _orders_with_reviews() -> list:
    return [(order.customer.name, _latest_review_by_rating(order)) for order in Order.objects.order_by("pk")]


def test_a_cold_cache_gives_the_outer_level_the_fix_a_warm_one_gives(pizzeria):
    """Cold, the loop also reads each customer's reviews with a filter value that changes per row
    (no Prefetch can say it); warm, only ``order.customer``. The outer level keeps its own proven
    fix either way instead of being folded into the deeper level that has none (issue 21)."""
    from django.core.cache import cache

    cache.clear()
    with detect() as cold:
        expected = _orders_with_reviews()
    with detect() as warm:
        assert _orders_with_reviews() == expected
    cache.clear()

    def customer(report):
        [finding] = [f for f in report.by_kind("n_plus_one") if f.relation == "shop.Order.customer"]
        return finding

    assert customer(cold).snippets["fix"] == customer(warm).snippets["fix"] == '.select_related("customer")'
    assert customer(cold).proof["status"] == customer(warm).proof["status"] == "verified"
    assert customer(cold).fingerprint == customer(warm).fingerprint
    [deeper] = [f for f in cold.by_kind("n_plus_one") if f.relation == "shop.Customer.review_set"]
    assert "fix" not in deeper.snippets and "change from one Customer to the next" in deeper.note
    assert deeper.count == Order.objects.count()  # its own statements only, the outer level's are apart
    assert not [f for f in warm.by_kind("n_plus_one") if f.relation == "shop.Customer.review_set"]


@pytest.mark.parametrize("read, how", [
    (lambda manager: [r.rating for r in manager.all().iterator()], ".iterator()"),
    (lambda manager: list(manager.values_list("rating", flat=True)), ".values() / .values_list()"),
    (lambda manager: sorted(manager.in_bulk()), "a copy of the queryset (in_bulk()"),
])
def test_a_relation_read_in_a_way_no_prefetch_serves_gets_no_fix(pizzeria, read, how):
    """``iterator()``, ``values_list()`` and ``in_bulk()`` on a related manager run their query
    even where the rows are prefetched: the replay's walk read the prefetched list, so
    ``prefetch_related(...)`` used to be shown as verified while pasting it changed nothing
    (21 -> 13 queries, not 3). The loop's own rewrite is named instead, and the outer level
    (``order.customer``) keeps its own fix, which pasted removes what it says."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def page(orders):
        return [(order.customer.name, read(order.customer.review_set)) for order in orders]

    with detect() as report:
        expected = page(Order.objects.order_by("pk"))
    by_relation = {f.relation: f for f in report.by_kind("n_plus_one")}
    finding = by_relation["shop.Customer.review_set"]
    assert "fix" not in finding.snippets and (finding.proof or {}).get("status") != "verified"
    assert f"through {how}" in finding.note and "which runs its own query every time" in finding.note
    customer = by_relation["shop.Order.customer"]
    assert customer.snippets["fix"] == '.select_related("customer")' and customer.proof["status"] == "verified"
    with CaptureQueriesContext(connection) as fixed:
        assert page(Order.objects.order_by("pk").select_related("customer")) == expected
    assert len(fixed) == customer.proof["page_after"]


def test_a_partly_served_read_is_not_verified_by_a_fix_that_leaves_it_repeating(pizzeria):
    """``latest()`` per row still runs once per row with the relation prefetched: the fixed count
    grows with the rows, and outside generic keys that is a failed proof, not "verified"."""
    with detect() as report:
        for order in Order.objects.order_by("pk"):
            reviews = order.customer.review_set
            if reviews.exists():
                reviews.latest("pk")
    for finding in report.by_kind("n_plus_one"):
        if finding.proof and finding.proof["status"] == "verified":
            assert "latest" not in (finding.callsite or {}).get("code", ""), finding.to_dict()
    [latest] = [f for f in report.by_kind("n_plus_one") if "latest" in (f.callsite or {}).get("code", "")]
    assert latest.proof["status"] == "failed" and "still grows with the rows" in latest.proof["detail"]


def test_a_fix_that_costs_the_page_what_it_saves_is_not_shown(pizzeria):
    """nplusone's mode (THRESHOLD=1): one order of ten reads its pizzas. The prefetch is proven on
    the replayed rows (each read there), but on this page it runs one query to save one: the
    page would not run fewer, so no fix is shown and the note says so."""
    first = Order.objects.order_by("pk").first()
    with detect(THRESHOLD=1) as report:
        for order in Order.objects.order_by("pk"):
            if order.pk == first.pk:
                list(order.pizzas.all())
    [finding] = report.by_kind("n_plus_one")
    assert finding.relation == "shop.Order.pizzas" and finding.count == 1
    assert "fix" not in finding.snippets and finding.fix_id is None and report.fixes == []
    assert finding.proof["status"] == "failed"
    assert finding.proof["page_after"] >= finding.proof["page_before"] == report.summary["queries"]
    assert "on this page it costs what it saves" in finding.note


def test_a_loop_that_filters_a_prefetched_relation_is_told_to_pick_in_python(pizzeria):
    """The classic "I prefetched and it still repeats": ``order.pizzas.filter(...).order_by(...)
    .first()`` runs its own query per row although the queryset prefetches ``pizzas``. The note
    gives the read over the prefetched rows; evaluated, it picks what the loop picked, with no
    query per row."""
    import re

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with detect() as report:
        picked = [order.pizzas.filter(vegetarian=True).order_by("name").first()
                  for order in Order.objects.order_by("pk").prefetch_related("pizzas")]
    [finding] = report.by_kind("n_plus_one")
    assert "The queryset already prefetches 'pizzas'" in finding.note
    read = re.search(r"e\.g\. `([^`]+)`", finding.note).group(1)
    assert read == ("next((pizza for pizza in sorted(order.pizzas.all(), key=lambda pizza: pizza.name) "
                    "if pizza.vegetarian == True), None)")
    with CaptureQueriesContext(connection) as queries:
        in_python = [eval(read, {"order": order}) for order in Order.objects.order_by("pk").prefetch_related("pizzas")]
    names = [pizza.name if pizza else None for pizza in picked]  # ties on name may pick either row
    assert [pizza.name if pizza else None for pizza in in_python] == names and len(queries) == 2
