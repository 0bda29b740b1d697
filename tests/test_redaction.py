"""With SHOW_PARAMS off, a value that reached the database only as a query parameter appears in no
export: panel HTML, session tab, Markdown, JSON, SARIF, patches and test-mode messages.

Each scenario filters on a secret held in a variable (as a request parameter would be), so the
secret is never in the source text the exports may quote.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.db.models import Q
from django.template.loader import render_to_string

from ddt_prefetch_panel import detect
from ddt_prefetch_panel.panel import PrefetchPanel, panel_context
from ddt_prefetch_panel.patch import report_patch
from ddt_prefetch_panel.sarif import to_sarif
from ddt_prefetch_panel.session import aggregate, render, session_context
from ddt_prefetch_panel.testing import failure_message
from shop.models import Customer, Order, Pizza

pytestmark = pytest.mark.django_db

SECRET = "zq-secret-7731"
SLUG = "zq_secret_7731"  # the same value turned into a name (e.g. a to_attr)


def _secret() -> str:
    # Built at run time: the literal above is in this file, but never on a line the exports quote.
    return "".join(SECRET)


def loop_filters_related_manager(needle: str) -> None:
    for order in Order.objects.order_by("pk"):
        list(order.pizzas.filter(name=needle))


def loop_counts_with_a_filter(needle: str) -> None:
    for customer in Customer.objects.order_by("pk"):
        customer.order_set.filter(notes=needle).count()


def loop_checks_existence(needle: str) -> None:
    for customer in Customer.objects.order_by("pk"):
        customer.order_set.filter(status=needle).exists()


def hand_written_loop(needle: str) -> None:
    for customer in Customer.objects.order_by("pk"):
        list(Order.objects.filter(customer_id=customer.pk, notes=needle))


def duplicates_and_unindexed(needle: str) -> None:
    for _ in range(3):
        list(Order.objects.filter(notes=needle))
    list(Pizza.objects.filter(Q(name=needle) | Q(name__startswith=needle)))


def raw_sql_with_inlined_literal(needle: str) -> None:
    with connection.cursor() as cursor:
        for _ in range(2):
            cursor.execute(f"SELECT id FROM shop_customer WHERE name = '{needle}'")


SCENARIOS = [
    pytest.param(loop_filters_related_manager, id="prefetch-queryset-filter"),
    pytest.param(loop_counts_with_a_filter, id="annotate-count-filter"),
    pytest.param(loop_checks_existence, id="annotate-exists-filter"),
    hand_written_loop,
    duplicates_and_unindexed,
    raw_sql_with_inlined_literal,
]


def exports(report) -> dict[str, str]:
    """Every text a user can copy, download or see, for one report."""
    data = report.to_dict()
    findings = data["findings"]
    session = aggregate([({"request_id": "r1", "url": "/page/"}, data)])
    texts = {
        "json": json.dumps(data),
        "markdown": report.to_markdown() + "".join(f.to_markdown() for f in report.findings),
        "sarif": json.dumps(to_sarif(findings)),
        "patch": (report_patch(findings) or "") + "".join(f["snippets"].get("patch", "") for f in findings),
        "panel": render_to_string(PrefetchPanel.template, panel_context({"report": data, "error": None})),
        "session tab": render_to_string("ddt_prefetch_panel/session.html", session_context(session, "r1")),
        "session exports": render(session, "md") + render(session, "json") + render(session, "sarif"),
        "test mode": failure_message(report.findings) if report.findings else "",
    }
    return texts


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_secret_parameter_appears_in_no_export(pizzeria, scenario):
    needle = _secret()
    Order.objects.filter(pk__in=list(Order.objects.values_list("pk", flat=True)[:3])).update(notes=needle)
    with detect(KINDS=["n_plus_one", "duplicate", "missing_index", "unused_prefetch"]) as report:
        scenario(needle)
    assert report.findings, "the scenario produces findings to export"
    leaks = [name for name, text in exports(report).items() if SECRET in text or SLUG in text]
    assert leaks == []


def test_the_exports_do_carry_parameters_when_opted_in(pizzeria):
    with detect(SHOW_PARAMS=True) as report:
        loop_filters_related_manager(_secret())
    texts = exports(report)
    assert SECRET in texts["json"] and SECRET in texts["markdown"]


@pytest.mark.parametrize("scenario, fix", [
    (loop_filters_related_manager, 'queryset=Pizza.objects.filter(name=needle), to_attr="filtered_pizzas")'),
    (loop_counts_with_a_filter, 'Count("order", filter=Q(order__notes=needle))'),
    (loop_checks_existence, 'Exists(Order.objects.filter(customer=OuterRef("pk"), status=needle))'),
])
def test_a_filter_value_is_written_as_the_users_own_variable_and_still_proven(pizzeria, scenario, fix):
    """The loop filters by a variable: the fix names that variable (the user's own code text),
    the replay proves it with this request's value, and the note says where it must exist."""
    with detect() as report:
        scenario(_secret())
    [finding] = report.by_kind("n_plus_one")
    assert fix in finding.snippets["fix"]
    assert finding.proof["status"] == "verified", finding.proof
    assert "needle" in finding.note

