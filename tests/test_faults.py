"""Fault isolation: bad, odd and extreme input never breaks the page, the toolbar or the panel.

Every case is a real request through django-debug-toolbar (tests/settings.py always shows it,
with our panel after DDT's SQL panel); the views live in tests/faults/views.py. For each one:

* the page answers with the status the view intends, and nothing is raised into the request;
* the toolbar is inserted into HTML pages (``id="djDebug"``);
* our panel stored its stats, without an analysis error;
* ``render_panel`` answers 200 with findings or the friendly empty state, never a traceback.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pytest
from asgiref.sync import async_to_sync
from debug_toolbar.middleware import show_toolbar_func_or_path
from debug_toolbar.store import get_store
from debug_toolbar.toolbar import DebugToolbar
from django.conf import settings
from django.test import AsyncClient, Client, override_settings

from ddt_prefetch_panel.panel import PrefetchPanel
from tests.faults import views
from tests.faults.views import HOSTILE, PARAM_VALUES
from tests.toolbar import latest_request_id, render_panel, stored_stats

pytestmark = [pytest.mark.django_db(databases=["default", "other"]), pytest.mark.usefixtures("pizzeria")]


@dataclass(frozen=True)
class Case:
    url: str
    status: int = 200
    asgi: bool = False  # through AsyncClient (the ASGI handler, async middleware path)
    toolbar: bool = True  # an HTML page the toolbar is inserted into
    relations: tuple = ()  # relations the panel must report as N+1


CASES = {
    # raw SQL and SQL the parser cannot read
    "raw cursor SQL": Case("/faults/raw-cursor/"),
    "SELECT 1 repeated": Case("/faults/select-one/"),
    "unparsable and odd statements": Case("/faults/weird-sql/"),
    "vendor-specific SQL (PRAGMA / SHOW)": Case("/faults/vendor-sql/"),
    "CTE": Case("/faults/cte/"),
    "recursive CTE": Case("/faults/recursive-cte/"),
    "window functions": Case("/faults/window/"),
    "UNION / INTERSECT / EXCEPT": Case("/faults/union/"),
    "unicode SQL and identifiers": Case("/faults/unicode-sql/"),
    "failing queries caught by the view": Case("/faults/failing-query/", relations=("shop.Order.customer",)),
    "unknown and unmodelled tables": Case("/faults/unknown-table/"),
    "two database aliases": Case("/faults/multi-alias/", relations=("shop.Order.customer",)),
    "non-str SQL (psycopg Composed / bytes)": Case("/faults/non-str-sql/"),
    "values formatted into the SQL text": Case("/faults/literal-sql/"),
    # parameters of every odd type
    **{f"params: {kind}": Case(f"/faults/params/{kind}/") for kind in PARAM_VALUES},
    "named parameters": Case("/faults/named-params/"),
    "statement text the driver refuses": Case("/faults/surrogate-sql/"),
    "identifier the driver cannot encode": Case("/faults/surrogate-identifier/"),
    # size
    "1 MB statement": Case("/faults/huge-statement/"),
    "10,000-item IN lists": Case("/faults/huge-in-list/"),
    "1,000 queries": Case("/faults/many-queries/1000/"),
    # responses
    "view raises after querying": Case("/faults/raises/", status=500),
    "Http404 after querying": Case("/faults/http404/", status=404, relations=("shop.Order.customer",)),
    "PermissionDenied": Case("/faults/permission-denied/", status=403),
    "redirect": Case("/faults/redirect/", status=302, toolbar=False, relations=("shop.Order.customer",)),
    "JsonResponse": Case("/faults/json/", toolbar=False, relations=("shop.Order.customer",)),
    "no queries at all": Case("/faults/empty/"),
    "StreamingHttpResponse querying while streaming": Case("/faults/streaming/", toolbar=False),
    "FileResponse": Case("/faults/file/", toolbar=False, relations=("shop.Order.customer",)),
    "FileResponse with text/html": Case("/faults/file-html/", toolbar=False),
    # ORM shapes
    "SQL VIEW without a primary key": Case("/faults/sql-view/"),
    "Model.objects.raw loops": Case("/faults/raw-queryset/"),
    "values() / values_list() loops": Case("/faults/values-loop/"),
    "iterator()": Case("/faults/iterator/", relations=("shop.Order.customer",)),
    "select_for_update in atomic": Case("/faults/select-for-update/", relations=("shop.Order.customer",)),
    "bulk_create / update / delete / save loops": Case("/faults/bulk-writes/"),
    "executemany": Case("/faults/executemany/"),
    "QuerySet.explain()": Case("/faults/explain/"),
    "Subquery / Exists / Count per row": Case("/faults/subquery/"),
    "IntegrityError caught in atomic": Case("/faults/integrity-error/"),
    "pickled querysets and instances": Case("/faults/pickle/"),
    "a thread of the view queries": Case("/faults/thread-in-view/", relations=("shop.Order.customer",)),
    "signal receiver queries": Case("/faults/signal-handler/"),
    "dangling generic FKs and DoesNotExist loops": Case("/faults/dangling-gfk/", relations=("shop.Review.target",)),
    # call sites and stacks
    "queries 600 frames deep": Case("/faults/deep-stack/", relations=("shop.Order.customer",)),
    "call sites in exec()'d code and generators": Case("/faults/generated-code/",
                                                       relations=("shop.Order.customer", "shop.Order.pizzas")),
    "1,000 distinct call sites": Case("/faults/distinct-stacks/"),
    # templates
    "template with invalid variables": Case("/faults/template-invalid/", relations=("shop.Order.customer",)),
    "template raises while rendering": Case("/faults/template-raises/", status=500),
    # the package's own API inside the request
    "ignore_n_plus_one() in the view": Case("/faults/ignored/"),
    "detect() in the view": Case("/faults/nested-detect/", relations=("shop.Order.pizzas",)),
    "the view requests another page in-process": Case("/faults/sub-request/", relations=("shop.Order.pizzas",)),
    "hostile SQL text, parameters and aliases": Case("/faults/xss/"),
    # ASGI
    "async view: N+1 through sync_to_async": Case("/faults/async/forward-fk/", asgi=True,
                                                  relations=("shop.Order.customer",)),
    "async ORM: aget / acount / afirst / async for": Case("/faults/async/orm/", asgi=True),
    "async view raises after querying": Case("/faults/async-raises/", status=500, asgi=True,
                                             relations=("shop.Order.customer",)),
    "async streaming response": Case("/faults/async-streaming/", asgi=True, toolbar=False),
    "sync view under ASGI: raw cursor": Case("/faults/raw-cursor/", asgi=True),
    "sync view under ASGI: iterator()": Case("/faults/iterator/", asgi=True, relations=("shop.Order.customer",)),
    "sync view under ASGI: raises": Case("/faults/raises/", status=500, asgi=True, relations=("shop.Order.customer",)),
}


@dataclass
class Result:
    response: object
    content: bytes
    request_id: str
    stats: dict
    html: str

    @property
    def summary(self) -> dict:
        return self.stats["report"]["summary"]

    def relations(self, kind: str = "n_plus_one") -> list:
        return [f["relation"] for f in self.stats["report"]["findings"] if f["kind"] == kind]


def request(url: str, *, status: int = 200, asgi: bool = False, cookies: dict | None = None) -> tuple:
    """One request through the toolbar; exceptions reach the test unless the view means a 500."""
    get_store().clear()
    raise_exc = status != 500
    if asgi:
        client = AsyncClient(raise_request_exception=raise_exc)
        client.cookies.load(cookies or {})
        response = async_to_sync(client.get)(url)
    else:
        client = Client(raise_request_exception=raise_exc)
        client.cookies.load(cookies or {})
        response = client.get(url)
    assert response.status_code == status, (response.status_code, url)
    if getattr(response, "streaming", False):
        if asgi:
            async def consume():
                return b"".join([chunk async for chunk in response.streaming_content])

            content = async_to_sync(consume)()
        else:
            content = b"".join(response.streaming_content)
        response.close()
    else:
        content = response.content
    # The toolbar names its request in the page; other responses are the latest stored request.
    match = re.search(rb'data-request-id="([^"]+)"', content)
    return response, content, match.group(1).decode() if match else latest_request_id()


def check(case: Case, cookies: dict | None = None) -> Result:
    response, content, request_id = request(case.url, status=case.status, asgi=case.asgi, cookies=cookies)
    if case.toolbar:
        assert b'id="djDebug"' in content, content[-500:]
    stats = stored_stats(request_id)
    assert stats, "the panel stored no stats"
    assert stats["error"] is None, stats["error"]
    assert stats["report"]["summary"]["dropped"] == 0
    html = render_panel(Client(), request_id)
    assert "Traceback (most recent call last)" not in html
    assert "ddtpp-error" not in html
    assert "No repeated queries." in html or 'data-ddtpp-finding="1"' in html
    assert ("No repeated queries." in html) == (not stats["report"]["findings"])
    return Result(response, content, request_id, stats, html)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_fault_is_isolated(case):
    result = check(case)
    for relation in case.relations:
        assert relation in result.relations(), result.relations()


# --------------------------------------------------------------------------- what the cases must show


def test_raw_cursor_loop_is_reported():
    result = check(CASES["raw cursor SQL"])
    assert result.summary["queries"] == 11
    assert result.summary["n_plus_one"] == 1
    [finding] = result.stats["report"]["findings"]
    assert "shop_customer" in finding["sql"]


def test_failed_statements_are_counted_not_fatal():
    result = check(CASES["failing queries caught by the view"])
    assert result.summary["errors"] >= 7  # 3 syntax errors, 3 unknown columns, 1 ORM extra()
    assert result.relations() == ["shop.Order.customer"]


def test_second_alias_is_captured_and_named():
    result = check(CASES["two database aliases"])
    aliases = {f["alias"] for f in result.stats["report"]["findings"]}
    assert aliases == {"default", "other"}
    assert "shop.Customer.review_set" in result.relations()
    assert "(other)" in result.html


def test_values_formatted_into_the_sql_are_still_an_n_plus_one():
    """Ten statements from one line that differ only in an inlined literal are one N+1, not nothing."""
    result = check(CASES["values formatted into the SQL text"])
    counts = sorted(f["count"] for f in result.stats["report"]["findings"] if f["kind"] == "n_plus_one")
    assert counts == [10, 12], result.stats["report"]["findings"]


def test_streaming_response_streams_to_the_end():
    result = check(CASES["StreamingHttpResponse querying while streaming"])
    assert result.content.endswith(b"<p>streamed to the end</p></body></html>")
    assert result.content.count(b"<li>") == 10
    assert b"djDebug" not in result.content
    # Only the query run before the response was returned belongs to the request.
    assert result.summary["queries"] == 1


def test_file_response_is_complete():
    result = check(CASES["FileResponse"])
    assert len(result.content.splitlines()) == 10 * 1000
    assert result.response["Content-Disposition"].startswith("attachment")


def test_view_that_raises_still_stores_its_findings():
    result = check(CASES["view raises after querying"])
    assert result.relations() == ["shop.Order.customer"]


def test_ignore_n_plus_one_in_a_view_counts_but_does_not_report():
    result = check(CASES["ignore_n_plus_one() in the view"])
    assert result.summary["n_plus_one"] == 0
    assert result.summary["ignored"] == 11


def test_detect_inside_a_request_reports_its_own_block():
    views.SEEN.clear()
    result = check(CASES["detect() in the view"])
    [seen] = [s for s in views.SEEN if s["view"] == "nested-detect"]
    assert seen["relations"] == ["shop.Order.customer"]
    assert seen["queries"] == 11
    assert b"inner findings: [&#x27;shop.Order.customer&#x27;]" in result.content
    assert "shop.Order.pizzas" in result.relations()


def test_panel_still_sees_the_queries_inside_a_views_detect_block():
    """A detect() block in the view (or in a library it calls) must not hide its queries from the panel."""
    result = check(CASES["detect() in the view"])
    assert result.summary["queries"] == 22
    assert sorted(result.relations()) == ["shop.Order.customer", "shop.Order.pizzas"]


@pytest.mark.parametrize("show_params", [False, True])
def test_hostile_sql_is_escaped_in_the_panel(show_params):
    with override_settings(DDT_PREFETCH_PANEL={"SHOW_PARAMS": show_params}):
        result = check(CASES["hostile SQL text, parameters and aliases"])
    assert result.stats["report"]["findings"], "the hostile statements should be reported"
    assert HOSTILE not in result.html
    assert "<script" not in result.html.lower()
    if show_params:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in result.html


OTHER_PARAM_URLS = {"named": "/faults/named-params/", "surrogate-sql": "/faults/surrogate-sql/"}


@pytest.mark.parametrize("kind", [*PARAM_VALUES, *OTHER_PARAM_URLS])
def test_odd_parameters_with_show_params(kind):
    url = OTHER_PARAM_URLS.get(kind, f"/faults/params/{kind}/")
    with override_settings(DDT_PREFETCH_PANEL={"SHOW_PARAMS": True}):
        result = check(Case(url))
    assert result.summary["queries"] >= 4


def test_async_view_n_plus_one_is_found_through_asgi():
    result = check(CASES["async view: N+1 through sync_to_async"])
    [finding] = [f for f in result.stats["report"]["findings"] if f["kind"] == "n_plus_one"]
    assert finding["relation"] == "shop.Order.customer"
    assert finding["count"] == 10
    assert finding["callsite"]["filename"].endswith("faults/views.py")


def test_async_orm_loop_is_captured():
    result = check(CASES["async ORM: aget / acount / afirst / async for"])
    assert result.summary["queries"] == 1 + 1 + 10 + 10 + 1 + 1
    assert result.summary["n_plus_one"] >= 1


def test_template_with_string_if_invalid():
    templates = [{**settings.TEMPLATES[0], "OPTIONS": {**settings.TEMPLATES[0]["OPTIONS"],
                                                       "string_if_invalid": "INVALID[%s]"}}]
    with override_settings(TEMPLATES=templates):
        result = check(CASES["template with invalid variables"])
        empty = check(CASES["no queries at all"])
    assert b"INVALID[" in result.content
    assert "INVALID[" not in result.html, "the panel template reads a missing variable"
    assert "INVALID[" not in empty.html, "the panel template reads a missing variable"


# --------------------------------------------------------------------------- toolbar configurations

PANELS_WITHOUT_SQL = [p for p in settings.DEBUG_TOOLBAR_PANELS if p != "debug_toolbar.panels.sql.SQLPanel"]
SOME = ["raw cursor SQL", "failing queries caught by the view", "params: lone-surrogate", "params: object",
        "two database aliases", "view raises after querying", "async view: N+1 through sync_to_async",
        "hostile SQL text, parameters and aliases", "iterator()"]


@pytest.fixture
def fresh_panels():
    DebugToolbar._panel_classes = None
    yield
    DebugToolbar._panel_classes = None


SQL_PANEL_OFF = {
    "absent": ({"DEBUG_TOOLBAR_PANELS": PANELS_WITHOUT_SQL}, None),
    "our panel alone": ({"DEBUG_TOOLBAR_PANELS": ["ddt_prefetch_panel.panel.PrefetchPanel"]}, None),
    "DISABLE_PANELS": ({"DEBUG_TOOLBAR_CONFIG": {**settings.DEBUG_TOOLBAR_CONFIG,
                                                 "DISABLE_PANELS": {"debug_toolbar.panels.sql.SQLPanel"}}}, None),
    "cookie djdtSQLPanel=off": ({}, {"djdtSQLPanel": "off"}),
}


@pytest.mark.parametrize("how", SQL_PANEL_OFF)
@pytest.mark.parametrize("name", SOME)
def test_without_ddt_sql_panel(fresh_panels, how, name):
    overrides, cookies = SQL_PANEL_OFF[how]
    with override_settings(**overrides):
        DebugToolbar._panel_classes = None
        result = check(CASES[name], cookies=cookies)
    for relation in CASES[name].relations:
        assert relation in result.relations()


@pytest.mark.parametrize("name", SOME)
def test_with_stacktraces_disabled(name):
    with override_settings(DEBUG_TOOLBAR_CONFIG={**settings.DEBUG_TOOLBAR_CONFIG, "ENABLE_STACKTRACES": False}):
        result = check(CASES[name])
    for relation in CASES[name].relations:
        assert relation in result.relations()


@pytest.mark.parametrize("show_params", [False, True], ids=["redacted", "SHOW_PARAMS"])
@pytest.mark.parametrize("name", SOME + ["statement text the driver refuses", "identifier the driver cannot encode"])
def test_panels_rendered_inline(fresh_panels, name, show_params):
    """RENDER_PANELS=True puts the panel's HTML into the page itself: it must be encodable and escaped.

    DDT's own SQL panel is left out: it breaks pages whose SQL holds a lone surrogate by itself.
    """
    config = {**settings.DEBUG_TOOLBAR_CONFIG, "RENDER_PANELS": True}
    with override_settings(DEBUG_TOOLBAR_CONFIG=config, DEBUG_TOOLBAR_PANELS=PANELS_WITHOUT_SQL,
                           DDT_PREFETCH_PANEL={"SHOW_PARAMS": show_params}):
        DebugToolbar._panel_classes = None
        result = check(CASES[name])
    assert b'class="ddtpp"' in result.content  # our panel's HTML is in the page
    assert HOSTILE.encode() not in result.content


OUR_PANEL_OFF = {
    "cookie djdtPrefetchPanel=off": ({}, {"djdtPrefetchPanel": "off"}),
    "DISABLE_PANELS": ({"DEBUG_TOOLBAR_CONFIG": {**settings.DEBUG_TOOLBAR_CONFIG,
                                                 "DISABLE_PANELS": {"ddt_prefetch_panel.panel.PrefetchPanel"}}}, None),
}


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
@pytest.mark.parametrize("how", OUR_PANEL_OFF)
def test_our_panel_turned_off_records_nothing(how, asgi):
    overrides, cookies = OUR_PANEL_OFF[how]
    views.SEEN.clear()
    with override_settings(**overrides):
        response, content, request_id = request("/faults/observe/", asgi=asgi, cookies=cookies)
    assert b'id="djDebug"' in content
    [seen] = views.SEEN
    assert seen["current"] is None
    assert seen["tag"] is None
    assert seen["instance_sources"] == [None, None, None]
    assert seen["wrapped"] == []
    assert stored_stats(request_id) == {}


def test_debug_true_technical_500_page():
    with override_settings(DEBUG=True):
        result = check(CASES["view raises after querying"])
    assert b"RuntimeError" in result.content


# --------------------------------------------------------------------------- volume
# DDT's own SQL panel needs ~50 s for 100,000 queries and ~5 s per 10,000 on this machine, so the
# heavy cases run with the history panel and ours only: what is measured is our package.

OUR_PANEL_ONLY = ["debug_toolbar.panels.history.HistoryPanel", "ddt_prefetch_panel.panel.PrefetchPanel"]


def timed(url: str) -> tuple[Result, float]:
    with override_settings(DEBUG_TOOLBAR_PANELS=OUR_PANEL_ONLY):
        DebugToolbar._panel_classes = None
        started = time.perf_counter()
        result = check(Case(url))
        return result, time.perf_counter() - started


@pytest.mark.parametrize("count, alias", [(10_000, "default"), (100_000, "other")])
def test_many_queries_in_one_request(fresh_panels, record_property, count, alias):
    """100,000 statements run on the in-memory SQLite alias, so the time measured is the capture's,
    not the database server's round trips (100,000 PostgreSQL round trips alone take ~11 s here)."""
    result, elapsed = timed(f"/faults/many-queries/{count}/?alias={alias}")
    record_property("seconds", round(elapsed, 2))
    print(f"\n{count:,} queries ({alias}) through the toolbar with our panel: {elapsed:.2f} s")
    assert result.summary["queries"] == count
    [finding] = result.stats["report"]["findings"]
    assert (finding["count"], finding["avoidable"], finding["alias"]) == (count, count - 1, alias)
    assert elapsed < 30


def test_more_root_querysets_than_the_capture_remembers(fresh_panels, monkeypatch):
    monkeypatch.setattr("ddt_prefetch_panel.capture.MAX_ROOTS", 50)
    result, elapsed = timed("/faults/many-roots/250/")
    assert result.summary["queries"] == 250
    assert result.summary["n_plus_one"] == 1


def test_ten_thousand_statements_differing_only_in_literals_are_reported(fresh_panels):
    result, elapsed = timed("/faults/distinct-sql/10000/")
    print(f"\n10,000 distinct statements: {elapsed:.2f} s")
    assert result.summary["queries"] == 10_000
    assert [f["count"] for f in result.stats["report"]["findings"] if f["kind"] == "n_plus_one"] == [10_000]


# --------------------------------------------------------------------------- security


@pytest.mark.django_db
def test_the_panels_only_endpoint_is_the_session_tab_behind_the_toolbar_check(client):
    """One read-only view (the "All requests" tab), wrapped like DDT's own views: it answers only
    where the toolbar is shown (see test_session_view_is_hidden_without_the_toolbar)."""
    [pattern] = PrefetchPanel.get_urls()
    assert pattern.name == "ddtpp_session"
    assert client.get("/__debug__/prefetch/session/").status_code == 200


@pytest.fixture
def toolbar_hidden():
    show_toolbar_func_or_path.cache_clear()
    with override_settings(DEBUG_TOOLBAR_CONFIG={**settings.DEBUG_TOOLBAR_CONFIG,
                                                 "SHOW_TOOLBAR_CALLBACK": "tests.faults.views.never_show"}):
        yield
    show_toolbar_func_or_path.cache_clear()


@pytest.mark.parametrize("asgi", [False, True], ids=["wsgi", "asgi"])
def test_capture_is_inactive_when_the_toolbar_is_not_shown(toolbar_hidden, asgi):
    views.SEEN.clear()
    get_store().clear()
    if asgi:
        response = async_to_sync(AsyncClient().get)("/faults/observe/")
    else:
        response = Client().get("/faults/observe/")
    assert response.status_code == 200
    assert b"djDebug" not in response.content
    [seen] = views.SEEN
    assert seen["current"] is None
    assert seen["tag"] is None
    assert seen["instance_sources"] == [None, None, None]
    assert seen["wrapped"] == []
    assert list(get_store().request_ids()) == []


@pytest.mark.django_db
def test_session_view_is_hidden_without_the_toolbar(toolbar_hidden, client):
    assert client.get("/__debug__/prefetch/session/").status_code == 404

