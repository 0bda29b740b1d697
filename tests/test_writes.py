"""Scenario tests for writes per row (writes.py): the fix a ``save()`` / ``create()`` /
``delete()`` loop gets, and its replay (rolled back, on the writes' own alias)."""

from __future__ import annotations

import pytest

from ddt_prefetch_panel import detect
from shop.models import Order

pytestmark = pytest.mark.django_db


def _n_plus_ones(report) -> list:
    return [f for f in report.findings if f.kind == "n_plus_one"]


# --------------------------------------------------------------------------- item 6: writes per row


def _by_method(report) -> dict:
    return {f.method: f for f in _n_plus_ones(report)}


def test_save_per_row_gets_bulk_update_with_the_changed_fields(pizzeria):
    with detect() as report:
        for i, order in enumerate(Order.objects.all()):
            order.notes = f"note {i}"
            order.save()
    [finding] = _n_plus_ones(report)
    assert (finding.model, finding.method) == ("shop.Order", "bulk_update")
    assert finding.snippets["fix"].startswith('Order.objects.bulk_update(objs, ["notes"])')
    assert finding.proof["status"] == "verified" and finding.proof["after"] == 1
    assert not [f for f in report.findings if f.kind == "duplicate"]


def test_same_value_or_same_increment_per_row_gets_queryset_update(pizzeria):
    from shop.models import LoyaltyCard

    with detect() as report:
        for order in Order.objects.all():
            order.status = "archived"
            order.save()
        for card in LoyaltyCard.objects.all():
            card.points += 5
            card.save()
    fixes = {f.model: f for f in _n_plus_ones(report)}
    assert fixes["shop.Order"].method == "update"
    assert fixes["shop.Order"].snippets["fix"] == '.update(status="archived")'
    assert fixes["shop.LoyaltyCard"].snippets["fix"] == '.update(points=F("points") + 5)'
    assert fixes["shop.LoyaltyCard"].snippets["import"] == "from django.db.models import F"
    assert all(f.proof["status"] == "verified" for f in fixes.values())


def test_same_exact_factor_per_row_gets_queryset_update_with_f(pizzeria):
    from decimal import Decimal

    from shop.models import Pizza

    with detect() as report:
        for pizza in Pizza.objects.all():
            pizza.price = pizza.price * Decimal("1.1")
            pizza.save()
    [finding] = _n_plus_ones(report)
    assert finding.snippets["fix"] == '.update(price=F("price") * Decimal("1.1"))'
    assert finding.snippets["import"] == "from django.db.models import F\nfrom decimal import Decimal"
    assert finding.proof["status"] == "verified"


def test_values_that_differ_beyond_the_first_rows_get_bulk_update_not_update(pizzeria):
    orders = list(Order.objects.order_by("pk"))
    with detect() as report:
        for i, order in enumerate(Order.objects.order_by("pk")):
            order.status = "archived" if i < len(orders) - 1 else "kept"  # only the last row differs
            order.save()
    [finding] = _n_plus_ones(report)
    assert finding.method == "bulk_update"
    assert finding.snippets["fix"].startswith('Order.objects.bulk_update(objs, ["status"])')


def test_create_per_row_gets_bulk_create_and_delete_per_row_gets_queryset_delete(pizzeria):
    from shop.models import Category

    with detect() as report:
        for i in range(4):
            Category.objects.create(name="same name")  # identical INSERTs: never "reuse the result"
        for category in Category.objects.filter(name="same name"):
            category.delete()
    methods = _by_method(report)
    assert methods["bulk_create"].model == "shop.Category" and methods["bulk_create"].count == 4
    assert methods["bulk_create"].proof["status"] == "verified"
    # Finding.method keeps DESIGN.md's values: a queryset delete() is an "update"-kind fix.
    assert methods["update"].snippets["fix"] == ".delete()"
    assert methods["update"].proof["status"] == "verified"
    assert [f for f in report.findings if f.kind == "duplicate"] == []


def test_bulk_create_replay_reads_the_inserts_values_back_as_the_fields_hold_them(pizzeria):
    """SQLite gets an aware datetime as a naive UTC string: rebuilt from the INSERTs as is, the
    replay's objects would hold naive datetimes, and Django would warn (USE_TZ is on)."""
    import warnings

    from django.utils import timezone

    from shop.models import Customer

    customer = Customer.objects.first()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with detect() as report:
            for day in range(3):
                Order.objects.create(customer=customer, created=timezone.now() - timezone.timedelta(days=day))
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
    [finding] = [f for f in report.findings if f.method == "bulk_create"]
    assert finding.proof["status"] == "verified" and finding.count == 3


@pytest.mark.django_db(databases=["default", "other"])
def test_write_replays_stay_on_the_writes_own_alias(pizzeria):
    """INSERTs on the second alias: the bulk_create replay runs there, inside its rolled-back
    savepoint, and never writes to the default database."""
    from shop.models import Category

    before = Category.objects.count()
    with detect() as report:
        for i in range(4):
            Category.objects.using("other").create(name=f"other {i}")
    [finding] = [f for f in report.findings if f.method == "bulk_create"]
    assert finding.alias == "other" and finding.proof["status"] == "verified", finding.proof
    assert Category.objects.count() == before
    assert Category.objects.using("other").count() == 4


def test_saves_that_change_nothing_are_named_as_such_not_as_unreadable(pizzeria):
    with detect() as report:
        for order in Order.objects.all():
            order.save()
    [finding] = _n_plus_ones(report)
    assert finding.method is None and "fix" not in finding.snippets
    assert "none of them changed a value" in finding.note
