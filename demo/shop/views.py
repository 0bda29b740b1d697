"""Scenario pages, each as a pair of views.

The ``*_bad`` view issues its queries on purpose; the ``*_fixed`` view renders
the same page with the fix applied. Where both pages read the data the same
way, the loop lives in a shared helper and only the queryset differs, as it
would in a real fix.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.contrib.contenttypes.prefetch import GenericPrefetch
from django.db.models import Count, Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.generic import ListView

from .models import Category, Customer, LoyaltyCard, Order, Pizza, PizzaPromotion, Promotion, Review, Topping
from .scenarios import SCENARIOS, SCENARIOS_BY_SLUG
from .serializers import OrderSerializer
from .seed import STATUSES

Row = Sequence[object]


@dataclass(frozen=True)
class Table:
    title: str
    columns: Sequence[str]
    rows: list[Row]


def _joined(values: Iterable[object]) -> str:
    # Sorted so a page doesn't depend on the order rows come back from a
    # prefetch versus one query per row.
    return ", ".join(sorted(str(v) for v in values)) or "—"


def _when(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def _render(
    request: HttpRequest,
    slug: str,
    variant: str,
    tables: Sequence[Table] = (),
    template: str = "shop/scenario.html",
    **context: object,
) -> HttpResponse:
    return render(
        request,
        template,
        {"scenario": SCENARIOS_BY_SLUG[slug], "variant": variant, "tables": tables, **context},
    )


def index(request: HttpRequest) -> HttpResponse:
    return render(request, "shop/index.html", {"scenarios": SCENARIOS})


# forward-fk


def _order_customers(orders: QuerySet[Order]) -> Table:
    rows: list[Row] = []
    for order in orders:
        rows.append((order.pk, order.customer.name, order.status))
    return Table("Orders", ("order", "customer", "status"), rows)


def forward_fk_bad(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.order_by("pk")
    return _render(request, "forward-fk", "bad", [_order_customers(orders)])


def forward_fk_fixed(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.select_related("customer").order_by("pk")
    return _render(request, "forward-fk", "fixed", [_order_customers(orders)])


# reverse-fk


def _order_pizzas(orders: QuerySet[Order]) -> Table:
    rows: list[Row] = []
    for order in orders:
        pizzas = order.pizzas.all()
        rows.append((order.pk, len(pizzas), _joined(p.name for p in pizzas)))
    return Table("Orders and their pizzas", ("order", "pizzas", "names"), rows)


def reverse_fk_bad(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.order_by("pk")
    return _render(request, "reverse-fk", "bad", [_order_pizzas(orders)])


def reverse_fk_fixed(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.prefetch_related("pizzas").order_by("pk")
    return _render(request, "reverse-fk", "fixed", [_order_pizzas(orders)])


# reverse-fk-default-name


def _customer_reviews(customers: QuerySet[Customer]) -> Table:
    rows: list[Row] = []
    for customer in customers:
        reviews = customer.review_set.all()
        rows.append((customer.name, len(reviews), _joined(r.rating for r in reviews)))
    return Table("Customers and their reviews", ("customer", "reviews", "ratings"), rows)


def reverse_fk_default_name_bad(request: HttpRequest) -> HttpResponse:
    customers = Customer.objects.order_by("pk")
    return _render(request, "reverse-fk-default-name", "bad", [_customer_reviews(customers)])


def reverse_fk_default_name_fixed(request: HttpRequest) -> HttpResponse:
    customers = Customer.objects.prefetch_related("review_set").order_by("pk")
    return _render(request, "reverse-fk-default-name", "fixed", [_customer_reviews(customers)])


# m2m


def _pizza_toppings(pizzas: QuerySet[Pizza]) -> Table:
    rows: list[Row] = []
    for pizza in pizzas:
        rows.append((pizza.pk, pizza.name, _joined(t.name for t in pizza.toppings.all())))
    return Table("Pizzas and their toppings", ("pizza", "name", "toppings"), rows)


def m2m_bad(request: HttpRequest) -> HttpResponse:
    pizzas = Pizza.objects.order_by("pk")
    return _render(request, "m2m", "bad", [_pizza_toppings(pizzas)])


def m2m_fixed(request: HttpRequest) -> HttpResponse:
    pizzas = Pizza.objects.prefetch_related("toppings").order_by("pk")
    return _render(request, "m2m", "fixed", [_pizza_toppings(pizzas)])


# m2m-reverse


def _topping_fans(toppings: QuerySet[Topping]) -> Table:
    rows: list[Row] = []
    for topping in toppings:
        pizzas = topping.pizzas.all()
        fans = topping.customer_set.all()
        rows.append((topping.name, len(pizzas), _joined({p.name for p in pizzas}), _joined(c.name for c in fans)))
    return Table("Toppings", ("topping", "pizzas", "on", "favorite of"), rows)


def m2m_reverse_bad(request: HttpRequest) -> HttpResponse:
    toppings = Topping.objects.order_by("pk")
    return _render(request, "m2m-reverse", "bad", [_topping_fans(toppings)])


def m2m_reverse_fixed(request: HttpRequest) -> HttpResponse:
    toppings = Topping.objects.prefetch_related("pizzas", "customer_set").order_by("pk")
    return _render(request, "m2m-reverse", "fixed", [_topping_fans(toppings)])


# m2m-self


def _topping_pairs(toppings: QuerySet[Topping]) -> Table:
    rows: list[Row] = []
    for topping in toppings:
        rows.append((topping.name, _joined(t.name for t in topping.pairs_with.all())))
    return Table("Toppings and what they pair with", ("topping", "pairs with"), rows)


def m2m_self_bad(request: HttpRequest) -> HttpResponse:
    toppings = Topping.objects.order_by("pk")
    return _render(request, "m2m-self", "bad", [_topping_pairs(toppings)])


def m2m_self_fixed(request: HttpRequest) -> HttpResponse:
    toppings = Topping.objects.prefetch_related("pairs_with").order_by("pk")
    return _render(request, "m2m-self", "fixed", [_topping_pairs(toppings)])


# o2o


def _customer_cards(customers: QuerySet[Customer]) -> Table:
    rows: list[Row] = []
    for customer in customers:
        # A missing reverse one-to-one raises RelatedObjectDoesNotExist, which
        # hasattr() turns into False.
        points = customer.loyalty_card.points if hasattr(customer, "loyalty_card") else "no card"
        rows.append((customer.name, points))
    return Table("Customers and their loyalty cards", ("customer", "points"), rows)


def _card_owners(cards: QuerySet[LoyaltyCard]) -> Table:
    rows: list[Row] = []
    for card in cards:
        rows.append((card.pk, card.customer.name, card.points))
    return Table("Loyalty cards and their owners", ("card", "customer", "points"), rows)


def o2o_bad(request: HttpRequest) -> HttpResponse:
    customers = Customer.objects.order_by("pk")
    cards = LoyaltyCard.objects.order_by("pk")
    tables = [_customer_cards(customers), _card_owners(cards)]
    return _render(request, "o2o", "bad", tables)


def o2o_fixed(request: HttpRequest) -> HttpResponse:
    customers = Customer.objects.select_related("loyalty_card").order_by("pk")
    cards = LoyaltyCard.objects.select_related("customer").order_by("pk")
    tables = [_customer_cards(customers), _card_owners(cards)]
    return _render(request, "o2o", "fixed", tables)


# generic


def _review_targets(reviews: QuerySet[Review]) -> Table:
    rows: list[Row] = []
    for review in reviews:
        target = review.target
        rows.append((review.pk, review.rating, target.name if target is not None else "— (about the shop)"))
    return Table("Reviews and what they are about", ("review", "rating", "target"), rows)


def _pizza_reviews(pizzas: QuerySet[Pizza]) -> Table:
    rows: list[Row] = []
    for pizza in pizzas:
        rows.append((pizza.pk, pizza.name, _joined(r.rating for r in pizza.reviews.all())))
    return Table("Pizzas and their reviews", ("pizza", "name", "ratings"), rows)


def generic_bad(request: HttpRequest) -> HttpResponse:
    reviews = Review.objects.order_by("pk")
    pizzas = Pizza.objects.order_by("pk")
    tables = [_review_targets(reviews), _pizza_reviews(pizzas)]
    return _render(request, "generic", "bad", tables)


def generic_fixed(request: HttpRequest) -> HttpResponse:
    reviews = Review.objects.prefetch_related("target").order_by("pk")
    pizzas = Pizza.objects.prefetch_related("reviews").order_by("pk")
    tables = [_review_targets(reviews), _pizza_reviews(pizzas)]
    return _render(request, "generic", "fixed", tables)


# generic-path: a generic foreign key in the middle of the path


def _review_targets_per_customer(customers: QuerySet[Customer]) -> Table:
    rows: list[Row] = []
    for customer in customers:
        about = []
        for review in customer.review_set.all():
            target = review.target  # a Pizza, or None for a review of the shop
            about.append(f"{target.name} ({target.category.name})" if target is not None else "the shop")
        rows.append((customer.name, _joined(about)))
    return Table("Customers' reviews and what they are about", ("customer", "reviewed"), rows)


def generic_path_bad(request: HttpRequest) -> HttpResponse:
    customers = Customer.objects.order_by("pk")
    return _render(request, "generic-path", "bad", [_review_targets_per_customer(customers)])


def generic_path_fixed(request: HttpRequest) -> HttpResponse:
    customers = Customer.objects.order_by("pk").prefetch_related(
        GenericPrefetch("review_set__target", [Pizza.objects.select_related("category")]))
    return _render(request, "generic-path", "fixed", [_review_targets_per_customer(customers)])


# downcast: each row loaded again as its multi-table child


def _promotions(promotions: Iterable[Promotion]) -> Table:
    rows: list[Row] = []
    for promotion in promotions:
        promotion = promotion.specific()  # one query per row: the row loaded again as its kind
        rows.append((promotion.title, promotion.pizza.name, _joined(c.name for c in promotion.categories.all())))
    return Table("Active promotions", ("promotion", "pizza", "categories"), rows)


def downcast_bad(request: HttpRequest) -> HttpResponse:
    promotions = Promotion.objects.filter(active=True).order_by("pk")
    return _render(request, "downcast", "bad", [_promotions(promotions)])


def downcast_fixed(request: HttpRequest) -> HttpResponse:
    promotions = PizzaPromotion.objects.filter(active=True).order_by("pk").select_related("pizza").prefetch_related(
        "categories")
    return _render(request, "downcast", "fixed", [_promotions(promotions)])


# nested


def _order_pizza_categories(orders: QuerySet[Order]) -> Table:
    rows: list[Row] = []
    for order in orders:
        rows.append((order.pk, _joined(f"{pizza.name} ({pizza.category.name})" for pizza in order.pizzas.all())))
    return Table("Orders, pizzas and categories", ("order", "pizzas"), rows)


def nested_bad(request: HttpRequest) -> HttpResponse:
    # Prefetching the first level only: the category is still fetched per pizza.
    orders = Order.objects.prefetch_related("pizzas").order_by("pk")
    return _render(request, "nested", "bad", [_order_pizza_categories(orders)])


def nested_fixed(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.prefetch_related("pizzas__category").order_by("pk")
    return _render(request, "nested", "fixed", [_order_pizza_categories(orders)])


# template-loop: the queries happen while the template renders, not in the view.


def template_loop_bad(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.filter(status="delivered").order_by("pk")
    return _render(request, "template-loop", "bad", template="shop/template_loop.html", orders=orders)


def template_loop_fixed(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.filter(status="delivered").select_related("customer").order_by("pk")
    return _render(request, "template-loop", "fixed", template="shop/template_loop.html", orders=orders)


# deferred


def _order_notes(orders: QuerySet[Order]) -> Table:
    rows: list[Row] = []
    for order in orders:
        rows.append((order.pk, order.status, order.notes or "—"))
    return Table("Orders and their notes", ("order", "status", "notes"), rows)


def deferred_bad(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.only("id", "status").order_by("pk")
    return _render(request, "deferred", "bad", [_order_notes(orders)])


def deferred_fixed(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.only("id", "status", "notes").order_by("pk")
    return _render(request, "deferred", "fixed", [_order_notes(orders)])


# filtered-prefetch


def _vegetarian_table(rows: list[Row]) -> Table:
    return Table("Vegetarian pizzas per order", ("order", "vegetarian pizzas"), rows)


def filtered_prefetch_bad(request: HttpRequest) -> HttpResponse:
    rows: list[Row] = []
    for order in Order.objects.order_by("pk"):
        rows.append((order.pk, _joined(p.name for p in order.pizzas.filter(vegetarian=True))))
    return _render(request, "filtered-prefetch", "bad", [_vegetarian_table(rows)])


def filtered_prefetch_fixed(request: HttpRequest) -> HttpResponse:
    vegetarian = Prefetch("pizzas", queryset=Pizza.objects.filter(vegetarian=True), to_attr="vegetarian_pizzas")
    rows: list[Row] = []
    for order in Order.objects.prefetch_related(vegetarian).order_by("pk"):
        rows.append((order.pk, _joined(p.name for p in order.vegetarian_pizzas)))
    return _render(request, "filtered-prefetch", "fixed", [_vegetarian_table(rows)])


# count-per-row


def _order_count_table(rows: list[Row]) -> Table:
    return Table("Orders per customer", ("customer", "orders"), rows)


def count_per_row_bad(request: HttpRequest) -> HttpResponse:
    rows: list[Row] = []
    for customer in Customer.objects.order_by("pk"):
        rows.append((customer.name, customer.order_set.count()))
    return _render(request, "count-per-row", "bad", [_order_count_table(rows)])


def count_per_row_fixed(request: HttpRequest) -> HttpResponse:
    rows: list[Row] = []
    for customer in Customer.objects.annotate(order_count=Count("order")).order_by("pk"):
        rows.append((customer.name, customer.order_count))
    return _render(request, "count-per-row", "fixed", [_order_count_table(rows)])


# hand-written


def _pizzas_per_order_table(rows: list[Row]) -> Table:
    return Table("Pizzas per order", ("order", "pizzas"), rows)


def hand_written_bad(request: HttpRequest) -> HttpResponse:
    rows: list[Row] = []
    for order in Order.objects.order_by("pk"):
        rows.append((order.pk, _joined(p.name for p in Pizza.objects.filter(order_id=order.id))))
    return _render(request, "hand-written", "bad", [_pizzas_per_order_table(rows)])


def hand_written_fixed(request: HttpRequest) -> HttpResponse:
    rows: list[Row] = []
    for order in Order.objects.prefetch_related("pizzas").order_by("pk"):
        rows.append((order.pk, _joined(p.name for p in order.pizzas.all())))
    return _render(request, "hand-written", "fixed", [_pizzas_per_order_table(rows)])


# duplicates

CATEGORY_NAME = "Classic"


def _category_table(category: Category, sold: int, menu: str) -> Table:
    return Table(
        f"{category.name} category",
        ("", "value"),
        [("category", category.name), ("pizzas sold", sold), ("on the menu", menu)],
    )


def _status_row(status: str, counts: dict[str, int], total: int) -> Row:
    n = counts.get(status, 0)
    return (status, n, f"{100 * n / total:.0f}%" if total else "—")


def _status_table(rows: list[Row]) -> Table:
    return Table("Orders by status", ("status", "orders", "share"), rows)


def _status_counts() -> dict[str, int]:
    return dict(Order.objects.values_list("status").annotate(n=Count("pk")).order_by())


def _classic_pizzas_sold() -> int:
    category = Category.objects.get(name=CATEGORY_NAME)
    return Pizza.objects.filter(category=category).count()


def _classic_menu() -> str:
    category = Category.objects.get(name=CATEGORY_NAME)
    return _joined(set(Pizza.objects.filter(category=category).values_list("name", flat=True)))


def duplicates_bad(request: HttpRequest) -> HttpResponse:
    # The same category lookup runs here and inside both helpers.
    category = Category.objects.get(name=CATEGORY_NAME)
    sold = _classic_pizzas_sold()
    menu = _classic_menu()
    counts = _status_counts()
    rows: list[Row] = []
    for status in STATUSES:
        # Loop-invariant query, run once per status.
        rows.append(_status_row(status, counts, Order.objects.count()))
    return _render(request, "duplicates", "bad", [_category_table(category, sold, menu), _status_table(rows)])


def duplicates_fixed(request: HttpRequest) -> HttpResponse:
    category = Category.objects.get(name=CATEGORY_NAME)
    classic_pizzas = Pizza.objects.filter(category=category)
    sold = classic_pizzas.count()
    menu = _joined(set(classic_pizzas.values_list("name", flat=True)))
    counts = _status_counts()
    total = Order.objects.count()
    rows = [_status_row(status, counts, total) for status in STATUSES]
    return _render(request, "duplicates", "fixed", [_category_table(category, sold, menu), _status_table(rows)])


# unindexed: the fix is an index, so both pages run the same queries.


def _orders_by_status() -> list[Table]:
    tables: list[Table] = []
    for status in STATUSES:
        orders = Order.objects.filter(status=status).order_by("-created")
        rows: list[Row] = [(order.pk, _when(order.created)) for order in orders]
        tables.append(Table(f"Status {status}, newest first", ("order", "created"), rows))
    return tables


def unindexed_bad(request: HttpRequest) -> HttpResponse:
    return _render(request, "unindexed", "bad", _orders_by_status())


def unindexed_fixed(request: HttpRequest) -> HttpResponse:
    return _render(request, "unindexed", "fixed", _orders_by_status())


# unused-prefetch


def _order_statuses(orders: QuerySet[Order]) -> Table:
    rows: list[Row] = []
    for order in orders:
        rows.append((order.pk, order.status))
    return Table("Order statuses", ("order", "status"), rows)


def unused_prefetch_bad(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.prefetch_related("pizzas").select_related("customer").order_by("pk")
    return _render(request, "unused-prefetch", "bad", [_order_statuses(orders)])


def unused_prefetch_fixed(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.order_by("pk")
    return _render(request, "unused-prefetch", "fixed", [_order_statuses(orders)])


# --------------------------------------------------------------------------- AJAX


def api_orders_bad(request: HttpRequest) -> JsonResponse:
    """A JSON endpoint fetched by the index page: its N+1 shows up in the toolbar's history."""
    orders = Order.objects.order_by("pk")
    return JsonResponse({"orders": [{"id": o.pk, "customer": o.customer.name} for o in orders]})


def api_orders_fixed(request: HttpRequest) -> JsonResponse:
    orders = Order.objects.order_by("pk").select_related("customer")
    return JsonResponse({"orders": [{"id": o.pk, "customer": o.customer.name} for o in orders]})


# combined: three relations read from one queryset, one fix (and one proof) for all of them.


def _order_overview(orders: QuerySet[Order]) -> Table:
    rows: list[Row] = []
    for order in orders:
        pizzas = _joined(f"{pizza.name} ({pizza.category.name})" for pizza in order.pizzas.all())
        rows.append((order.pk, order.customer.name, pizzas))
    return Table("Orders, customers, pizzas and categories", ("order", "customer", "pizzas"), rows)


def combined_bad(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.order_by("pk")
    return _render(request, "combined", "bad", [_order_overview(orders)])


def combined_fixed(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.order_by("pk").select_related("customer").prefetch_related("pizzas__category")
    return _render(request, "combined", "fixed", [_order_overview(orders)])


# drf: Django REST framework loops; the serializer fields read the relations


def _api_page(request: HttpRequest, variant: str, orders: QuerySet[Order]) -> HttpResponse:
    payload = json.dumps(OrderSerializer(orders, many=True).data, indent=2, default=str)
    return _render(request, "drf", variant, template="shop/api.html", payload=payload)


def drf_bad(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.order_by("pk")
    return _api_page(request, "bad", orders)


def drf_fixed(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.select_related("customer").prefetch_related("pizzas").order_by("pk")
    return _api_page(request, "fixed", orders)


# jinja2: the loop is in a Jinja2 template


def _jinja_page(request: HttpRequest, variant: str, orders: QuerySet[Order]) -> HttpResponse:
    context = {"scenario": SCENARIOS_BY_SLUG["jinja2"], "variant": variant, "orders": orders}
    return render(request, "shop/orders.jinja", context)  # found by the Jinja2 backend


def jinja2_bad(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.filter(status="delivered").order_by("pk")
    return _jinja_page(request, "bad", orders)


def jinja2_fixed(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.filter(status="delivered").select_related("customer").order_by("pk")
    return _jinja_page(request, "fixed", orders)


# generic-views: class-based generic views as Django's docs write them


class _ScenarioContextMixin:
    """Adds the scenario and variant the page's base template expects, as _render does."""

    slug = "generic-views"
    variant = ""

    def get_context_data(self, **kwargs: object) -> dict[str, object]:
        context = super().get_context_data(**kwargs)  # type: ignore[misc]
        context.update(scenario=SCENARIOS_BY_SLUG[self.slug], variant=self.variant)
        return context


class OrderListBad(_ScenarioContextMixin, ListView):
    model = Order
    template_name = "shop/order_list.html"
    context_object_name = "orders"
    variant = "bad"


class OrderListFixed(_ScenarioContextMixin, ListView):
    model = Order
    queryset = Order.objects.select_related("customer")
    template_name = "shop/order_list.html"
    context_object_name = "orders"
    variant = "fixed"




# inclusion-tag: the template calls {% order_pizzas order %} for every row


def inclusion_tag_bad(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.order_by("pk")
    return _render(request, "inclusion-tag", "bad", template="shop/inclusion_tag.html", orders=orders)


def inclusion_tag_fixed(request: HttpRequest) -> HttpResponse:
    orders = Order.objects.prefetch_related("pizzas").order_by("pk")
    return _render(request, "inclusion-tag", "fixed", template="shop/inclusion_tag.html", orders=orders)
