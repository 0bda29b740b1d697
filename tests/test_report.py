from __future__ import annotations

import json

import pytest

from ddt_prefetch_panel import Finding, Report, detect
from shop.models import Category, Customer, Order

pytestmark = pytest.mark.django_db

FIELDS = {
    "kind", "model", "relation", "lookup", "method", "count", "avoidable", "duration_ms", "sql",
    "callsite", "stack", "origin", "snippets",
}


def _n_plus_one_and_duplicates():
    for order in Order.objects.all():
        order.customer.name
    Category.objects.filter(name="Classic").first()
    Category.objects.filter(name="Classic").first()


def test_to_dict_has_every_contract_field_and_survives_json(pizzeria):
    with detect() as report:
        _n_plus_one_and_duplicates()
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    for finding in data["findings"]:
        assert FIELDS <= set(finding)
    assert Report.from_dict(data).to_dict() == data


def test_findings_are_sorted_by_avoidable_queries(pizzeria):
    with detect() as report:
        _n_plus_one_and_duplicates()
    kinds = [f.kind for f in report.findings]
    assert kinds == ["n_plus_one", "duplicate"]
    assert report.findings[0].avoidable > report.findings[1].avoidable


def test_duplicates_name_every_call_site(pizzeria):
    with detect() as report:
        _n_plus_one_and_duplicates()
    [duplicate] = report.by_kind("duplicate")
    assert duplicate.count == 2 and duplicate.avoidable == 1
    assert [c["lineno"] for c in duplicate.callsites] == [
        duplicate.callsites[0]["lineno"], duplicate.callsites[0]["lineno"] + 1
    ]
    assert "reuse" in duplicate.snippets["fix"]


def test_repeats_of_a_single_statement_are_a_duplicate_not_an_n_plus_one(pizzeria):
    with detect() as report:
        for _ in range(4):
            Customer.objects.get(email="ada@example.com")
    assert [f.kind for f in report.findings] == ["duplicate"]
    assert report.findings[0].count == 4


def test_threshold_setting(pizzeria, settings):
    settings.DDT_PREFETCH_PANEL = {"THRESHOLD": 50}
    with detect() as report:
        _n_plus_one_and_duplicates()
    assert report.by_kind("n_plus_one") == []
    with detect(THRESHOLD=2) as report:
        _n_plus_one_and_duplicates()
    assert len(report.by_kind("n_plus_one")) == 1


def test_sql_has_placeholders_and_no_literal_values(pizzeria):
    from django.db import connection

    with detect() as report:
        for _ in range(2):
            with connection.cursor() as cursor:
                cursor.execute("SELECT id FROM shop_customer WHERE email = 'ada@example.com'")
    [finding] = report.findings
    assert "ada@example.com" not in finding.sql
    assert finding.sql == "SELECT id FROM shop_customer WHERE email = ?"  # full SQL: JSON only
    assert "`SELECT … FROM shop_customer WHERE …`" in report.to_markdown()


def test_markdown_names_relation_call_site_origin_and_fix(pizzeria):
    with detect() as report:
        orders = Order.objects.all()
        for order in orders:
            order.customer.name
    text = report.to_markdown()
    assert "| 1 | N+1 | `shop.Order.customer` |" in text  # the summary table comes first
    assert "test_report.py" in text
    assert 'origin line ' in text and 'fix `.select_related("customer")`' in text
    single = report.findings[0].to_markdown()
    assert single.startswith("### N+1: shop.Order.customer")
    assert '```python\norders = Order.objects.all().select_related("customer")\n```' in single


def test_finding_from_dict_ignores_unknown_keys():
    finding = Finding.from_dict({"kind": "duplicate", "model": None, "relation": None, "lookup": None,
                                 "method": None, "count": 2, "avoidable": 1, "duration_ms": 0.1, "sql": "x",
                                 "callsite": None, "stack": [], "origin": None, "future_field": 1})
    assert finding.kind == "duplicate"


def test_savepoints_in_a_loop_are_not_an_n_plus_one(pizzeria):
    from django.db import transaction

    with detect() as report:
        for order in Order.objects.select_related("customer"):
            with transaction.atomic():
                order.customer.name
    assert report.findings == []
