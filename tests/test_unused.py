"""Scenario tests for unused eager loads (unused.py): which ``prefetch_related`` /
``select_related`` levels nothing read, and what a user reads about each."""

from __future__ import annotations

import pytest

from ddt_prefetch_panel import detect
from shop.models import Customer, Order

pytestmark = pytest.mark.django_db


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


def test_an_unread_lookup_on_the_line_of_a_proven_fix_joins_that_fix(pizzeria):
    """One truth per line: the N+1 fix keeps the line's select_related, the unused finding says
    drop it; both become one line, proven without the lookup on every path the request read."""
    with detect() as report:
        orders = Order.objects.select_related("customer").order_by("pk")
        for order in orders:
            list(order.pizzas.all())
    n_plus_one, unused = (next(f for f in report.findings if f.kind == kind) for kind in ("n_plus_one", "unused_prefetch"))
    [fix] = report.fixes
    line = 'orders = Order.objects.all().order_by("pk").prefetch_related("pizzas")'
    assert fix["line"] == n_plus_one.snippets["line"] == unused.snippets["line"] == line
    assert n_plus_one.fix_id == unused.fix_id == 0 and sorted(fix["findings"]) == [0, 1]
    assert unused.proof["status"] == "verified" and "Without 'customer'" in fix["proof"]["detail"]
    assert "Merged into this queryset's fix" in unused.note
    assert '+        orders = Order.objects.all().order_by("pk").prefetch_related("pizzas")' in n_plus_one.snippets["patch"]
    assert n_plus_one.snippets["patch"] == unused.snippets["patch"]


def test_an_unread_lookup_that_cannot_be_dropped_with_the_fix_shows_no_second_line(pizzeria):
    from django.db.models import Prefetch

    from shop.models import Review

    with detect() as report:
        customers = Customer.objects.prefetch_related(Prefetch("review_set", queryset=Review.objects.all())).order_by("pk")
        for customer in customers:
            list(customer.order_set.all())
    [n_plus_one] = [f for f in report.findings if f.kind == "n_plus_one"]
    [unused] = [f for f in report.findings if f.kind == "unused_prefetch"]
    assert n_plus_one.proof["status"] == "verified"
    assert unused.snippets == {} and unused.fix_id is None
    assert "also carries a proven fix (.prefetch_related(\"order_set\"))" in unused.note


def test_dropping_an_unread_level_is_replayed_with_every_read_of_the_rows(pizzeria):
    """ "Remove this" is proven like a fix: the root re-run without the unread level, walking what
    the page did read from its rows (here the pizzas, in a second loop), runs fewer statements."""
    with detect() as report:
        orders = list(Order.objects.prefetch_related("pizzas__toppings").order_by("pk"))
        names = [pizza.name for order in orders for pizza in order.pizzas.all()]
    assert names
    [unused] = _unused(report)
    assert unused.lookup == "pizzas__toppings" and unused.snippets["line"] == (
        'orders = list(Order.objects.prefetch_related("pizzas").order_by("pk"))')
    proof = unused.proof
    assert proof["status"] == "verified" and proof["after"] == proof["before"] - 1 == 2  # orders, pizzas
    assert "every path this request read" in proof["detail"]


def test_an_unread_lookup_beside_a_prefetch_object_is_replayed_with_that_object(pizzeria):
    from django.db.models import Prefetch

    from shop.models import Review

    with detect() as report:
        customers = list(Customer.objects.prefetch_related("order_set", Prefetch("review_set", queryset=Review.objects.all())))
    assert customers
    by_lookup = {f.lookup: f for f in _unused(report)}
    assert sorted(by_lookup) == ["order_set", "review_set"]
    for unused in by_lookup.values():
        assert unused.proof["status"] == "verified" and unused.proof["after"] == unused.proof["before"] - 1
    assert by_lookup["order_set"].snippets["line"] == (
        'customers = list(Customer.objects.prefetch_related(Prefetch("review_set", queryset=Review.objects.all())))')
