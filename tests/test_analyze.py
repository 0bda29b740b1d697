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
    assert 'in_bulk(values, field_name="email")' in finding.snippets["fix"]
    assert finding.snippets["access"] == "customer_by_email[email]"
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


def test_two_paths_to_one_model_on_one_line_get_one_fix_covering_both():
    from tests.proofs.models import Circuit, Site, Termination

    def end(name: str) -> Termination:
        return Termination.objects.create(site=Site.objects.create(name=name))

    for i in range(4):
        Circuit.objects.create(cid=f"c{i}", term_a=end(f"a{i}"), term_z=end(f"z{i}"))
    with detect() as report:
        ends = [f"{c.term_a.site.name}-{c.term_z.site.name}" for c in Circuit.objects.order_by("pk")]
    assert ends[0] == "a0-z0"
    lookups = sorted(f.lookup for f in _n_plus_ones(report))
    assert lookups == ["term_a__site", "term_z__site"]
    [fix] = report.fixes
    assert fix["fix"] == '.select_related("term_a__site", "term_z__site")'
    assert fix["proof"]["status"] == "verified"


# --------------------------------------------------------------------------- item 8: unused prefetch


def _unused(report) -> list:
    return [f for f in report.findings if f.kind == "unused_prefetch"]


def test_nested_unused_prefetch_names_every_level_and_leaves_a_queryset(pizzeria):
    with detect() as report:
        orders = list(Order.objects.prefetch_related("pizzas__toppings"))
    assert orders
    by_lookup = {f.lookup: f for f in _unused(report)}
    assert sorted(by_lookup) == ["pizzas", "pizzas__toppings"]
    assert by_lookup["pizzas"].relation == "shop.Order.pizzas"
    assert by_lookup["pizzas__toppings"].relation == "shop.Pizza.toppings"
    assert by_lookup["pizzas"].count == 1 and by_lookup["pizzas__toppings"].count == 1  # each level's own query
    # The fix on a manager keeps a queryset: Order.objects.all(), never the bare manager.
    assert by_lookup["pizzas"].snippets["line"] == "orders = list(Order.objects.all())"
    assert "none was read" in by_lookup["pizzas"].note


def test_unused_level_under_an_empty_level_is_never_flagged(pizzeria):
    customer = Customer.objects.create(name="no pizzas", email="none@example.com", city="Nowhere")
    Order.objects.create(customer=customer, created="2025-01-01T00:00:00Z")
    with detect() as report:
        list(Order.objects.filter(customer=customer).prefetch_related("pizzas__toppings"))
    [finding] = _unused(report)
    assert finding.lookup == "pizzas"
    assert "not used on this page" in finding.note


def test_reads_of_the_prefetch_cache_by_third_party_code_count_as_use():
    from tests.frameworks.blog.models import BlogPage

    for i in range(3):
        BlogPage.objects.create(title=f"page {i}").tags.add("a", "b")
    with detect(KINDS=["unused_prefetch"]) as report:
        pages = list(BlogPage.objects.prefetch_related("tags"))
        [list(page._prefetched_objects_cache["tags"]) for page in pages]  # what taggit's manager reads
        [page.tags.all()[0] for page in pages]
    assert _unused(report) == []
    with detect(KINDS=["unused_prefetch"]) as report:
        pages = list(BlogPage.objects.prefetch_related("tags"))
    [finding] = _unused(report)
    assert finding.relation == "blog.BlogPage.tags"


def test_unused_prefetch_built_many_times_at_one_place_is_one_finding(pizzeria):
    with detect() as report:
        loaded = [list(Order.objects.filter(customer=customer).prefetch_related("pizzas"))
                  for customer in Customer.objects.filter(order__isnull=False).distinct()[:3]]
    [finding] = _unused(report)
    assert finding.lookup == "pizzas" and finding.count == 3
    assert "Built 3 times on this page" in finding.note
    assert f"{sum(len(orders) for orders in loaded)} rows in all" in finding.note


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


def test_the_same_select_around_a_write_to_its_table_is_no_duplicate():
    from tests.peers.social.models import User

    hub, *others = [User.objects.create(username=n) for n in ("hub", "a", "b", "c")]
    with detect(KINDS=["duplicate"]) as report:
        for chosen in (others[:1], others[1:]):
            list(User.objects.filter(followers=hub))
            hub.following.set(chosen)
    assert report.findings == []
    with detect(KINDS=["duplicate"]) as report:  # without the write in between it is one
        for _ in range(2):
            list(User.objects.filter(followers=hub))
    [finding] = report.findings
    assert finding.count == 2


# --------------------------------------------------------------------------- item 7: rows sharing a parent


def test_rows_sharing_one_parent_are_an_n_plus_one_not_a_duplicate(pizzeria):
    customer = Customer.objects.create(name="regular", email="regular@example.com", city="Here")
    for _ in range(4):
        Order.objects.create(customer=customer, created="2025-01-01T00:00:00Z")
    with detect() as report:
        for order in Order.objects.filter(customer=customer):
            order.customer.name
    [finding] = [f for f in report.findings if f.kind in ("n_plus_one", "duplicate")]
    assert (finding.kind, finding.relation, finding.method) == ("n_plus_one", "shop.Order.customer", "select_related")
    assert finding.proof["status"] == "verified"


# --------------------------------------------------------------------------- item 9: counts and noise


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


import strawberry  # noqa: E402 (the optimizer scenario's types must live at module level)
import strawberry_django  # noqa: E402
from strawberry import auto  # noqa: E402
from strawberry_django.optimizer import DjangoOptimizerExtension  # noqa: E402

from tests.frameworks.catalog.models import Author, Book, Publisher  # noqa: E402


@strawberry_django.type(Book, name="OptimizedBook")
class OptimizedBook:
    title: auto


@strawberry_django.type(Author, name="OptimizedAuthor")
class OptimizedAuthor:
    name: auto
    books: list[OptimizedBook]


@strawberry_django.type(Publisher, name="OptimizedPublisher")
class OptimizedPublisher:
    name: auto
    authors: list[OptimizedAuthor]


@strawberry.type(name="Query")
class OptimizedQuery:
    publishers: list[OptimizedPublisher] = strawberry_django.field()


optimized_schema = strawberry.Schema(query=OptimizedQuery, extensions=[DjangoOptimizerExtension])


def test_prefetches_a_graphql_optimizer_adds_and_reads_are_never_flagged(db):
    from tests.frameworks.catalog.seed import seed

    seed()
    for query in ("{ publishers { name authors { name books { title } } } }", "{ publishers { name } }"):
        with detect(KINDS=["unused_prefetch", "n_plus_one"]) as report:
            result = optimized_schema.execute_sync(query)
        assert not result.errors and result.data["publishers"]
        assert report.findings == [], query  # the optimizer's reads go to the prefetch cache itself


def test_prefetch_added_by_a_shared_manager_gets_conditional_advice_not_removal(pizzeria):
    from django.db import models

    class PrefetchingManager(models.Manager):
        def get_queryset(self):
            return super().get_queryset().prefetch_related("pizzas")

    manager = PrefetchingManager()
    manager.model = Order
    with detect(KINDS=["unused_prefetch"]) as report:
        orders = list(manager.filter(status="new"))
    assert orders
    [finding] = _unused(report)
    assert finding.lookup == "pizzas"
    assert "remove" not in finding.snippets["fix"] and "line" not in finding.snippets
    assert "def with_pizzas(self)" in finding.snippets["conditional"]
    assert "make it conditional rather than removing it" in finding.note


def test_lookups_sharing_an_unread_level_name_it_once(pizzeria):
    with detect(KINDS=["unused_prefetch"]) as report:
        orders = list(Order.objects.prefetch_related("pizzas__toppings", "pizzas__category"))
    assert orders
    lookups = sorted(f.lookup for f in _unused(report))
    assert lookups == ["pizzas", "pizzas__category", "pizzas__toppings"]
    assert not any("Built" in f.note for f in _unused(report))


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
