"""The catalogue of demo scenarios shown on the index page."""

from dataclasses import dataclass

from django.urls import reverse


@dataclass(frozen=True)
class Scenario:
    slug: str
    title: str
    problem: str
    fix: str
    note: str = ""

    @property
    def bad_url(self) -> str:
        return reverse(f"shop:{self.slug}-bad")

    @property
    def fixed_url(self) -> str:
        return reverse(f"shop:{self.slug}-fixed")


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "forward-fk",
        "Forward foreign key",
        "Each order loads its customer with a query of its own (order.customer.name).",
        'Order.objects.select_related("customer")',
    ),
    Scenario(
        "reverse-fk",
        "Reverse foreign key",
        "Each order queries its pizzas (order.pizzas.all()).",
        'Order.objects.prefetch_related("pizzas")',
    ),
    Scenario(
        "reverse-fk-default-name",
        "Reverse foreign key without related_name",
        "Each customer queries its reviews through the default accessor (customer.review_set.all()).",
        'Customer.objects.prefetch_related("review_set")',
    ),
    Scenario(
        "m2m",
        "Many-to-many",
        "Each pizza queries its toppings (pizza.toppings.all()).",
        'Pizza.objects.prefetch_related("toppings")',
    ),
    Scenario(
        "m2m-reverse",
        "Reverse many-to-many",
        "Each topping queries its pizzas and the customers who love it (topping.pizzas / topping.customer_set).",
        'Topping.objects.prefetch_related("pizzas", "customer_set")',
    ),
    Scenario(
        "m2m-self",
        "Self-referential many-to-many",
        "Each topping queries the toppings it pairs with (topping.pairs_with.all()).",
        'Topping.objects.prefetch_related("pairs_with")',
    ),
    Scenario(
        "o2o",
        "One-to-one, both directions",
        "Each customer queries its loyalty card, and each card queries its customer.",
        'Customer.objects.select_related("loyalty_card")\nLoyaltyCard.objects.select_related("customer")',
    ),
    Scenario(
        "generic",
        "Generic relations",
        "Each review loads its generic target, and each pizza queries its reviews (GenericRelation).",
        'Review.objects.prefetch_related("target")\nPizza.objects.prefetch_related("reviews")',
    ),
    Scenario(
        "generic-path",
        "Generic key mid-path",
        "Each customer's reviews load their target through a generic foreign key, and each reviewed "
        "pizza then loads its category (customer.review_set -> review.target -> pizza.category).",
        'Customer.objects.prefetch_related(GenericPrefetch("review_set__target", '
        '[Pizza.objects.select_related("category")]))',
        note="One queryset per content type the page met, each joining what is read after the generic key.",
    ),
    Scenario(
        "downcast",
        "Downcast per row",
        "Each promotion is loaded again as its kind by its key (promotion.specific(), as a CMS's "
        "page.specific does), then its pizza and categories are read off the child row.",
        'PizzaPromotion.objects.filter(active=True).select_related("pizza").prefetch_related("categories")',
        note="The re-fetch and what is read off the child are one fix: query the child model with the same calls.",
    ),
    Scenario(
        "nested",
        "Nested relations",
        "Orders are prefetched one level, but every pizza then loads its category.",
        'Order.objects.prefetch_related("pizzas__category")',
    ),
    Scenario(
        "combined",
        "Several relations from one queryset",
        "Each order loads its customer, its pizzas and every pizza's category: three loops' worth of queries.",
        'Order.objects.select_related("customer").prefetch_related("pizzas__category")',
        note="The panel gives one fix for the whole queryset, replayed on the request's rows before it is shown.",
    ),
    Scenario(
        "template-loop",
        "Lazy queryset evaluated in the template",
        "The view passes an unevaluated queryset; the template's loop reads order.customer.name.",
        'Order.objects.filter(status="delivered").select_related("customer")',
    ),
    Scenario(
        "deferred",
        "Deferred field",
        "The queryset uses only(), then each row reads a deferred field (order.notes).",
        'Order.objects.only("id", "status", "notes")',
    ),
    Scenario(
        "filtered-prefetch",
        "Filtered related manager",
        "Each order filters its pizzas (order.pizzas.filter(...)), which a plain prefetch can't serve.",
        "Order.objects.prefetch_related(\n"
        '    Prefetch("pizzas", queryset=Pizza.objects.filter(vegetarian=True), to_attr="vegetarian_pizzas")\n'
        ")",
    ),
    Scenario(
        "count-per-row",
        "COUNT per row",
        "Each customer runs a COUNT query (customer.order_set.count()).",
        'Customer.objects.annotate(order_count=Count("order"))',
    ),
    Scenario(
        "hand-written",
        "Hand-written per-row query",
        "Each order runs Pizza.objects.filter(order_id=order.id) instead of using the relation.",
        'Order.objects.prefetch_related("pizzas")  # then order.pizzas.all()',
    ),
    Scenario(
        "duplicates",
        "Duplicate queries",
        "The same lookups run several times: from three different lines, and three times in one loop.",
        "Fetch once, keep the result in a variable, and pass it along.",
    ),
    Scenario(
        "unindexed",
        "Filter and sort on unindexed columns",
        "Orders are filtered by status and sorted by created, neither of which is indexed.",
        "class Meta:  # on Order\n"
        '    indexes = [models.Index(fields=["status", "-created"], name="...")]  # the panel gives the name',
        note=(
            "The fix is a schema change (add the index, then makemigrations and migrate), so this page "
            "runs exactly the same queries as the bad one."
        ),
    ),
    Scenario(
        "unused-prefetch",
        "Unused select_related / prefetch_related",
        "The queryset joins customers and prefetches pizzas, but the page only shows order.status.",
        'Order.objects.all()  # drop select_related("customer") and prefetch_related("pizzas")',
    ),
    Scenario(
        "drf",
        "Django REST framework serializer",
        "DRF loops over the orders; the nested serializer fields read each order's customer and pizzas "
        "(OrderSerializer.customer, OrderSerializer.pizzas).",
        'Order.objects.select_related("customer").prefetch_related("pizzas")',
        note="The call site is the serializer field that read the relation; the fix goes on the view's queryset.",
    ),
    Scenario(
        "jinja2",
        "Jinja2 template loop",
        "A Jinja2 template reads each order's customer ({{ order.customer.name }}).",
        'Order.objects.select_related("customer")',
        note="The call site is the template line, read from Jinja2's debug information.",
    ),
    Scenario(
        "generic-views",
        "Class-based generic view",
        "A ListView declares model = Order; its template reads each order's customer ({{ order.customer.name }}).",
        'queryset = Order.objects.select_related("customer")  # beside model = Order',
        note="The call site is the template line; the fix goes on the view class, beside model = Order.",
    ),
    Scenario(
        "inclusion-tag",
        "Inclusion tag per row",
        "The template calls an inclusion tag for every order, and the tag queries that order's pizzas "
        "(order.pizzas.all()).",
        'Order.objects.prefetch_related("pizzas")',
        note="The call site is the template line that calls the tag; the fix goes on the view's queryset.",
    ),
)

SCENARIOS_BY_SLUG: dict[str, Scenario] = {s.slug: s for s in SCENARIOS}
