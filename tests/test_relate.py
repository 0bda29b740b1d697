"""Scenario tests for the relation engine: every relation kind, plain and ``.iterator()`` loops.

Each scenario asserts what a user reads in the panel (relation, root model, lookup, method,
snippet) and, the key property, that applying the advice makes the number of queries
independent of the number of parents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ddt_prefetch_panel import detect
from ddt_prefetch_panel.relate import describe_path
from shop.models import Customer, LoyaltyCard, Order, Pizza, Review, Topping

pytestmark = pytest.mark.django_db


@dataclass
class Scenario:
    name: str
    model: type
    loop: Callable  # (iterable of parents) -> None; touches the relation per parent
    relation: str
    lookup: str
    method: str
    kind: str
    base: Callable = lambda qs: qs  # how the view builds the root queryset


def _touch_customer_name(orders):
    for order in orders:
        order.customer.name


def _list(attr):
    def loop(parents):
        for parent in parents:
            list(getattr(parent, attr).all())

    return loop


def _read(attr):
    def loop(parents):
        for parent in parents:
            getattr(parent, attr, None)

    return loop


def _nested(parents):
    for order in parents:
        for pizza in order.pizzas.all():
            pizza.category.name


SCENARIOS = [
    Scenario("forward FK", Order, _touch_customer_name, "shop.Order.customer", "customer",
             "select_related", "forward FK"),
    Scenario("reverse FK with related_name", Order, _list("pizzas"), "shop.Order.pizzas", "pizzas",
             "prefetch_related", "reverse FK"),
    Scenario("reverse FK without related_name", Customer, _list("review_set"), "shop.Customer.review_set",
             "review_set", "prefetch_related", "reverse FK"),
    Scenario("forward one-to-one", LoyaltyCard, _read("customer"), "shop.LoyaltyCard.customer", "customer",
             "select_related", "forward one-to-one"),
    Scenario("reverse one-to-one", Customer, _read("loyalty_card"), "shop.Customer.loyalty_card", "loyalty_card",
             "select_related", "reverse one-to-one"),
    Scenario("M2M", Pizza, _list("toppings"), "shop.Pizza.toppings", "toppings", "prefetch_related",
             "many-to-many"),
    Scenario("reverse M2M with related_name", Topping, _list("pizzas"), "shop.Topping.pizzas", "pizzas",
             "prefetch_related", "reverse many-to-many"),
    Scenario("reverse M2M without related_name", Topping, _list("customer_set"), "shop.Topping.customer_set",
             "customer_set", "prefetch_related", "reverse many-to-many"),
    Scenario("self-referential M2M", Topping, _list("pairs_with"), "shop.Topping.pairs_with", "pairs_with",
             "prefetch_related", "many-to-many"),
    Scenario("GenericForeignKey", Review, _read("target"), "shop.Review.target", "target", "prefetch_related",
             "generic FK", base=lambda qs: qs.filter(object_id__isnull=False)),
    Scenario("GenericRelation", Pizza, _list("reviews"), "shop.Pizza.reviews", "reviews", "prefetch_related",
             "generic relation"),
    Scenario("nested reverse FK then FK", Order, _nested, "shop.Pizza.category", "pizzas__category",
             "prefetch_related", "forward FK"),
]


def _parents(scenario: Scenario, n: int):
    pks = list(scenario.base(scenario.model.objects.order_by("pk")).values_list("pk", flat=True)[:n])
    assert len(pks) == n, f"seed data has fewer than {n} {scenario.model.__name__} rows"
    return scenario.model.objects.filter(pk__in=pks).order_by("pk")


def _count(run: Callable) -> int:
    with CaptureQueriesContext(connection) as ctx:
        run()
    return len(ctx.captured_queries)


@pytest.fixture
def big_pizzeria(db):
    from shop.seed import seed

    seed(orders=15)


@pytest.mark.parametrize("style", ["loop", "iterator"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_relation_is_named_and_the_fix_removes_the_n_plus_one(big_pizzeria, scenario, style):
    with detect() as report:
        queryset = _parents(scenario, 8)  # built inside the capture: its origin is known
        scenario.loop(queryset if style == "loop" else queryset.iterator())

    n_plus_one = report.by_kind("n_plus_one")
    assert len(n_plus_one) == 1, [f.to_dict() for f in report.findings]
    finding = n_plus_one[0]
    assert finding.relation == scenario.relation
    assert finding.model == scenario.model._meta.label
    assert finding.lookup == scenario.lookup
    assert finding.method == scenario.method
    assert finding.relation_kind == scenario.kind
    # The finding shows its fix card's call: the plain lookup, or for two levels the nested
    # Prefetch with the second joined, when its replay saves a query more.
    assert finding.snippets["fix"] == report.fixes[finding.fix_id]["fix"]
    if "__" in scenario.lookup and scenario.method == "prefetch_related":
        first, _, rest = scenario.lookup.partition("__")
        assert finding.snippets["fix"].startswith(f'.prefetch_related(Prefetch("{first}", queryset=')
        assert f'.select_related("{rest}")' in finding.snippets["fix"]
    else:
        assert finding.snippets["fix"] == f'.{scenario.method}("{scenario.lookup}")'
    assert finding.snippets["queryset"].startswith(f"{scenario.model.__name__}.objects.")
    assert finding.callsite["filename"].endswith("test_relate.py")
    assert finding.origin is not None and finding.origin["filename"].endswith("test_relate.py")
    assert finding.defined_at is not None and finding.defined_at["filename"].endswith("models.py")

    def fixed(n: int) -> int:
        fixed_qs = getattr(_parents(scenario, n), finding.method)(finding.lookup)
        return _count(lambda: scenario.loop(fixed_qs if style == "loop" else fixed_qs.iterator(chunk_size=100)))

    def unfixed(n: int) -> int:
        qs = _parents(scenario, n)
        return _count(lambda: scenario.loop(qs if style == "loop" else qs.iterator()))

    assert unfixed(8) > unfixed(3), "the scenario itself must scale with the number of parents"
    assert fixed(3) == fixed(8)


def test_nested_access_is_one_finding_covering_both_levels(big_pizzeria):
    with detect() as report:
        _nested(_parents(SCENARIOS[-1], 10))
    [finding] = report.findings
    assert finding.lookup == "pizzas__category"
    assert len(finding.callsites) == 2
    # One query per order for pizzas, one per pizza for its category; the proven fix (pizzas
    # prefetched with their category joined) leaves one, and avoidable is what it removes.
    pizzas = Pizza.objects.filter(order__in=_parents(SCENARIOS[-1], 10)).count()
    assert finding.count == 10 + pizzas
    assert 'Prefetch("pizzas", queryset=Pizza.objects.select_related("category"))' in finding.snippets["fix"]
    assert finding.avoidable == finding.proof["page_before"] - finding.proof["page_after"] == finding.count - 1


def test_deferred_field_advises_only(big_pizzeria):
    with detect() as report:
        orders = Order.objects.only("id", "status").order_by("pk")[:10]
        for order in orders:
            order.notes
    [finding] = report.findings
    assert finding.relation == "shop.Order.notes"
    assert finding.relation_kind == "deferred field"
    assert finding.method == "only"
    assert finding.snippets["fix"] == '.only("id", "notes", "status")'
    assert finding.snippets["line"] == 'orders = Order.objects.only("id", "notes", "status").order_by("pk")[:10]'

    def run(n):
        qs = Order.objects.only("id", "notes", "status").order_by("pk")[:n]
        return _count(lambda: [o.notes for o in qs])

    assert run(3) == run(10) == 1


def test_deferred_field_advises_removing_it_from_defer(big_pizzeria):
    with detect() as report:
        for order in Order.objects.defer("notes", "created"):
            order.notes
    [finding] = report.findings
    assert finding.method == "defer"
    assert finding.snippets["fix"] == '.defer("created")'


def test_existing_prefetch_is_extended_not_duplicated(big_pizzeria):
    with detect() as report:
        orders = Order.objects.prefetch_related("pizzas").order_by("pk")
        for order in orders:
            for pizza in order.pizzas.all():
                pizza.category.name
    [finding] = report.findings
    assert finding.lookup == "pizzas__category"
    assert finding.snippets["line"] == 'orders = Order.objects.prefetch_related("pizzas__category").order_by("pk")'


def test_select_related_path_below_select_related(big_pizzeria):
    with detect() as report:
        for pizza in Pizza.objects.select_related("order"):
            pizza.order.customer.name
    [finding] = report.findings
    assert finding.relation == "shop.Order.customer"
    assert finding.lookup == "order__customer"
    assert finding.method == "select_related"


def test_loop_over_a_related_manager_of_a_single_parent(big_pizzeria):
    order = max(Order.objects.all(), key=lambda o: o.pizzas.count())
    with detect() as report:
        pizzas = order.pizzas.all()
        for pizza in pizzas:
            pizza.category.name
    [finding] = report.by_kind("n_plus_one")
    assert finding.model == "shop.Pizza"
    assert finding.lookup == "category"
    assert finding.snippets["line"] == 'pizzas = order.pizzas.all().select_related("category")'


# --------------------------------------------------------------------------- no false positives


def _findings(run: Callable) -> list:
    with detect() as report:
        run()
    return report.findings


def test_no_finding_when_select_related_applied(big_pizzeria):
    assert _findings(lambda: _touch_customer_name(Order.objects.select_related("customer"))) == []


def test_no_finding_when_prefetch_related_applied(big_pizzeria):
    assert _findings(lambda: _nested(Order.objects.prefetch_related("pizzas__category"))) == []


def test_no_finding_when_prefetch_related_used_on_a_foreign_key(big_pizzeria):
    assert _findings(lambda: _touch_customer_name(Order.objects.prefetch_related("customer"))) == []


def test_no_finding_for_a_single_parent(big_pizzeria):
    def run():
        order = Order.objects.get(pk=Order.objects.order_by("pk").first().pk)
        order.customer.name
        list(order.pizzas.all())
        first = Customer.objects.first()
        getattr(first, "loyalty_card", None)

    assert _findings(run) == []


def test_no_finding_for_same_relation_on_single_objects_from_different_lines(big_pizzeria):
    a, b = Order.objects.order_by("pk").values_list("pk", flat=True)[:2]

    def run():
        first = Order.objects.get(pk=a)
        second = Order.objects.get(pk=b)
        first.customer.name
        second.customer.name

    assert _findings(run) == []


def test_no_finding_for_null_generic_foreign_keys(big_pizzeria):
    assert _findings(lambda: _read("target")(Review.objects.filter(object_id__isnull=True))) == []


def test_no_finding_for_values_loops(big_pizzeria):
    def run():
        for row in Order.objects.values("id", "customer__name"):
            row["customer__name"]

    assert _findings(run) == []


def test_no_finding_for_iterator_with_prefetching(big_pizzeria):
    def run():
        for order in Order.objects.prefetch_related("pizzas").iterator(chunk_size=2):
            list(order.pizzas.all())

    assert _findings(run) == []


# --------------------------------------------------------------------------- SQL fallback and helpers


def test_hand_written_filter_is_mapped_to_the_relation_it_mirrors(big_pizzeria):
    with detect() as report:
        for order in Order.objects.all():
            list(Pizza.objects.filter(order_id=order.id))
    [finding] = report.findings
    assert finding.relation == "shop.Order.pizzas"
    assert finding.model == "shop.Order"
    assert finding.method == "prefetch_related"
    assert "mirror" in finding.note


def test_raw_cursor_sql_is_mapped_through_meta(big_pizzeria):
    ids = list(Order.objects.values_list("id", flat=True)[:5])
    with detect() as report:
        for order in Order.objects.filter(id__in=ids):
            with connection.cursor() as cursor:
                cursor.execute("SELECT id, name FROM shop_pizza WHERE order_id = %s", [order.id])
                cursor.fetchall()
    [finding] = report.findings
    assert finding.relation == "shop.Order.pizzas"


def test_describe_path_uses_model_descriptors():
    hops = describe_path(Order, ["pizzas", "toppings", "customer_set"])
    assert [h.kind for h in hops] == ["reverse_fk", "m2m", "reverse_m2m"]
    assert describe_path(Order, ["pizzas", "no_such_field"]) is None
    assert describe_path(Order, ["status", "customer"]) is None
    assert [h.kind for h in describe_path(Order, ["status"])] == ["deferred"]


def test_a_per_row_query_filtered_on_a_foreign_key_of_rows_not_looped_names_no_relation(pizzeria):
    """The loop reads customers; each row counts pizzas of one order by name (a hand-written
    query per row). The order_id filter mirrors Order.pizzas, but no orders are looped over:
    naming that relation would send the user to prefetch something no loop reads."""
    first = Order.objects.order_by("pk").first()
    with detect() as report:
        for customer in Customer.objects.order_by("pk"):
            Pizza.objects.filter(order_id=first.pk, name__gte=customer.name[:1]).count()
    [finding] = [f for f in report.findings if f.kind == "n_plus_one"]
    assert finding.relation is None and finding.model == "shop.Pizza" and finding.method is None
    assert finding.note.startswith("Hand-written query per row on `shop_pizza` at tests/test_relate.py:")
    assert "filtered on `name`, `order_id`" in finding.note


def test_hops_after_a_generic_fk_anywhere_in_the_path_are_resolved():
    """The model right after a generic FK is known from the hop that issued the queries: the
    class the last accessor was read on, or a model whose relations lead there."""
    from ddt_prefetch_panel.relate import _through_generic_fk
    from tests.proofs.models import Cable, Device, Interface

    middle = _through_generic_fk(Cable, ("terminations", "termination", "device"), Interface)
    assert [(h.label, h.kind) for h in middle] == [
        ("proofs.Cable.terminations", "reverse_fk"), ("proofs.CableTermination.termination", "generic_fk"),
        ("proofs.Interface.device", "forward_fk")]
    longer = _through_generic_fk(Cable, ("terminations", "termination", "device", "site"), Device)
    assert [h.kind for h in longer] == ["reverse_fk", "generic_fk", "forward_fk", "forward_fk"]
    assert longer[2].target is Device and longer[3].label == "proofs.Device.site"
    # Nothing in the path after the generic FK leads to the class read on: no relation.
    assert _through_generic_fk(Cable, ("terminations", "termination", "device", "site"), Interface) is None
    # A generic FK last resolves with describe_path itself.
    assert _through_generic_fk(Cable, ("terminations", "termination"), Interface) is None
    assert [h.kind for h in describe_path(Cable, ["terminations", "termination"])] == ["reverse_fk", "generic_fk"]
