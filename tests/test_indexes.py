"""Index advisor (issue 5): advice from _meta + introspection + the parser, EXPLAIN as evidence.

Every test runs on the configured database: SQLite in memory by default, PostgreSQL when
``DDTPP_POSTGRES_HOST`` is set. Plan assertions accept each database's own wording.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection, models, transaction

from ddt_prefetch_panel import detect, indexes
from ddt_prefetch_panel.indexes import ExistingIndex, Wanted
from ddt_prefetch_panel.sqlshape import like_uses, select_shape
from shop.models import Customer, Order, Pizza, Review
from tests.toolbar import get_with_toolbar, render_panel, stored_stats

pytestmark = pytest.mark.django_db

POSTGRES = connection.vendor == "postgresql"
SINCE = datetime(2020, 1, 1, tzinfo=timezone.utc)


def missing(report) -> list:
    return report.by_kind("missing_index")


def fields_of(snippet: str) -> list[str]:
    """The ``fields`` of a ``models.Index(...)`` snippet, by evaluating it like a user would."""
    return list(eval(snippet, {"models": models}).fields)


def only_finding(report, model: str = "shop.Order"):
    found = [f for f in missing(report) if f.model == model]
    assert len(found) == 1, [f.to_dict() for f in missing(report)]
    return found[0]


def scans(evidence: dict) -> bool:
    text = "\n".join(evidence["plan"])
    return ("SCAN shop_order" in text) if not POSTGRES else ("Seq Scan on shop_order" in text)


@pytest.fixture
def orders(pizzeria):
    return list(Order.objects.order_by("pk"))


def create_index(sql: str) -> None:
    """An index that exists only in the database (rolled back with the test)."""
    with connection.cursor() as cursor:
        if POSTGRES:
            # The seed's rows leave deferred FK checks pending, which blocks CREATE INDEX.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(sql)


# --------------------------------------------------------------------------- advice


def test_unindexed_equality_gets_db_index_advice_with_plan_evidence(orders):
    with detect() as report:
        for status in ("new", "paid", "delivered"):
            list(Order.objects.filter(status=status))
    finding = only_finding(report)
    assert finding.method == "index"
    assert finding.count == 3 and finding.avoidable == 0
    assert finding.relation is None and finding.origin is None
    assert "db_index=True" in finding.snippets["fix"]
    assert "shop.Order.status" in finding.snippets["fix"]
    assert fields_of(finding.snippets["index"]) == ["status"]
    name = eval(finding.snippets["index"], {"models": models}).name
    assert name.isidentifier() and len(name) <= 30
    assert finding.snippets["migrate"] == "python manage.py makemigrations shop"
    assert finding.callsite["code"].startswith("list(Order.objects.filter(status=status))")
    evidence = finding.evidence
    assert evidence["database"] == connection.vendor
    assert evidence["error"] is None and evidence["after"] is None
    assert evidence["uses_index"] is False and scans(evidence)


def test_single_field_fix_is_the_field_declaration_with_db_index(orders):
    with detect() as report:
        for status in ("new", "paid"):
            list(Order.objects.filter(status=status))
    fix = only_finding(report).snippets["fix"]
    assert fix == '# shop.Order.status\nstatus = models.CharField(max_length=20, default="new", db_index=True)'


def test_range_with_order_by_gets_descending_field(orders):
    with detect() as report:
        for days in (1, 2):
            list(Order.objects.filter(created__gte=SINCE + timedelta(days=days)).order_by("-created"))
    finding = only_finding(report)
    assert fields_of(finding.snippets["index"]) == ["-created"]
    assert "created = models.DateTimeField(db_index=True)" in finding.snippets["fix"]


def test_range_and_limit_on_another_model(orders):
    with detect() as report:
        for price in (5, 8):
            list(Pizza.objects.filter(price__gte=price).order_by("-price")[:3])
    finding = only_finding(report, "shop.Pizza")
    assert fields_of(finding.snippets["index"]) == ["-price"]


def test_multi_column_filter_puts_equalities_first_then_the_range(orders):
    with detect() as report:
        for status in ("new", "paid"):
            list(Order.objects.filter(created__gte=SINCE, status=status).order_by("-created"))
    finding = only_finding(report)
    assert fields_of(finding.snippets["fix"]) == ["status", "-created"]
    assert finding.snippets["fix"].startswith('models.Index(fields=["status", "-created"], name="')
    assert "index" not in finding.snippets  # the fix already is the Index line
    assert "Meta.indexes" in finding.note


def test_equality_then_order_by_when_no_range(orders):
    with detect() as report:
        for status in ("new", "paid"):
            list(Order.objects.filter(status=status).order_by("-created", "notes"))
    assert fields_of(only_finding(report).snippets["fix"]) == ["status", "-created", "notes"]


def test_order_by_alone_needs_a_limit(orders):
    with detect() as report:
        for _ in range(2):
            list(Order.objects.order_by("-created"))
    assert missing(report) == []
    with detect() as report:
        for size in (3, 4):
            list(Order.objects.order_by("-created")[:size])
    assert fields_of(only_finding(report).snippets["index"]) == ["-created"]


def test_groups_with_the_same_advice_merge_into_one_finding(orders):
    with detect() as report:
        for status in ("new", "paid"):
            list(Order.objects.filter(status=status).order_by("-created"))
        for status in ("new", "paid", "delivered"):
            list(Order.objects.filter(status=status, created__gte=SINCE).order_by("-created"))
    finding = only_finding(report)
    assert finding.count == 5
    assert len(finding.callsites) == 2


def test_single_slow_query_is_considered(orders):
    with detect() as report:
        list(Order.objects.filter(status="new"))
    assert missing(report) == []
    with detect(SLOW_QUERY_MS=0) as report:
        list(Order.objects.filter(status="new"))
    assert only_finding(report).count == 1


# --------------------------------------------------------------------------- no advice


def test_already_indexed_columns_produce_nothing(orders):
    customer = Customer.objects.first()
    with detect() as report:
        for _ in range(2):
            list(Order.objects.filter(customer_id=customer.pk))  # FK
            list(Order.objects.filter(customer_id=customer.pk, status="new"))  # FK lookup + more
            list(Customer.objects.filter(email=customer.email))  # unique
            list(Review.objects.filter(rating=3))  # Meta.indexes
            list(Review.objects.filter(rating__gte=3))  # Meta.indexes, range
            list(Order.objects.filter(pk__in=[1, 2]))  # primary key
            list(Pizza.objects.filter(order__in=orders[:2]))  # prefetch-style FK IN
    assert missing(report) == []


def test_index_created_only_in_the_database_counts(orders):
    create_index('CREATE INDEX "ddtpp_test_only_status" ON "shop_order" ("status", "created")')
    with detect() as report:
        for status in ("new", "paid"):
            list(Order.objects.filter(status=status))
            list(Order.objects.filter(status=status, created__gte=SINCE))
    assert missing(report) == []


def test_index_whose_prefix_is_not_the_equality_set_does_not_count(orders):
    create_index('CREATE INDEX "ddtpp_test_created_status" ON "shop_order" ("created", "status")')
    with detect() as report:
        for status in ("new", "paid"):
            list(Order.objects.filter(status=status))
    assert fields_of(only_finding(report).snippets["index"]) == ["status"]


def test_leading_wildcard_like_gets_no_advice(orders):
    with detect() as report:
        for text in ("an", "o"):
            list(Customer.objects.filter(name__contains=text))
            list(Customer.objects.filter(name__icontains=text))
            list(Customer.objects.filter(name__endswith=text))
    assert missing(report) == []


def test_skipped_columns_are_named_in_the_note_of_a_finding(orders):
    with detect() as report:
        for text in ("a", "b"):
            list(Order.objects.filter(status="new", notes__contains=text))
    finding = only_finding(report)
    assert fields_of(finding.snippets["index"]) == ["status"]
    assert "notes (LIKE with a leading wildcard" in finding.note


def test_or_and_functions_are_left_out(orders):
    with detect() as report:
        for status in ("new", "paid"):
            list(Order.objects.filter(models.Q(status=status) | models.Q(notes="x")))
            list(Order.objects.annotate(s=models.functions.Lower("status")).filter(s=status))
    assert missing(report) == []


def test_explain_setting_off_keeps_the_finding_without_evidence(orders):
    with detect(EXPLAIN=False) as report:
        for status in ("new", "paid"):
            list(Order.objects.filter(status=status))
    assert only_finding(report).evidence is None


def test_missing_index_kind_can_be_turned_off(orders):
    with detect(KINDS=["n_plus_one"]) as report:
        for status in ("new", "paid"):
            list(Order.objects.filter(status=status))
    assert missing(report) == []


# --------------------------------------------------------------------------- evidence


def test_explain_failure_is_reported_on_the_finding(orders, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("planner unavailable")

    monkeypatch.setattr(indexes, "run_explain", broken)
    with detect() as report:
        for status in ("new", "paid"):
            list(Order.objects.filter(status=status))
    finding = only_finding(report)
    assert finding.evidence["error"] == "RuntimeError: planner unavailable"
    assert finding.evidence["plan"] == []
    assert "db_index=True" in finding.snippets["fix"]


def test_database_error_in_explain_leaves_the_transaction_usable(orders):
    with transaction.atomic():
        evidence = indexes.explain("default", 'SELECT * FROM "no_such_table" WHERE "x" = %s', [1], "no_such_table")
        assert evidence["error"] and evidence["plan"] == []
        assert Order.objects.count() == len(orders)  # the savepoint kept the error contained


@pytest.mark.django_db(transaction=True)
def test_database_error_in_autocommit_leaves_the_connection_idle():
    evidence = indexes.explain("default", 'SELECT * FROM "no_such_table"', None, "no_such_table")
    assert evidence["error"]
    assert not connection.in_atomic_block and connection.get_autocommit()
    if POSTGRES:
        from psycopg.pq import TransactionStatus

        assert connection.connection.info.transaction_status == TransactionStatus.IDLE
    assert Order.objects.count() == 0


def test_analysis_queries_are_invisible_to_query_counting(orders):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        with detect(EXPLAIN_TRY_INDEX=True) as report:
            for status in ("new", "paid"):
                list(Order.objects.filter(status=status))
    assert only_finding(report).evidence["after"]
    statements = [q["sql"] for q in captured.captured_queries]
    assert not [s for s in statements if "EXPLAIN" in s or "ddtpp_" in s or "CREATE INDEX" in s]
    assert sum(1 for s in statements if "shop_order" in s) == 2


def test_broken_transaction_is_not_queried(orders):
    with transaction.atomic():
        with detect() as report:
            for status in ("new", "paid"):
                list(Order.objects.filter(status=status))
            transaction.set_rollback(True)
        finding = only_finding(report)
        assert "transaction is broken" in finding.evidence["error"]


def test_parameter_values_stay_out_of_the_finding(orders):
    secret = "zz-secret-status"
    with detect() as report:
        for status in (secret, secret + "2"):
            list(Order.objects.filter(status=status))
    finding = only_finding(report)
    assert finding.evidence["plan"]
    assert secret not in json.dumps(finding.to_dict())


def test_finding_survives_a_json_round_trip(orders):
    with detect() as report:
        for status in ("new", "paid"):
            list(Order.objects.filter(status=status))
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    [item] = [f for f in data["findings"] if f["kind"] == "missing_index"]
    assert set(item["evidence"]) >= {"database", "plan", "uses_index", "after", "error"}


def test_try_index_shows_the_plan_with_the_index_then_rolls_it_back(orders):
    with detect(EXPLAIN_TRY_INDEX=True) as report:
        for status in ("new", "paid"):
            list(Order.objects.filter(status=status).order_by("-created"))
    finding = only_finding(report)
    name = re.search(r'name="([^"]+)"', finding.snippets["fix"]).group(1)
    evidence = finding.evidence
    assert scans(evidence) and evidence["uses_index"] is False
    after = "\n".join(evidence["after"])
    assert name in after
    assert indexes.uses_index(connection.vendor, evidence["after"], "shop_order")
    with connection.cursor() as cursor:
        assert name not in connection.introspection.get_constraints(cursor, "shop_order")


@pytest.mark.django_db(transaction=True)
def test_the_suggested_index_turns_the_scan_into_an_index_search():
    from shop.seed import seed

    seed(orders=10)

    def run():
        with detect() as report:
            for status in ("new", "paid"):
                list(Order.objects.filter(status=status).order_by("-created"))
        return report

    finding = only_finding(run())
    assert scans(finding.evidence)
    # What the user copies into Order.Meta.indexes, created as the migration would.
    index = eval(finding.snippets["fix"], {"models": models})
    assert list(index.fields) == ["status", "-created"]
    with connection.schema_editor() as editor:
        editor.add_index(Order, index)
    try:
        sql, params = Order.objects.filter(status="new").order_by("-created").query.sql_with_params()
        with transaction.atomic():
            if POSTGRES:
                # PostgreSQL seq-scans tiny tables whatever indexes exist.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL enable_seqscan = off")
            after = indexes.explain("default", sql, params, "shop_order")
        text = "\n".join(after["plan"])
        assert after["uses_index"] is True, text
        assert index.name in text
        if POSTGRES:
            assert "Index" in text and "Seq Scan" not in text
        else:
            assert f"SEARCH shop_order USING INDEX {index.name}" in text
        # The advisor reads the database: the new index silences the finding.
        assert missing(run()) == []
    finally:
        with connection.schema_editor() as editor:
            editor.remove_index(Order, index)


# --------------------------------------------------------------------------- through the toolbar


def test_demo_unindexed_page_shows_a_missing_index_finding(client, pizzeria):
    _, request_id = get_with_toolbar(client, "/unindexed/bad/")
    stats = stored_stats(request_id)
    assert stats["error"] is None
    found = [f for f in stats["report"]["findings"] if f["kind"] == "missing_index"]
    assert [f["model"] for f in found] == ["shop.Order"]
    [finding] = found
    assert fields_of(finding["snippets"]["fix"]) == ["status", "-created"]
    assert finding["evidence"]["database"] == connection.vendor
    assert finding["evidence"]["uses_index"] is False
    html = render_panel(client, request_id)
    assert "missing index" in html
    assert "scans table" in html
    assert ("Seq Scan on shop_order" if POSTGRES else "SCAN shop_order") in html


# --------------------------------------------------------------------------- pure rules


def test_coverage_rule_uses_the_leading_columns():
    wanted = Wanted(equality=["a", "b"])
    assert indexes.is_covered(wanted, [ExistingIndex(("b", "a", "c"))], set())
    assert not indexes.is_covered(wanted, [ExistingIndex(("a", "c", "b"))], set())
    assert not indexes.is_covered(wanted, [ExistingIndex(("a",))], set())
    assert indexes.is_covered(wanted, [ExistingIndex(("a",), unique=True)], set())  # unique lookup
    assert indexes.is_covered(wanted, [ExistingIndex(("a",))], {"a"})  # FK lookup
    assert indexes.is_covered(Wanted(equality=["a"]), [ExistingIndex(("a", "z"))], set())
    assert indexes.is_covered(Wanted(range="r"), [ExistingIndex(("r", "a"))], set())
    assert not indexes.is_covered(Wanted(range="r"), [ExistingIndex(("a", "r"))], set())
    assert indexes.is_covered(Wanted(order=[("o", True)]), [ExistingIndex(("o",))], set())


def test_advice_order_and_length_limit():
    wanted = Wanted(equality=["status", "customer_id", "notes"], range="created", order=[("created", True)])
    assert indexes.advised_fields(Order, wanted)[0] == ("status", "customer", "notes")
    wanted = Wanted(equality=["status"], range="created", order=[("notes", False)])
    assert indexes.advised_fields(Order, wanted)[0] == ("status", "created")
    wanted = Wanted(equality=["status"], order=[("created", True), ("id", False)])
    assert indexes.advised_fields(Order, wanted)[0] == ("status", "-created", "id")


def test_like_patterns_follow_the_parameter_order_and_the_vendor():
    sql = ('SELECT "t"."id" FROM "t" WHERE ("t"."a" = %s AND "t"."n" LIKE %s ESCAPE \'\\\' AND "t"."b" = %s)')
    [use] = like_uses(sql, "sqlite")
    assert use.param == 1
    # select_shape numbers placeholders breadth-first; the advisor must not use that.
    assert select_shape(sql, "sqlite") is not None
    assert indexes.like_pattern(use, ["x", "%y%", "z"]) == "%y%"
    assert indexes.like_why("%y%", False, "sqlite") == indexes.WHY_LEADING_WILDCARD
    assert indexes.like_why("y%", False, "sqlite") == indexes.WHY_SQLITE_LIKE
    assert indexes.like_why("y%", True, "postgresql") == indexes.WHY_PG_LIKE
    assert indexes.like_why("y%", False, "mysql") is None


def test_plan_redaction_keeps_costs_and_drops_values():
    lines = ["Seq Scan on shop_order  (cost=0.00..1.12 rows=1 width=88)",
             "  Filter: ((status)::text = 'secret'::text)"]
    assert indexes.redact_plan(lines) == [
        "Seq Scan on shop_order  (cost=0.00..1.12 rows=1 width=88)",
        "  Filter: ((status)::text = ?::text)",
    ]
    assert indexes.uses_index("postgresql", lines, "shop_order") is False
    assert indexes.uses_index("sqlite", ["SEARCH shop_order USING INDEX i (status=?)"], "shop_order") is True
    assert indexes.uses_index("sqlite", ["SCAN shop_order", "USE TEMP B-TREE FOR ORDER BY"], "shop_order") is False


def test_advice_cut_to_three_fields_is_not_repeated_when_that_index_exists():
    existing = [ExistingIndex(("notes", "status", "created"))]
    assert indexes.already_exists(Order, ("status", "created", "notes"), existing)
    assert not indexes.already_exists(Order, ("status", "-created"), [ExistingIndex(("created", "notes"))])


def test_panel_shows_evidence_escaped():
    from django.template.loader import render_to_string

    from ddt_prefetch_panel.panel import PrefetchPanel, panel_context

    finding = {
        "kind": "missing_index", "model": "shop.Order", "relation": None, "lookup": None, "method": "index",
        "count": 2, "avoidable": 0, "duration_ms": 1.0, "sql": "SELECT 1", "callsite": None, "stack": [],
        "origin": None, "snippets": {"fix": "db_index=True"}, "alias": "default", "note": None,
        "evidence": {"database": "sqlite", "plan": ["SCAN shop_order", "<b>x</b>"], "uses_index": False,
                     "after": ["SEARCH shop_order USING INDEX i (status=?)"], "error": "Boom: <oops>",
                     "note": None},
    }
    stats = {"report": {"version": 1, "summary": {"queries": 2}, "findings": [finding]}, "error": None}
    html = render_to_string(PrefetchPanel.template, panel_context(stats))
    assert "scans table" in html
    assert "SCAN shop_order\n&lt;b&gt;x&lt;/b&gt;" in html
    assert "SEARCH shop_order USING INDEX i (status=?)" in html
    assert "Boom: &lt;oops&gt;" in html
    assert "<b>x</b>" not in html


def test_two_valued_columns_alone_get_no_index_advice(orders):
    with detect() as report:
        for _ in range(3):
            list(Pizza.objects.filter(vegetarian=True))
    assert missing(report) == []


def test_tables_under_index_min_rows_get_no_index_advice(orders):
    def loop():
        for status in ("new", "paid", "delivered"):
            list(Order.objects.filter(status=status))

    rows = Order.objects.count()
    with detect(INDEX_MIN_ROWS=rows + 1) as report:  # a table smaller than the setting: one page
        loop()
    assert report.by_kind("missing_index") == []
    with detect(INDEX_MIN_ROWS=rows) as report:
        loop()
    assert len(report.by_kind("missing_index")) == 1
    Order.objects.all().delete()
    with detect() as report:  # an empty table: never
        loop()
    assert report.by_kind("missing_index") == []


def test_only_an_index_led_by_the_column_counts_as_already_used():
    """PostgreSQL may scan a composite index led by another column on a small table; that
    does not answer for an index on the advised column."""
    leading = {"ddtpp_created_status": "created", "shop_order_status_idx": "status"}
    scan_other = ["Index Scan using ddtpp_created_status on shop_order  (cost=0.14..8.16 rows=1 width=8)",
                  "  Index Cond: ((status)::text = 'new'::text)"]
    assert indexes.plan_lookup_columns(scan_other, leading) == {"created"}
    by_status = ["SEARCH shop_order USING INDEX shop_order_status_idx (status=?)"]
    assert indexes.plan_lookup_columns(by_status, leading) == {"status"}
    assert indexes.plan_lookup_columns(["Bitmap Index Scan on shop_order_status_idx"], leading) == {"status"}
    assert indexes.plan_lookup_columns(["SCAN shop_order"], leading) == set()
