"""Settings and the allowlist, applied to real findings."""

from __future__ import annotations

import pytest
from django.db import connection

from ddt_prefetch_panel import detect
from ddt_prefetch_panel.conf import get_config, is_allowed
from shop.models import Customer, Order

pytestmark = pytest.mark.django_db


def _loops():
    for order in Order.objects.all():
        order.customer.name
    for customer in Customer.objects.all():
        list(customer.review_set.all())


@pytest.mark.parametrize(
    "entry, remaining",
    [
        ({"relation": "shop.Order.customer"}, ["shop.Customer.review_set"]),
        ({"relation": "shop.*.review_set"}, ["shop.Order.customer"]),
        ({"model": "shop.Customer"}, ["shop.Order.customer"]),
        ({"callsite": "tests/test_conf.py"}, []),
        ({"callsite": "*test_conf.py:17"}, ["shop.Customer.review_set"]),
        ({"sql": "*shop_review*"}, ["shop.Order.customer"]),
        ({"model": "shop.Customer", "sql": "*shop_order*"}, ["shop.Order.customer", "shop.Customer.review_set"]),
        ({"model": "shop.*", "kinds": ["duplicate"]}, ["shop.Order.customer", "shop.Customer.review_set"]),
    ],
)
def test_allowlist_entries_by_each_key(pizzeria, entry, remaining):
    with detect(ALLOW=[entry]) as report:
        _loops()
    assert sorted(f.relation for f in report.by_kind("n_plus_one")) == sorted(remaining)
    assert report.summary["allowed"] == 2 - len(remaining)


def test_kinds_setting(pizzeria, settings):
    settings.DDT_PREFETCH_PANEL = {"KINDS": ["duplicate"]}
    with detect() as report:
        _loops()
    assert report.findings == []


def test_invalid_values_fall_back_to_defaults(settings):
    settings.DDT_PREFETCH_PANEL = {"THRESHOLD": "lots", "SHOW_PARAMS": True, "UNKNOWN": 1}
    config = get_config()
    assert config["THRESHOLD"] == 2
    assert config["SHOW_PARAMS"] is True


def test_is_allowed_needs_every_key_to_match():
    finding = {"kind": "n_plus_one", "model": "shop.Order", "relation": "shop.Order.customer", "sql": "SELECT 1",
               "callsite": {"filename": "shop/views.py", "lineno": 3}, "stack": []}
    assert is_allowed(finding, [{"model": "shop.Order", "relation": "shop.Order.*"}])
    assert not is_allowed(finding, [{"model": "shop.Order", "relation": "shop.Pizza.*"}])
    assert is_allowed(finding, [{"callsite": "shop/views.py:3"}])


SECRET = "hunter2-very-secret"


def _secret_loop():
    for customer in Customer.objects.all():
        list(Order.objects.filter(customer=customer, notes=SECRET))
    with connection.cursor() as cursor:
        for _ in range(2):
            cursor.execute(f"SELECT id FROM shop_customer WHERE name = '{SECRET}'")


def test_secret_parameters_never_appear_unless_opted_in(client, pizzeria, settings):
    with detect() as report:
        _secret_loop()
    assert report.findings
    assert SECRET not in str(report.to_dict())
    assert SECRET not in report.to_markdown()
    with detect(SHOW_PARAMS=True) as report:
        _secret_loop()
    assert SECRET in str(report.to_dict())
    assert SECRET in report.to_markdown()
