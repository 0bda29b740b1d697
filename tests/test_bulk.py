"""Scenario tests for ``.get()`` loops (bulk.py): the ``in_bulk()`` fix, its rewritten loop line
and its replay on the request's own values."""

from __future__ import annotations

import pytest

from ddt_prefetch_panel import detect
from shop.models import Customer, Order

pytestmark = pytest.mark.django_db


def _n_plus_ones(report) -> list:
    return [f for f in report.findings if f.kind == "n_plus_one"]


# --------------------------------------------------------------------------- item 4: .get() loops


def test_get_per_value_gets_in_bulk_with_the_rewritten_loop_line(pizzeria):
    with detect() as report:
        for customer_id in Order.objects.values_list("customer_id", flat=True):
            Customer.objects.get(pk=customer_id).name
    [finding] = _n_plus_ones(report)
    assert (finding.model, finding.method) == ("shop.Customer", "in_bulk")
    assert (finding.relation, finding.relation_kind, finding.related_model) == (
        "shop.Order.customer", "forward FK", "shop.Customer")  # what the loop mirrors
    assert finding.defined_at["code"].startswith("customer = models.ForeignKey(")
    assert finding.snippets["fix"].startswith("customer_by_pk = Customer.objects.in_bulk(values)")
    assert finding.snippets["access"] == "customer_by_pk[customer_id].name"
    assert finding.proof["status"] == "verified" and finding.proof["after"] == 1


def test_get_by_a_unique_field_gets_in_bulk_with_field_name(pizzeria):
    emails = list(Customer.objects.values_list("email", flat=True))
    with detect() as report:
        for email in emails:
            Customer.objects.filter(email=email).first()
    [finding] = _n_plus_ones(report)
    assert finding.method == "in_bulk"
    assert 'in_bulk(emails, field_name="email")' in finding.snippets["fix"]  # the loop's own list
    assert finding.title == "N+1: shop.Customer loaded by email per email"
    assert finding.snippets["access"] == "customer_by_email[email]"
    assert finding.proof["status"] == "verified"
