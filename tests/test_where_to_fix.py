"""Issue: where to put the fix, and fixes plain prefetching cannot express.

Each scenario asserts kind, relation, method, the snippet text and the origin (file and line
of the statement that built the root queryset), and that the fix really removes the N+1.
"""

from __future__ import annotations

import inspect

import pytest
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Prefetch
from django.test.utils import CaptureQueriesContext

from ddt_prefetch_panel import detect
from shop.models import Customer, Order, Pizza, Topping
from tests.toolbar import get_with_toolbar, stored_stats

pytestmark = pytest.mark.django_db


def _line_of(text: str) -> int:
    """Line number of ``text`` in this file (robust to edits above it)."""
    lines, _ = inspect.getsourcelines(inspect.getmodule(_line_of))
    matches = [i + 1 for i, line in enumerate(lines) if line.rstrip().endswith(text)]
    assert len(matches) == 1, (text, matches)
    return matches[0]


def _queries(run) -> int:
    with CaptureQueriesContext(connection) as ctx:
        run()
    return len(ctx.captured_queries)


def test_origin_is_the_build_line_not_the_iteration_line(pizzeria):
    with detect() as report:
        orders = Order.objects.filter(status__in=["new", "baking", "delivered"])  # build here
        names = []
        total = 0
        for order in orders:  # iterate three lines later
            names.append(order.customer.name)
            total += 1
    [finding] = report.findings
    assert finding.origin["filename"].endswith("tests/test_where_to_fix.py")
    assert finding.origin["lineno"] == _line_of("# build here")
    assert finding.evaluated_at["lineno"] == _line_of("# iterate three lines later")
    assert finding.snippets["line"] == (
        'orders = Order.objects.filter(status__in=["new", "baking", "delivered"])'
        '.select_related("customer")  # build here'
    )


def test_queryset_built_in_a_view_and_iterated_in_a_template(client, pizzeria):
    _, request_id = get_with_toolbar(client, "/template-loop/bad/")
    [finding] = [f for f in stored_stats(request_id)["report"]["findings"] if f["kind"] == "n_plus_one"]
    assert finding["callsite"]["template"] is True
    views = open("demo/shop/views.py").read().splitlines()
    assert finding["origin"]["filename"] == "demo/shop/views.py"
    assert "Order.objects" in views[finding["origin"]["lineno"] - 1]
    assert finding["evaluated_at"]["template"] is True
    assert finding["snippets"]["line"].endswith('.select_related("customer")')


def test_filtered_related_manager_gets_a_prefetch_object_with_to_attr(pizzeria):
    with detect() as report:
        orders = Order.objects.order_by("pk")
        for order in orders:
            list(order.pizzas.filter(vegetarian=True).order_by("-price"))
    [finding] = report.findings
    assert finding.kind == "n_plus_one"
    assert finding.relation == "shop.Order.pizzas"
    assert finding.method == "Prefetch"
    prefetch = ('Prefetch("pizzas", queryset=Pizza.objects.filter(vegetarian=True).order_by("-price"), '
                'to_attr="vegetarian_pizzas")')
    assert finding.snippets["fix"] == f".prefetch_related({prefetch})"
    assert finding.snippets["access"] == "list(order.vegetarian_pizzas)"
    assert finding.snippets["line"] == f'orders = Order.objects.order_by("pk").prefetch_related({prefetch})'

    def fixed(n):
        qs = Order.objects.order_by("pk")[:n].prefetch_related(
            Prefetch("pizzas", queryset=Pizza.objects.filter(vegetarian=True).order_by("-price"),
                     to_attr="vegetarian_pizzas"))
        return _queries(lambda: [list(o.vegetarian_pizzas) for o in qs])

    assert fixed(3) == fixed(10) == 2


def test_exclude_and_slice_are_rebuilt_and_unreadable_filters_are_not_invented(pizzeria):
    from django.db.models import Q

    with detect() as report:
        for order in Order.objects.all():
            list(order.pizzas.exclude(name="Marinara")[:2])
        for order in Order.objects.all():
            list(order.pizzas.filter(Q(vegetarian=True) | Q(name="Diavola")))
    sliced, unreadable = sorted(report.by_kind("n_plus_one"), key=lambda f: "Q object" in (f.note or ""))
    assert 'queryset=Pizza.objects.exclude(name="Marinara")[:2], to_attr="first_2_non_marinara_pizzas"' in (
        sliced.snippets["fix"])
    # A filter that cannot be rebuilt is never invented or left as a half-written line: no
    # paste-able fix, and the note says why.
    assert unreadable.method is None
    assert "fix" not in unreadable.snippets and "line" not in unreadable.snippets
    assert "Q object" in unreadable.note


def test_filters_that_change_per_row_are_not_turned_into_one_prefetch(pizzeria):
    with detect() as report:
        for order in Order.objects.all():
            list(order.pizzas.filter(price__gte=order.pk))
    [finding] = report.findings
    assert finding.method is None
    assert "change from one Order to the next" in finding.note


def test_count_per_row_is_advised_as_annotate_count(pizzeria):
    with detect() as report:
        customers = Customer.objects.all()
        for customer in customers:
            customer.order_set.count()
    [finding] = report.findings
    assert finding.method == "annotate"
    assert finding.relation == "shop.Customer.order_set"
    assert finding.snippets["fix"] == '.annotate(order_count=Count("order"))'
    assert finding.snippets["access"] == "customer.order_count"
    assert finding.snippets["line"] == 'customers = Customer.objects.all().annotate(order_count=Count("order"))'

    def fixed(n):
        qs = Customer.objects.order_by("pk")[:n].annotate(order_count=Count("order"))
        return _queries(lambda: [c.order_count for c in qs])

    assert fixed(3) == fixed(10) == 1


def test_filtered_count_on_m2m_keeps_the_filter(pizzeria):
    with detect() as report:
        for topping in Topping.objects.all():
            topping.pizzas.filter(vegetarian=True).count()
    [finding] = report.by_kind("n_plus_one")
    assert finding.snippets["fix"] == '.annotate(pizzas_count=Count("pizzas", filter=Q(pizzas__vegetarian=True)))'


def test_plain_m2m_count_through_the_through_table_is_attributed(pizzeria):
    with detect() as report:
        for pizza in Pizza.objects.all():
            pizza.toppings.count()
    [finding] = report.findings
    assert finding.relation == "shop.Pizza.toppings"
    assert finding.method == "annotate"
    assert finding.snippets["fix"] == '.annotate(toppings_count=Count("toppings"))'


def test_exists_per_row_is_advised_as_annotate_exists(pizzeria):
    with detect() as report:
        for customer in Customer.objects.all():
            customer.order_set.filter(status="new").exists()
    [finding] = report.findings
    assert finding.method == "annotate"
    assert finding.snippets["fix"] == (
        ".annotate(has_order=Exists(Order.objects.filter(customer=OuterRef(\"pk\"), status=\"new\")))"
    )

    def fixed(n):
        qs = Customer.objects.order_by("pk")[:n].annotate(
            has_order=Exists(Order.objects.filter(customer=OuterRef("pk"), status="new")))
        return _queries(lambda: [c.has_order for c in qs])

    assert fixed(3) == fixed(10) == 1


def test_admin_changelist_advises_list_select_related_and_get_queryset(client, pizzeria, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    _, request_id = get_with_toolbar(client, "/admin/shop/order/")
    findings = {f["relation"]: f for f in stored_stats(request_id)["report"]["findings"] if f["kind"] == "n_plus_one"}
    customer = findings["shop.Order.customer"]
    assert customer["method"] == "list_select_related"
    assert customer["snippets"]["fix"] == 'list_select_related = ["customer"]'
    assert customer["origin"]["filename"] == "demo/shop/admin.py"
    assert customer["origin"]["code"].startswith("class OrderAdmin(")
    assert customer["callsite"]["function"] == "customer_name"
    pizzas = findings["shop.Order.pizzas"]
    assert pizzas["method"] == "annotate"
    assert pizzas["snippets"]["fix"] == (
        'def get_queryset(self, request):\n    return super().get_queryset(request)'
        '.annotate(pizzas_count=Count("pizzas"))'
    )
    assert pizzas["snippets"]["access"] == "return obj.pizzas_count"


def test_hand_written_loop_names_the_mirrored_relation(pizzeria):
    with detect() as report:
        orders = Order.objects.all()
        for order in orders:
            list(Pizza.objects.filter(order_id=order.id))
    [finding] = report.findings
    assert finding.relation == "shop.Order.pizzas"
    assert finding.method == "prefetch_related"
    assert finding.snippets["fix"] == '.prefetch_related("pizzas")'
    assert finding.snippets["bulk"] == "Pizza.objects.filter(order__in=orders)"
    assert finding.origin["code"] == "orders = Order.objects.all()"
    # The prefetch serves the loop only once the loop reads the relation: that line is part of
    # the fix, and the proof covers both (a prefetch on the origin line alone changes nothing).
    assert finding.snippets["access"] == "list(order.pizzas.all())"
    assert finding.proof["status"] == "verified"


def test_hand_written_loop_with_more_filters_gets_no_line_and_says_why(pizzeria):
    with detect() as report:
        for order in Order.objects.all():
            list(Pizza.objects.filter(order_id=order.id).order_by("-price"))
    [finding] = report.by_kind("n_plus_one")
    assert finding.relation == "shop.Order.pizzas"
    assert "fix" not in finding.snippets and "line" not in finding.snippets
    assert "runs its own query" in finding.note


def test_hand_written_get_per_row_names_the_forward_relation(pizzeria):
    with detect() as report:
        for order in Order.objects.all():
            Customer.objects.get(pk=order.customer_id)
    [finding] = report.by_kind("n_plus_one")
    assert finding.relation == "shop.Order.customer"
    assert finding.method == "select_related"
    assert finding.snippets["bulk"] == "Customer.objects.in_bulk([...])"
    assert finding.snippets["access"] == "order.customer"
    assert finding.proof["status"] == "verified"


def test_duplicates_list_every_call_site_and_advise_reuse(pizzeria):
    with detect() as report:
        Topping.objects.filter(vegetarian=True).count()
        Topping.objects.filter(vegetarian=True).count()
        Topping.objects.filter(vegetarian=True).count()
    [finding] = report.findings
    assert finding.kind == "duplicate"
    assert len(finding.callsites) == 3
    assert "reuse" in finding.snippets["fix"]


def test_unused_prefetch_and_select_related_are_reported_with_the_removal(pizzeria):
    with detect() as report:
        orders = Order.objects.prefetch_related("pizzas__toppings").select_related("customer")
        for order in orders:
            order.status
            list(order.pizzas.all())
    by_lookup = {f.lookup: f for f in report.by_kind("unused_prefetch")}
    assert set(by_lookup) == {"pizzas__toppings", "customer"}
    inner = by_lookup["pizzas__toppings"]
    assert inner.method == "prefetch_related"
    assert inner.count == 1
    assert inner.snippets["fix"] == 'orders = Order.objects.prefetch_related("pizzas").select_related("customer")'
    customer = by_lookup["customer"]
    assert customer.snippets["fix"] == 'orders = Order.objects.prefetch_related("pizzas__toppings")'
    assert customer.origin["code"].startswith("orders = Order.objects")


def test_no_unused_prefetch_false_positives(client, pizzeria):
    def run():
        # Empty prefetch results still count as used when read.
        for customer in Customer.objects.filter(name="nobody").prefetch_related("review_set"):
            list(customer.review_set.all())
        for customer in Customer.objects.order_by("pk")[:1].prefetch_related("order_set"):
            customer.order_set.all()
        # .values() querysets cannot prefetch: nothing to report.
        list(Order.objects.select_related("customer").values("id"))
        # The inner level read means the outer level was read too.
        for order in Order.objects.prefetch_related("pizzas__toppings"):
            for pizza in order.pizzas.all():
                list(pizza.toppings.all())
        # Prefetch(to_attr=...) lists are plain attributes.
        for order in Order.objects.prefetch_related(Prefetch("pizzas", to_attr="all_pizzas")):
            order.all_pizzas

    with detect() as report:
        run()
    assert report.by_kind("unused_prefetch") == []


def test_prefetch_used_only_in_a_template_is_not_unused(client, pizzeria):
    _, request_id = get_with_toolbar(client, "/template-loop/fixed/")
    findings = stored_stats(request_id)["report"]["findings"]
    assert [f for f in findings if f["kind"] == "unused_prefetch"] == []


def test_a_comprehension_gets_one_line_with_both_edits(pizzeria):
    """Origin and loop on one line: the rewritten origin and the rewritten read are one line."""
    with detect() as report:
        result = [len(o.pizzas.filter(vegetarian=True)) for o in Order.objects.order_by("pk")]
    [finding] = report.by_kind("n_plus_one")
    line = finding.snippets["line"]
    assert "access" not in finding.snippets
    assert line == ('result = [len(o.vegetarian_pizzas) for o in Order.objects.order_by("pk").prefetch_related('
                    'Prefetch("pizzas", queryset=Pizza.objects.filter(vegetarian=True), to_attr="vegetarian_pizzas"))]')
    namespace = {"Order": Order, "Pizza": Pizza, "Prefetch": Prefetch}
    with CaptureQueriesContext(connection) as captured:
        exec(line, namespace)  # noqa: S102 (the product's own line, pasted)
    assert namespace["result"] == result and len(captured) == 2


def test_a_template_last_is_never_rewritten_to_a_list(pizzeria):
    """``{{ o.pizzas.last.name }}``: a to_attr list has no ``.last`` in a template (it would
    render nothing), and a plain prefetch does not serve ``last()``: no fix, and it says so."""
    from django.template import Context, Template

    template = Template("{% for o in orders %}{{ o.pizzas.last.name }},{% endfor %}")
    with detect() as report:
        template.render(Context({"orders": Order.objects.order_by("pk")}))
    [finding] = report.by_kind("n_plus_one")
    assert all("to_attr" not in text for text in finding.snippets.values())
    assert "line" not in finding.snippets and finding.proof["status"] == "failed"


def test_get_loop_over_values_keeps_its_in_bulk_fix_after_instances_were_loaded(pizzeria):
    """Orders loaded earlier make the SQL fallback see a forward FK; the loop still reads ids,
    so the fix that holds is in_bulk, proven on this request's values."""
    with detect() as report:
        list(Order.objects.all())
        for cid in Order.objects.values_list("customer_id", flat=True):
            Customer.objects.get(pk=cid).name
    [finding] = report.by_kind("n_plus_one")
    assert finding.relation == "shop.Order.customer"
    assert finding.method == "in_bulk" and finding.proof["status"] == "verified"
    assert finding.snippets["access"] == "customer_by_pk[cid].name"
