"""Views that feed the prefetch panel bad, odd and extreme input.

Every view answers the way a real project's view would: it catches what the database
refuses (inside a savepoint, so PostgreSQL's transaction stays usable) and keeps going.
Whatever the panel does with these statements must never reach the user's request.
Raw SQL is portable between SQLite and PostgreSQL or branches on ``connection.vendor``.
"""

from __future__ import annotations

import datetime
import io
import pickle
import threading
import uuid
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Count, Exists, OuterRef, Subquery
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.template import engines
from django.utils.html import escape

from ddt_prefetch_panel import capture as cap
from ddt_prefetch_panel import hooks
from ddt_prefetch_panel import detect
from ddt_prefetch_panel.testing import ignore_n_plus_one
from shop.models import Category, Customer, Order, Pizza, Review

HOSTILE = "<script>alert(1)</script>"

# What views observed about the capture while they ran (read by the tests).
SEEN: list[dict] = []

VIEWS: dict = {}


def fault(slug: str):
    def register(view):
        VIEWS[slug] = view
        return view

    return register


def page(title: str, lines=()) -> HttpResponse:
    items = "".join(f"<li>{escape(str(line))}</li>" for line in lines)
    return HttpResponse(
        f"<!doctype html><html><head><title>{escape(title)}</title></head>"
        f"<body><h1>{escape(title)}</h1><ul>{items}</ul></body></html>"
    )


def attempt(sql: str, params=None, alias: str = "default", many: bool = False):
    """Run one statement in a savepoint: its rows (or rowcount), or the exception it raised."""
    try:
        with transaction.atomic(using=alias):
            with connections[alias].cursor() as cursor:
                if many:
                    cursor.executemany(sql, params)
                else:
                    cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description else cursor.rowcount
    except Exception as exc:  # the view handles what the driver refuses, as a real view would
        return exc


def outcome(result) -> str:
    """A printable summary that never echoes odd values (lone surrogates, NULs) into the page."""
    if isinstance(result, Exception):
        return f"refused: {type(result).__name__}"
    if isinstance(result, list):
        return f"{len(result)} rows"
    return f"rowcount {result}"


def order_ids() -> list[int]:
    return list(Order.objects.order_by("pk").values_list("pk", flat=True))


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


# --------------------------------------------------------------------------- raw SQL


@fault("raw-cursor")
def raw_cursor(request):
    names = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, customer_id FROM shop_order ORDER BY id")
        for _, customer_id in cursor.fetchall():
            cursor.execute("SELECT name FROM shop_customer WHERE id = %s", [customer_id])
            names.append(cursor.fetchone()[0])
    return page("raw cursor", names)


@fault("select-one")
def select_one(request):
    with connection.cursor() as cursor:
        for _ in range(5):
            cursor.execute("SELECT 1")
    return page("select 1")


@fault("weird-sql")
def weird_sql(request):
    statements = [
        ("SELECT ?? weird", None),  # the parser cannot read it; the database refuses it
        ("SELECT 1; SELECT 2", None),  # two statements (SQLite refuses, PostgreSQL runs both)
        ("/* leading comment */ SELECT 1 -- trailing comment", None),
        ("VALUES (1), (2), (3)", None),
        ("SELECT name FROM shop_customer WHERE name LIKE %s", ["%a%"]),
        ("SELECT name FROM shop_customer WHERE name LIKE %s", ["%e%"]),
        ("SELECT name FROM shop_customer WHERE name LIKE %s", ["%o%"]),
        ("SELECT CASE WHEN %s > 1 THEN 'many' ELSE 'one' END", [2]),
        ("select\n\tID\nfrom\n  SHOP_ORDER\nwhere ID = %s", [1]),
        ("select\n\tID\nfrom\n  SHOP_ORDER\nwhere ID = %s", [2]),
        ("SELECT", None),
        ("", None),
        ("   ", None),
        (";", None),
    ]
    return page("weird SQL", [outcome(attempt(sql, params)) for sql, params in statements])


@fault("vendor-sql")
def vendor_sql(request):
    if is_postgres():
        statements = ["SHOW search_path", "SELECT pg_backend_pid()", "SELECT current_setting('TimeZone')",
                      "SELECT 1::int8 AS n", "SELECT ARRAY[1, 2]::int[] @> ARRAY[1]"]
        loop = "SELECT relname FROM pg_class WHERE oid = %s::regclass"
    else:
        statements = ["PRAGMA user_version", "PRAGMA foreign_keys", "PRAGMA table_info(shop_order)",
                      "SELECT sqlite_version()", "SELECT typeof(1) GLOB 'int*'"]
        loop = "SELECT name FROM sqlite_master WHERE name = %s"
    lines = [outcome(attempt(sql)) for sql in statements]
    for table in ("shop_order", "shop_customer", "shop_pizza"):
        lines.append(outcome(attempt(loop, [table])))
    return page("vendor SQL", lines)


@fault("cte")
def cte(request):
    sql = ("WITH x AS (SELECT id, customer_id FROM shop_order) "
           "SELECT count(*) FROM x WHERE customer_id = %s")
    return page("CTE", [outcome(attempt(sql, [c])) for c in Customer.objects.values_list("pk", flat=True)])


@fault("recursive-cte")
def recursive_cte(request):
    sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s) SELECT count(*) FROM n"
    return page("recursive CTE", [outcome(attempt(sql, [bound])) for bound in (1, 10, 100, 1000)])


@fault("window")
def window(request):
    sql = ("SELECT id, row_number() OVER (PARTITION BY customer_id ORDER BY created DESC) AS rn, "
           "sum(id) OVER w FROM shop_order WHERE customer_id = %s WINDOW w AS (ORDER BY id)")
    return page("window functions", [outcome(attempt(sql, [c])) for c in Customer.objects.values_list("pk", flat=True)])


@fault("union")
def union(request):
    sql = ("SELECT id FROM shop_order WHERE customer_id = %s UNION "
           "SELECT id FROM shop_customer WHERE id = %s INTERSECT SELECT id FROM shop_customer EXCEPT SELECT 0")
    lines = [outcome(attempt(sql, [c, c])) for c in Customer.objects.values_list("pk", flat=True)]
    # The ORM's own UNION, in a loop.
    for status in ("new", "baking", "delivered"):
        lines.append(len(Order.objects.filter(status=status).union(Order.objects.filter(pk=1))))
    return page("union", lines)


@fault("unicode-sql")
def unicode_sql(request):
    sql = 'SELECT \'ピザ 🍕 «ünïcödé»\' AS "列 🍕", %s AS "ω"'
    return page("unicode SQL", [outcome(attempt(sql, [value])) for value in ("ピザ", "🍕", "Ω≈ç√", "\u202e")])


@fault("failing-query")
def failing_query(request):
    lines = []
    for _ in range(3):
        lines.append(outcome(attempt("SELEC broken FROM", None)))  # syntax error
        lines.append(outcome(attempt("SELECT no_such_column FROM shop_order WHERE id = %s", [1])))
        lines.append(Order.objects.count())  # the transaction is still usable afterwards
    try:
        with transaction.atomic():
            list(Order.objects.extra(where=["no_such_column = %s"], params=[1]))
    except Exception as exc:
        lines.append(type(exc).__name__)
    lines.append([o.customer.name for o in Order.objects.order_by("pk")])  # and the panel still finds this N+1
    return page("failing queries", lines)


@fault("unknown-table")
def unknown_table(request):
    lines = [outcome(attempt("SELECT * FROM ddtpp_no_such_table WHERE id = %s", [i])) for i in range(3)]
    # A table no model knows about.
    attempt("CREATE TABLE IF NOT EXISTS ddtpp_faults_unmodelled (id integer PRIMARY KEY, label varchar(50))")
    attempt("DELETE FROM ddtpp_faults_unmodelled")
    attempt("INSERT INTO ddtpp_faults_unmodelled (id, label) VALUES (%s, %s)", [(i, f"row {i}") for i in range(5)],
            many=True)
    for i in range(5):
        lines.append(outcome(attempt("SELECT label FROM ddtpp_faults_unmodelled WHERE id = %s", [i])))
    return page("unknown tables", lines)


@fault("multi-alias")
def multi_alias(request):
    lines = []
    attempt("CREATE TEMP TABLE IF NOT EXISTS ddtpp_faults_tmp (id integer PRIMARY KEY, v text)", alias="other")
    attempt("DELETE FROM ddtpp_faults_tmp", alias="other")
    for i in range(5):
        attempt("INSERT INTO ddtpp_faults_tmp (id, v) VALUES (%s, %s)", [i, f"v{i}"], alias="other")
    for i in range(5):
        lines.append(outcome(attempt("SELECT v FROM ddtpp_faults_tmp WHERE id = %s", [i], alias="other")))
    # The ORM on the second alias: an N+1 there too.
    tag = uuid.uuid4().hex[:8]
    for i in range(3):
        customer = Customer.objects.using("other").create(name=f"other {i}", email=f"{tag}-{i}@example.com", city="X")
        Review.objects.using("other").create(customer=customer, rating=i)
    for customer in Customer.objects.using("other").order_by("pk"):
        lines.append(customer.review_set.count())
    # and the default alias in the same request
    lines.append([o.customer.name for o in Order.objects.order_by("pk")])
    return page("two aliases", lines)


# --------------------------------------------------------------------------- parameters of odd types


def _aware() -> datetime.datetime:
    return datetime.datetime(2025, 3, 1, 18, 0, tzinfo=datetime.timezone.utc)


PARAM_VALUES = {
    "bytes": lambda: [b"abc", b"def", b""],
    "non-utf8-bytes": lambda: [b"\xff\xfe\xfd", b"\x80\x00\x81", b"\xc3\x28"],
    "bytearray": lambda: [bytearray(b"abc"), bytearray(b"\xff")],
    "memoryview": lambda: [memoryview(b"abc"), memoryview(b"\xff\x00")],
    "nul-string": lambda: ["a\x00b", "\x00", "tail\x00"],
    "lone-surrogate": lambda: ["\ud800", "a\udfffb", "\udc80"],
    "huge-int": lambda: [2**63 - 1, -(2**63), 10**30, -(10**40)],
    "decimal": lambda: [Decimal("1.10"), Decimal("-1E+30"), Decimal("NaN"), Decimal("0.000000000000000000001")],
    "datetime": lambda: [_aware(), datetime.datetime(2025, 1, 1, 12, 0), datetime.date(2025, 1, 1),
                         datetime.time(12, 30), datetime.timedelta(days=1, seconds=5)],
    "none": lambda: [None, None, None],
    "list": lambda: [[1, 2, 3], [4], [], ["a", None]],
    "dict": lambda: [{"a": 1}, {"b": [1, 2]}, {}],
    "misc": lambda: [uuid.UUID(int=1), True, False, float("inf"), float("nan"), 1.5, -0.0],
    "huge-str": lambda: ["x" * 1_000_000, "y" * 1_000_000],
    "object": lambda: [object(), Unrepresentable()],
}


class Unrepresentable:
    """A parameter whose repr and str fail: the driver refuses it, the panel must not care."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    __str__ = __repr__


def params_view(request, kind: str):
    lines = []
    for _ in range(2):  # repeated values make duplicates, different values an N+1-like group
        for value in PARAM_VALUES[kind]():
            lines.append(outcome(attempt("SELECT %s", [value])))
            lines.append(outcome(attempt("SELECT id FROM shop_order WHERE notes = %s", [value])))
    return page(f"parameters: {kind}", lines)


@fault("named-params")
def named_params(request):
    sql = "SELECT %(a)s, %(b)s, %(a)s"
    lines = [outcome(attempt(sql, {"a": i, "b": f"b{i}"})) for i in range(4)]
    lines.append(outcome(attempt(sql, {"a": 1})))  # a missing key: refused
    return page("named parameters", lines)


@fault("surrogate-sql")
def surrogate_sql(request):
    # The statement text itself is not encodable: every driver refuses it.
    lines = [outcome(attempt(f"SELECT '\ud800{i}' AS x")) for i in range(3)]
    lines += [outcome(attempt("SELECT '\udcff' AS y")) for _ in range(3)]  # the same text: a duplicate
    lines += [outcome(attempt("SELECT 'a\x00b'")) for _ in range(3)]
    return page("statement text the driver refuses", lines)


# --------------------------------------------------------------------------- size


@fault("huge-statement")
def huge_statement(request):
    literal = "x" * 500_000
    sql = f"SELECT 1 WHERE '{literal}' = '{literal}'"  # ~1 MB
    return page("1 MB statement", [outcome(attempt(sql)) for _ in range(3)])


@fault("huge-in-list")
def huge_in_list(request):
    ids = list(range(1, 10_001))
    lines = [Order.objects.filter(pk__in=ids).count(), Order.objects.filter(pk__in=ids[::-1]).count()]
    literal_ids = ", ".join(str(i) for i in ids)
    for _ in range(2):
        lines.append(outcome(attempt(f"SELECT count(*) FROM shop_order WHERE id IN ({literal_ids})")))
    return page("huge IN list", lines)


def many_queries(request, count: int):
    alias = request.GET.get("alias", "default")
    with connections[alias].cursor() as cursor:
        for i in range(count):
            cursor.execute("SELECT %s", [i])
    return page(f"{count} queries")


# --------------------------------------------------------------------------- responses


@fault("raises")
def raises(request):
    [o.customer.name for o in Order.objects.order_by("pk")]
    raise RuntimeError("the view failed after querying")


@fault("http404")
def http404(request):
    [o.customer.name for o in Order.objects.order_by("pk")]
    raise Http404("nothing here")


@fault("permission-denied")
def permission_denied(request):
    Order.objects.count()
    raise PermissionDenied("no")


@fault("redirect")
def redirect(request):
    [o.customer.name for o in Order.objects.order_by("pk")]
    return HttpResponseRedirect("/faults/empty/")


@fault("json")
def json_view(request):
    return JsonResponse({"orders": [o.customer.name for o in Order.objects.order_by("pk")], "html": HOSTILE})


@fault("empty")
def empty(request):
    return page("no queries at all")


@fault("streaming")
def streaming(request):
    Order.objects.count()
    orders = Order.objects.order_by("pk")  # built while the capture runs, evaluated after it stopped

    def rows():
        yield "<!doctype html><html><body><ul>"
        for order in orders:
            yield f"<li>{escape(order.customer.name)}</li>"
        with connection.cursor() as cursor:
            for i in range(3):
                cursor.execute("SELECT %s", [i])
        yield "</ul><p>streamed to the end</p></body></html>"

    return StreamingHttpResponse(rows(), content_type="text/html")


@fault("file")
def file_response(request):
    names = [o.customer.name for o in Order.objects.order_by("pk")]
    data = ("\n".join(names) + "\n").encode() * 1000
    return FileResponse(io.BytesIO(data), as_attachment=True, filename="customers.txt")


@fault("file-html")
def file_html(request):
    Order.objects.count()
    return FileResponse(io.BytesIO(b"<html><body>file</body></html>"), content_type="text/html")


# --------------------------------------------------------------------------- ORM shapes


@fault("sql-view")
def sql_view(request):
    if is_postgres():
        create = "CREATE OR REPLACE VIEW ddtpp_faults_order_view AS "
    else:
        create = "CREATE VIEW IF NOT EXISTS ddtpp_faults_order_view AS "
    attempt(create + "SELECT o.id AS order_id, c.name AS customer_name, o.status "
            "FROM shop_order o JOIN shop_customer c ON c.id = o.customer_id")
    lines = []
    for pk in order_ids():  # a view without a primary key, read row by row
        lines.append(outcome(attempt("SELECT customer_name FROM ddtpp_faults_order_view WHERE order_id = %s", [pk])))
    for pk in order_ids()[:4]:  # and through Model.objects.raw
        rows = Order.objects.raw(
            "SELECT order_id AS id, customer_name FROM ddtpp_faults_order_view WHERE order_id = %s", [pk])
        lines.append([row.customer_name for row in rows])
    return page("SQL view", lines)


@fault("raw-queryset")
def raw_queryset(request):
    lines = []
    for order in Order.objects.raw("SELECT * FROM shop_order ORDER BY id"):
        lines.append(order.customer.name)  # N+1 through a RawQuerySet
        lines.append([c.name for c in Customer.objects.raw("SELECT * FROM shop_customer WHERE id = %s",
                                                           [order.customer_id])])
    return page("raw querysets", lines)


@fault("values-loop")
def values_loop(request):
    lines = []
    for row in Order.objects.order_by("pk").values("pk", "customer_id"):
        lines.append(Customer.objects.filter(pk=row["customer_id"]).values_list("name", flat=True).first())
    for pk, customer_id in Order.objects.order_by("pk").values_list("pk", "customer_id"):
        lines.append(list(Pizza.objects.filter(order_id=pk).values("name")))
    return page("values loops", lines)


@fault("iterator")
def iterator(request):
    names = [o.customer.name for o in Order.objects.order_by("pk").iterator(chunk_size=3)]
    return page("iterator()", names)


@fault("select-for-update")
def select_for_update(request):
    with transaction.atomic():
        names = [o.customer.name for o in Order.objects.select_for_update().order_by("pk")]
    return page("select_for_update", names)


@fault("bulk-writes")
def bulk_writes(request):
    lines = []
    for i in range(5):
        Category.objects.bulk_create([Category(name=f"bulk {i} a"), Category(name=f"bulk {i} b")])
        lines.append(Category.objects.filter(name__startswith=f"bulk {i}").update(name=f"bulk {i} updated"))
        lines.append(Category.objects.filter(name=f"bulk {i} updated").delete()[0])
    for order in Order.objects.order_by("pk"):
        order.notes = f"note {order.pk}"
        order.save(update_fields=["notes"])
    return page("bulk writes", lines)


@fault("executemany")
def executemany(request):
    lines = []
    for i in range(3):
        lines.append(outcome(attempt("INSERT INTO shop_category (name) VALUES (%s)",
                                     [(f"many {i} {j}",) for j in range(4)], many=True)))
    lines.append(outcome(attempt("INSERT INTO shop_category (name) VALUES (%s)", [], many=True)))
    lines.append(outcome(attempt("INSERT INTO shop_category (name) VALUES (%s)",
                                 ((f"gen {j}",) for j in range(3)), many=True)))
    lines.append(outcome(attempt("INSERT INTO shop_category (name) VALUES (%s)", [(None,)], many=True)))
    return page("executemany", lines)


@fault("explain")
def explain(request):
    plans = [Order.objects.filter(status=status).explain() for status in ("new", "baking", "delivered")]
    return page("explain()", [len(plan) for plan in plans])


@fault("subquery")
def subquery(request):
    lines = []
    for customer in Customer.objects.order_by("pk"):
        latest = Order.objects.filter(customer=OuterRef("pk")).order_by("-created").values("status")[:1]
        annotated = Customer.objects.filter(pk=customer.pk).annotate(
            latest=Subquery(latest), has_orders=Exists(Order.objects.filter(customer=OuterRef("pk"))),
            n=Count("order"),
        )
        lines.append(list(annotated.values_list("latest", "has_orders", "n")))
    return page("subqueries", lines)


@fault("integrity-error")
def integrity_error(request):
    lines = []
    email = Customer.objects.order_by("pk").values_list("email", flat=True).first()
    for _ in range(3):
        try:
            with transaction.atomic():
                Customer.objects.create(name="dup", email=email, city="X")
        except IntegrityError as exc:
            lines.append(type(exc).__name__)
    lines.append(Customer.objects.count())
    return page("integrity errors", lines)


@fault("pickle")
def pickled(request):
    orders = pickle.loads(pickle.dumps(Order.objects.order_by("pk")))  # pickling evaluates it
    copy = pickle.loads(pickle.dumps(list(orders)))
    return page("pickled querysets", [o.customer.name for o in copy] + [o.customer.name for o in orders])


@fault("thread-in-view")
def thread_in_view(request):
    results = []

    def work():
        try:
            with connections["other"].cursor() as cursor:
                for i in range(3):
                    cursor.execute("SELECT %s", [i])
                    results.append(cursor.fetchone()[0])
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return page("a thread of the view queries", results + [o.customer.name for o in Order.objects.order_by("pk")])


# --------------------------------------------------------------------------- templates


TEMPLATE = """<!doctype html><html><body>
{% for o in orders %}<p>{{ o.customer.name }} {{ o.no_such_attribute }} {{ missing.deeper.still }}
{{ o.customer.no_such|default:"fallback" }} {% for p in o.pizzas.all %}{{ p.name }}{% endfor %}</p>{% endfor %}
{{ undefined_variable }}
</body></html>"""


@fault("template-invalid")
def template_invalid(request):
    template = engines["django"].from_string(TEMPLATE)
    return HttpResponse(template.render({"orders": Order.objects.order_by("pk")}, request))


class Exploding:
    def explode(self):
        raise ValueError("a template variable exploded")


@fault("template-raises")
def template_raises(request):
    template = engines["django"].from_string(
        "<html><body>{% for o in orders %}{{ o.customer.name }}{% endfor %}{{ boom.explode }}</body></html>")
    return HttpResponse(template.render({"orders": Order.objects.order_by("pk"), "boom": Exploding()}, request))


# --------------------------------------------------------------------------- the package's own API inside a request


@fault("ignored")
def ignored(request):
    with ignore_n_plus_one():
        names = [o.customer.name for o in Order.objects.order_by("pk")]
    return page("ignored N+1", names)


@fault("nested-detect")
def nested_detect(request):
    with detect() as report:
        inner = [o.customer.name for o in Order.objects.order_by("pk")]
    outer = [len(o.pizzas.all()) for o in Order.objects.order_by("pk")]
    SEEN.append({"view": "nested-detect", "relations": [f.relation for f in report.findings],
                 "queries": report.summary["queries"]})
    return page("detect() inside the request", [f"inner findings: {[f.relation for f in report.findings]}"]
                + inner + outer)


@fault("xss")
def xss(request):
    alias = f'"{HOSTILE}"'
    sql = (f"SELECT '{HOSTILE}' AS {alias}, {alias}.id FROM shop_order AS {alias} "
           f"WHERE {alias}.id = %s AND %s <> ''")
    lines = [outcome(attempt(sql, [pk, HOSTILE])) for pk in order_ids()]
    lines += [outcome(attempt(sql, [1, HOSTILE])) for _ in range(2)]  # exact duplicates too
    lines += [outcome(attempt(f'SELECT * FROM "{HOSTILE}" WHERE id = %s', [HOSTILE])) for _ in range(2)]
    lines += [Customer.objects.filter(name=HOSTILE + str(i)).count() for i in range(3)]
    return page("hostile SQL", lines)


@fault("observe")
def observe(request):
    """Record what the capture machinery looks like from inside a view."""
    queryset = Order.objects.filter(status="new")
    instances = list(Order.objects.order_by("pk")[:3])
    [o.customer.name for o in instances]
    SEEN.append({
        "view": "observe",
        "current": cap.current(),
        "tag": getattr(queryset.query, "_ddtpp", None),
        "instance_sources": [hooks.instance_source(o) for o in instances],
        "wrapped": [alias for alias in connections
                    if cap.execute_wrapper in connections[alias].execute_wrappers],
    })
    return page("observed")


# --------------------------------------------------------------------------- async (ASGI)


async def _async_forward_fk():
    orders = [o async for o in Order.objects.order_by("pk")]
    return [await sync_to_async(lambda o=o: o.customer.name)() for o in orders]


async def _async_reverse_fk():
    orders = [o async for o in Order.objects.order_by("pk")]
    return [await sync_to_async(lambda o=o: len(o.pizzas.all()))() for o in orders]


async def _async_m2m():
    pizzas = [p async for p in Pizza.objects.order_by("pk")]
    return [await sync_to_async(lambda p=p: [t.name for t in p.toppings.all()])() for p in pizzas]


async def _async_fixed():
    return [o.customer.name async for o in Order.objects.select_related("customer").order_by("pk")]


async def _async_orm():
    """The async ORM API itself: aget / acount / afirst / aexists in a loop."""
    lines = [await Order.objects.acount()]
    async for order in Order.objects.order_by("pk"):
        customer = await Customer.objects.aget(pk=order.customer_id)  # hand-written N+1, async
        lines.append(customer.name)
        lines.append(await Pizza.objects.filter(order_id=order.pk).acount())
    lines.append(await Order.objects.order_by("pk").afirst())
    lines.append(await Order.objects.filter(status="nope").aexists())
    return lines


ASYNC_SCENARIOS = {
    "forward-fk": _async_forward_fk,
    "reverse-fk": _async_reverse_fk,
    "m2m": _async_m2m,
    "fixed": _async_fixed,
    "orm": _async_orm,
}


async def async_scenario(request, name: str):
    lines = await ASYNC_SCENARIOS[name]()
    return page(f"async {name}", lines)


@fault("async-raises")
async def async_raises(request):
    await _async_forward_fk()
    raise RuntimeError("the async view failed after querying")


@fault("async-streaming")
async def async_streaming(request):
    await Order.objects.acount()

    async def rows():
        yield "<html><body>"
        async for order in Order.objects.order_by("pk"):
            yield f"<p>{order.pk}</p>"
        yield "</body></html>"

    return StreamingHttpResponse(rows(), content_type="text/html")


def never_show(request) -> bool:
    return False


# --------------------------------------------------------------------------- call sites and stacks


def _recurse(depth: int, work):
    if depth == 0:
        return work()
    return _recurse(depth - 1, work)


@fault("deep-stack")
def deep_stack(request):
    """Queries 600 frames deep (the capture walks and keys every frame)."""
    return page("deep stack", _recurse(600, lambda: [o.customer.name for o in Order.objects.order_by("pk")]))


GENERATED = """
names = []
for order in orders:
    names.append(order.customer.name)
"""


@fault("generated-code")
def generated_code(request):
    """Call sites without a source file: exec() of compiled code, lambdas, generators."""
    namespace = {"orders": Order.objects.order_by("pk")}
    exec(compile(GENERATED, "<generated>", "exec"), namespace)
    gen = (len(o.pizzas.all()) for o in Order.objects.order_by("pk"))
    counted = list(gen)
    return page("generated code", namespace["names"] + counted)


@fault("distinct-stacks")
def distinct_stacks(request):
    """1,000 different call sites (one generated line each) running the same statement."""
    source = "\n".join(f"cursor.execute('SELECT %s', [{i}])" for i in range(1000))
    with connection.cursor() as cursor:
        exec(compile(source, "<a thousand call sites>", "exec"), {"cursor": cursor})
    return page("1,000 call sites")


def distinct_sql(request, count: int):
    """Statements that differ only in their literals: one bucket each, one fingerprint."""
    with connection.cursor() as cursor:
        for i in range(count):
            cursor.execute(f"SELECT id, status FROM shop_order WHERE id = {i} AND status <> 'x{i}'")
    return page(f"{count} distinct statements")


def many_roots(request, count: int):
    """More root querysets than the capture remembers (MAX_ROOTS)."""
    names = []
    for i in range(count):
        for customer in Customer.objects.filter(pk=i % 12 + 1):
            names.append(customer.name)
    return page(f"{count} root querysets", names[:5])


@fault("dangling-gfk")
def dangling_gfk(request):
    """Generic foreign keys to rows that do not exist; lookups that raise DoesNotExist."""
    from django.contrib.contenttypes.models import ContentType

    pizza_type = ContentType.objects.get_for_model(Pizza)
    customer = Customer.objects.order_by("pk").first()
    for i in range(4):
        Review.objects.create(customer=customer, rating=1, content_type=pizza_type, object_id=900_000 + i)
    lines = [repr(r.target) for r in Review.objects.filter(object_id__gte=900_000).order_by("pk")]
    for pk in range(900_000, 900_004):
        try:
            Order.objects.get(pk=pk)
        except Order.DoesNotExist:
            lines.append("missing")
    return page("dangling references", lines)


@fault("non-str-sql")
def non_str_sql(request):
    """SQL that is not a str: psycopg's composed SQL on PostgreSQL, bytes elsewhere."""
    lines = []
    if is_postgres():
        from psycopg import sql

        for i in range(3):
            statement = sql.SQL("SELECT {} FROM {} WHERE id = %s").format(sql.Identifier("id"),
                                                                         sql.Identifier("shop_order"))
            lines.append(outcome(attempt(statement, [i])))
    for i in range(3):
        lines.append(outcome(attempt(b"SELECT 1", None)))
    return page("non-str SQL", lines)


@fault("signal-handler")
def signal_handler(request):
    """Queries from a signal receiver fired by the view's own writes."""
    from django.db.models.signals import post_save

    def receiver(sender, instance, **kwargs):
        Customer.objects.filter(pk=instance.customer_id).exists()

    post_save.connect(receiver, sender=Order, weak=False, dispatch_uid="ddtpp-faults")
    try:
        for order in Order.objects.order_by("pk"):
            order.save(update_fields=["status"])
    finally:
        post_save.disconnect(dispatch_uid="ddtpp-faults", sender=Order)
    return page("signal receivers query")


@fault("literal-sql")
def literal_sql(request):
    """The same statement per row with the value formatted into the SQL text, not passed as a parameter."""
    names = []
    with connection.cursor() as cursor:
        for order in Order.objects.order_by("pk"):
            cursor.execute(f"SELECT name FROM shop_customer WHERE id = {int(order.customer_id)}")
            names.append(cursor.fetchone()[0])
    for customer_id in Customer.objects.order_by("pk").values_list("pk", flat=True):
        names.append(len(Order.objects.extra(where=[f"customer_id = {int(customer_id)}"])))
    return page("values formatted into the SQL", names)


# --------------------------------------------------------------------------- concurrency (tests/test_concurrency.py)

# Set by the test: every request waits here once its capture is running, so all of them overlap.
BARRIER: threading.Barrier | None = None


def together(request, target: str):
    """Wait for the other concurrent requests, then run the demo view at ``/target``."""
    from django.urls import resolve

    if BARRIER is not None:
        BARRIER.wait(timeout=30)
    match = resolve("/" + target)
    return match.func(request, *match.args, **match.kwargs)



@fault("surrogate-identifier")
def surrogate_identifier(request):
    """An identifier no driver can encode (it is not a literal, so redaction keeps it)."""
    return page("unencodable identifier", [outcome(attempt('SELECT 1 AS "\ud800"')) for _ in range(3)])


@fault("sub-request")
def sub_request(request):
    """The view requests another page of the site in-process (a nested toolbar and capture)."""
    from django.test import Client

    inner = Client().get("/forward-fk/bad/")
    SEEN.append({"view": "sub-request", "status": inner.status_code, "has_toolbar": b"djDebug" in inner.content})
    names = [len(o.pizzas.all()) for o in Order.objects.order_by("pk")]
    return page("sub-request", [inner.status_code] + names)


# Set by tests/test_concurrency.py (inside its event loop) when another request has finished.
OTHER_REQUEST_DONE = None


@fault("held-cursor")
async def held_cursor(request):
    """An async view that keeps one cursor open across awaits while other requests come and go."""
    import asyncio

    def wrapped_by_someone_else() -> bool:
        return cap.execute_wrapper in connections["default"].execute_wrappers

    # Wait until another request's capture has wrapped the (shared, thread-sensitive) connection.
    for _ in range(5000):
        if await sync_to_async(wrapped_by_someone_else)():
            break
        await asyncio.sleep(0.001)
    cursor = await sync_to_async(lambda: connections["default"].cursor())()
    try:
        for i in range(3):
            await sync_to_async(cursor.execute)("SELECT %s", [i])
        if OTHER_REQUEST_DONE is not None:
            await OTHER_REQUEST_DONE.wait()
        for i in range(3, 6):
            await sync_to_async(cursor.execute)("SELECT %s", [i])
    finally:
        await sync_to_async(cursor.close)()
    return page("held cursor")
