from __future__ import annotations

import pytest

from ddt_prefetch_panel.advise import rewrite_line, validate_lookup
from shop.models import Customer, Order, Pizza, Review


@pytest.mark.parametrize(
    "before, method, lookup, after",
    [
        ("orders = Order.objects.filter(status='new')", "select_related", "customer",
         "orders = Order.objects.filter(status='new').select_related(\"customer\")"),
        ("for order in Order.objects.all():", "prefetch_related", "pizzas",
         "for order in Order.objects.all().prefetch_related(\"pizzas\"):"),
        ("return Order.objects.prefetch_related('pizzas').order_by('-created')", "prefetch_related",
         "pizzas__category",
         "return Order.objects.prefetch_related(\"pizzas__category\").order_by('-created')"),
        ("qs = Order.objects.select_related('customer')[:10]", "select_related", "customer__loyalty_card",
         "qs = Order.objects.select_related(\"customer__loyalty_card\")[:10]"),
        ("qs = shop.models.Order.objects.all()", "select_related", "customer",
         "qs = shop.models.Order.objects.all().select_related(\"customer\")"),
        ("orders = self.get_queryset().filter(x=1)", "select_related", "customer",
         "orders = self.get_queryset().filter(x=1).select_related(\"customer\")"),
        ("context = {'orders': Order.objects.all(), 'n': 1}", "select_related", "customer",
         "context = {'orders': Order.objects.all().select_related(\"customer\"), 'n': 1}"),
        ("x = 'café' + str(Order.objects.all())", "select_related", "customer",
         "x = 'café' + str(Order.objects.all().select_related(\"customer\"))"),
    ],
)
def test_rewrite_line_applies_the_fix_where_the_queryset_is_built(before, method, lookup, after):
    assert rewrite_line(before, "Order", method, lookup, []) == after


def test_rewrite_line_gives_up_on_unreadable_lines():
    assert rewrite_line("{% for o in orders %}", "Order", "select_related", "customer", []) is None
    assert rewrite_line("print('hello')", "Order", "select_related", "customer", []) is None


def test_rewrite_line_leaves_prefetch_objects_alone():
    line = "qs = Order.objects.prefetch_related(Prefetch('pizzas'))"
    assert rewrite_line(line, "Order", "prefetch_related", "pizzas__category", []) is None


@pytest.mark.parametrize(
    "model, lookup, method, ok",
    [
        (Order, "customer", "select_related", True),
        (Order, "customer__loyalty_card", "select_related", True),
        (Order, "pizzas", "select_related", False),  # multi-valued
        (Order, "custmer", "select_related", False),
        (Order, "pizzas__toppings__customer_set", "prefetch_related", True),
        (Customer, "review_set", "prefetch_related", True),
        (Customer, "reviews", "prefetch_related", False),
        (Review, "target", "prefetch_related", True),
        (Pizza, "reviews", "prefetch_related", True),
        (Order, "status", "prefetch_related", False),
    ],
)
def test_validate_lookup_uses_the_orm(model, lookup, method, ok):
    assert validate_lookup(model, lookup, method) is ok


def test_in_bulk_access_rewrites_only_single_object_reads():
    from ddt_prefetch_panel.advise import _bulk_access

    assert _bulk_access("Customer.objects.get(pk=customer_id).name", "Customer", "by_pk") == (
        "by_pk[customer_id].name", "customer_id")
    assert _bulk_access("c = Customer.objects.filter(email=e).first()", "Customer", "by_email") == ("c = by_email[e]", "e")
    assert _bulk_access("list(Customer.objects.filter(pk=i))", "Customer", "by_pk") == (None, None)  # a list
    assert _bulk_access("Customer.objects.values('name').get(pk=i)", "Customer", "by_pk") == (None, None)  # a dict


def test_a_refetch_by_the_rows_own_key_becomes_the_row():
    from ddt_prefetch_panel.advise import refetch_access
    from tests.proofs.models import ArticlePage

    assert refetch_access("article = ArticlePage.objects.get(id=page.id)", ArticlePage) == "article = page"
    assert refetch_access("a = ArticlePage.objects.filter(pk=p.pk).first()", ArticlePage) == "a = p"
    assert refetch_access("a = ArticlePage.objects.get(page_ptr_id=p.id)", ArticlePage) == "a = p"
    assert refetch_access("a = ArticlePage.objects.get(title=p.title)", ArticlePage) is None  # not the key
    assert refetch_access("a = ArticlePage.objects.get(id=ids[0])", ArticlePage) is None  # not a row's key


# --------------------------------------------------------------------------- duplicates in a template loop


def _frames(node: str, function: str, loop: str = "{% for thread in object_list %}") -> list[dict]:
    tag = {"filename": "app/templatetags/tags.py", "lineno": 9, "function": "tag_url", "code": "...", "template": False}
    return [tag, {"filename": "app/list.html", "lineno": 4, "function": function, "code": node, "template": True},
            {"filename": "app/list.html", "lineno": 3, "function": "ForNode", "code": loop, "template": True}]


@pytest.mark.parametrize("node, function, loop", [
    ("{% tag_url thread.slug %}", "SimpleNode", "{% for thread in object_list %}"),  # reads the row
    ("{% tag_url name=forloop.counter %}", "SimpleNode", "{% for thread in object_list %}"),
    ("{{ 'x'|tag_link:thread }}", "VariableNode", "{% for thread in object_list %}"),
    ("{% tag_url a %}", "SimpleNode", "{% for a, b in pairs %}"),
    ("{% show_tags 'x' %}", "InclusionNode", "{% for thread in object_list %}"),  # no `as` for inclusion tags
])
def test_a_template_repeat_that_reads_the_loop_or_cannot_be_stored_gets_no_template_advice(node, function, loop):
    from ddt_prefetch_panel.advise import advise_template_repeat

    assert advise_template_repeat(_frames(node, function, loop)) is None


def test_a_simple_tag_already_stored_with_as_is_moved_above_the_loop():
    from ddt_prefetch_panel.advise import advise_template_repeat

    snippets, note = advise_template_repeat(_frames("{% tag_url 'news' as news_url %}", "SimpleNode"))
    assert snippets == {"fix": "{% tag_url 'news' as news_url %}"}
    assert "move it above the loop" in note and "{{ news_url }}" in note


LOOP = """\
def page(statuses, orders):
    rows = []
    for status in statuses:
        rows.append((status, Order.objects.count()))
        rows.append(Order.objects.filter(status=status).count())
        total = 0
        rows.append(Order.objects.filter(pk__gt=total).exists())
    return rows
"""


def test_a_loop_invariant_query_is_computed_once_above_the_loop(tmp_path):
    from ddt_prefetch_panel.advise import advise_loop_invariant

    path = tmp_path / "views.py"
    path.write_text(LOOP)
    snippets, note = advise_loop_invariant(str(path), 4, "Order")
    assert snippets == {"fix": "order_count = Order.objects.count()", "in_loop": "rows.append((status, order_count))"}
    assert "every pass of `for status in statuses:` (line 3)" in note
    assert advise_loop_invariant(str(path), 5, "Order") is None  # reads the loop's variable
    assert advise_loop_invariant(str(path), 7, "Order") is None  # reads a name the loop assigns
    assert advise_loop_invariant(str(path), 2, "Order") is None  # not in a loop
    assert advise_loop_invariant(str(path), 4, "Customer") is None


def test_a_lookup_kept_in_a_variable_and_repeated_by_helpers_is_passed_in():
    from ddt_prefetch_panel.advise import advise_pass_it_in

    view = {"filename": "shop/views.py", "lineno": 10, "function": "page", "code": "category = Category.objects.get(pk=1)"}
    helper = {"filename": "shop/views.py", "lineno": 3, "function": "_menu", "code": "c = Category.objects.get(pk=1)"}
    snippets, note = advise_pass_it_in([view, helper])
    assert snippets == {"fix": "# pass category to _menu() instead of loading it again there"}
    assert note.startswith("The first result is kept in `category` (shop/views.py:10); _menu() loads the same row")
    assert advise_pass_it_in([{**view, "code": "return Category.objects.get(pk=1)"}, helper]) is None
    assert advise_pass_it_in([view]) is None


@pytest.mark.parametrize("code, fixed", [
    ('ct = ContentType.objects.get(app_label="shop", model="order")',
     "ct = ContentType.objects.get_by_natural_key('shop', 'order')"),
    ("kind = ContentType.objects.get(pk=row.content_type_id).model", "kind = ContentType.objects.get_for_id(row.content_type_id).model"),
    ('ct = ContentType.objects.get(model="order")', None),  # not a cached lookup
    ("ct = ContentType.objects.filter(pk=1).first()", None),
])
def test_a_repeated_content_type_lookup_uses_the_managers_cached_lookups(code, fixed):
    from ddt_prefetch_panel.advise import advise_content_type

    advice = advise_content_type(code)
    assert (advice[0]["fix"] if advice else None) == fixed


def test_generic_prefetch_has_one_queryset_per_type_and_goes_first_when_it_joins_the_rest():
    """Both types have ``device``: each queryset joins it, one statement fewer than the plain
    lookup, which is the fallback. A to-many hop after the generic FK: the plain lookup runs
    fewer statements for two types and goes first."""
    from ddt_prefetch_panel.advise import advise_relation
    from ddt_prefetch_panel.relate import Relation, _through_generic_fk
    from tests.proofs.models import Bookmark, Cable, ConsolePort, Image, Interface, Post

    path = ("terminations", "termination", "device")
    relation = Relation(None, Cable, path, _through_generic_fk(Cable, path, Interface),
                        generic_models=(ConsolePort, Interface))
    advice = advise_relation(relation, 'cables = Cable.objects.order_by("pk")')
    assert advice.method == "GenericPrefetch"
    assert advice.snippets["fix"] == (
        '.prefetch_related(GenericPrefetch("terminations__termination", [ConsolePort.objects.select_related("device"), '
        'Interface.objects.select_related("device")]))')
    assert advice.snippets["line"] == f'cables = Cable.objects.order_by("pk"){advice.snippets["fix"]}'
    assert advice.after_queries == 3  # terminations, then one per type
    assert [f.snippets["fix"] for f in advice.fallbacks] == ['.prefetch_related("terminations__termination__device")']

    tags = ("target", "tags")
    relation = Relation(None, Bookmark, tags, _through_generic_fk(Bookmark, tags, Post), generic_models=(Image, Post))
    advice = advise_relation(relation, None)
    assert advice.snippets["fix"] == '.prefetch_related("target__tags")'
    assert advice.fallbacks[0].snippets["fix"] == (
        '.prefetch_related(GenericPrefetch("target", [Post.objects.prefetch_related("tags"), Image.objects.all()]))')


@pytest.mark.parametrize("call, expected", [
    (dict(high=1), "Pizza.objects.all()[:1]"),  # a manager is not subscriptable
    (dict(low=2, high=5), "Pizza.objects.all()[2:5]"),
    (dict(order_by=("-id",), high=2), 'Pizza.objects.order_by("-id")[:2]'),
    (dict(), "Pizza.objects.all()"),
])
def test_a_prefetch_queryset_is_valid_code_that_evaluates(db, call, expected):
    """The queryset of a ``Prefetch(..., to_attr=...)`` candidate is code that runs as written:
    a slice alone goes on ``.all()``, never on the manager (issue 21)."""
    from ddt_prefetch_panel.advise import _prefetch_queryset_expr
    from ddt_prefetch_panel.capture import Call

    expr = _prefetch_queryset_expr(Pizza, Call(**call))
    assert expr == expected
    list(eval(expr, {"Pizza": Pizza}))
