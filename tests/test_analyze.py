"""Scenario tests for the analysis pipeline (issue 13): what a user reads for each pattern.

Each test runs real ORM code inside ``detect()`` and asserts the finding a user relies on
(kind, relation, lookup, method, fix) or its absence.
"""

from __future__ import annotations

import pytest

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
