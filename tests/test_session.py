"""The session: findings of many stored requests as one list, from either DDT store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from debug_toolbar.models import HistoryEntry
from debug_toolbar.store import get_store
from django.conf import settings as django_settings
from django.db import connection
from django.test import RequestFactory

from ddt_prefetch_panel.session import aggregate, render, session_context, session_report, session_view, to_markdown

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["debug_toolbar.store.MemoryStore", "debug_toolbar.store.DatabaseStore"])
def store(request, settings, pizzeria):
    settings.DEBUG_TOOLBAR_CONFIG = {**settings.DEBUG_TOOLBAR_CONFIG, "TOOLBAR_STORE_CLASS": request.param}
    store = get_store()
    database = store.__name__ == "DatabaseStore"
    if database:
        with connection.schema_editor() as editor:
            editor.create_model(HistoryEntry)
    store.clear()
    yield store
    store.clear()
    if database:
        with connection.schema_editor() as editor:
            editor.delete_model(HistoryEntry)


def _browse(client) -> None:
    client.get("/forward-fk/bad/")
    client.get("/forward-fk/bad/?page=2")
    client.get("/api/orders/bad/", headers={"x-requested-with": "XMLHttpRequest", "accept": "application/json"})
    client.get("/m2m/bad/")
    client.get("/forward-fk/fixed/")


def test_session_aggregates_by_relation_and_call_site(client, store):
    _browse(client)
    data = session_report()
    assert data["summary"]["reports"] == 5
    assert data["summary"]["pages"] == 4
    by_relation = {(f["kind"], f["relation"], f["callsite"]["filename"], f["callsite"]["lineno"]): f
                   for f in data["findings"]}
    customer = [f for key, f in by_relation.items() if key[1] == "shop.Order.customer"]
    # The page and the API view loop in different functions: two call sites, two entries.
    assert len(customer) == 2
    page = next(f for f in customer if f["pages"] == ["/forward-fk/bad/"])
    assert page["occurrences"] == 2 and len(page["requests"]) == 2
    single = next(f for f in customer if f["pages"] == ["/api/orders/bad/"])
    assert page["count"] == 2 * single["count"] and page["avoidable"] == 2 * single["avoidable"]
    assert page["snippets"]["fix"] == '.select_related("customer")'
    toppings = next(f for f in data["findings"] if f["relation"] == "shop.Pizza.toppings")
    assert toppings["occurrences"] == 1
    # Most avoidable queries first.
    assert [f["avoidable"] for f in data["findings"]] == sorted((f["avoidable"] for f in data["findings"]), reverse=True)
    assert json.loads(json.dumps(data)) == data


def test_session_view_renders_the_tab_and_exports(client, store, settings):
    _browse(client)
    settings.DDT_PREFETCH_PANEL = {"EDITOR_URL": "vscode"}
    request_id = list(store.request_ids())[0]
    response = session_view(RequestFactory().get("/", {"request_id": request_id}))
    html = json.loads(response.content)["content"]
    assert "shop.Order.customer" in html and "shop.Pizza.toppings" in html
    assert 'href="vscode://file/' in html
    assert "Copy as patch" in html and "--- a/demo/shop/views.py" in html
    for fmt, probe in (("md", "| kind |"), ("json", '"occurrences"'), ("sarif", '"2.1.0"')):
        response = session_view(RequestFactory().get("/", {"format": fmt}))
        assert response.status_code == 200
        assert probe in response.content.decode()
        assert "attachment" in response["Content-Disposition"]


def test_markdown_has_the_summary_table_first_and_where_each_was_seen(client, store):
    _browse(client)
    text = to_markdown(session_report())
    lines = text.splitlines()
    table = lines.index("| # | kind | relation | seen | count | avoidable | proof | where |")
    assert all(not line.startswith("###") for line in lines[:table])
    assert "; seen in 1 page: `/forward-fk/bad/`" in text


def test_best_proof_wins_and_totals_add_up():
    def finding(status: str | None, count: int) -> dict:
        return {"kind": "n_plus_one", "relation": "shop.Order.customer", "model": "shop.Order", "count": count,
                "avoidable": count - 1, "duration_ms": 1.0, "sql": "SELECT 1", "snippets": {"fix": status or "none"},
                "callsite": {"filename": "shop/views.py", "lineno": 3}, "stack": [], "origin": None,
                "proof": {"status": status, "before": count, "after": 1, "rows": count, "detail": ""} if status else None}

    data = aggregate([
        ({"request_id": "a", "url": "/a/"}, {"findings": [finding("failed", 4)]}),
        ({"request_id": "b", "url": "/b/?x=1"}, {"findings": [finding("verified", 6)]}),
        ({"test": "tests/test_x.py::test_y"}, {"findings": [finding(None, 3)]}),
    ])
    [entry] = data["findings"]
    assert entry["snippets"]["fix"] == "verified"
    assert (entry["count"], entry["avoidable"], entry["occurrences"]) == (13, 10, 3)
    assert entry["pages"] == ["/a/", "/b/"] and entry["tests"] == ["tests/test_x.py::test_y"]
    assert render(data, "json").startswith("{")
    with pytest.raises(ValueError):
        render(data, "html")


def test_context_marks_the_current_request(client, store):
    _browse(client)
    [first] = [str(rid) for rid in store.request_ids()
               if store.panel(rid, "HistoryPanel")["request_url"] == "/forward-fk/bad/"]
    context = session_context(session_report(), first)
    current = [f for f in context["findings"] if f["in_this_request"]]
    assert [f["relation"] for f in current] == ["shop.Order.customer"]


def test_database_store_session_survives_a_restart(tmp_path):
    """Requests made by one process are listed by the next one (DDT's database store)."""
    settings_module = tmp_path / "restart_settings.py"
    settings_module.write_text(textwrap.dedent(f"""
        from tests.settings import *  # noqa: F401,F403
        DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {str(tmp_path / 'db.sqlite3')!r}}}}}
        DEBUG_TOOLBAR_CONFIG = {{**DEBUG_TOOLBAR_CONFIG, "TOOLBAR_STORE_CLASS": "debug_toolbar.store.DatabaseStore"}}
    """))
    first = textwrap.dedent("""
        import django; django.setup()
        from django.core.management import call_command
        from django.test import Client
        call_command("migrate", verbosity=0)
        from shop.seed import seed
        seed(orders=6)
        Client().get("/forward-fk/bad/")
        Client().get("/m2m/bad/")
    """)
    second = textwrap.dedent("""
        import json, django; django.setup()
        from ddt_prefetch_panel.session import session_report
        print(json.dumps(session_report()))
    """)
    root = str(django_settings.BASE_DIR)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "restart_settings",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), root, os.path.join(root, "demo")])}
    for code in (first, second):
        result = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert data["summary"]["reports"] == 2
    assert {f["relation"] for f in data["findings"] if f["kind"] == "n_plus_one"} >= {
        "shop.Order.customer", "shop.Pizza.toppings"}


@pytest.mark.django_db
def test_report_markdown_of_six_findings_is_short(pizzeria):
    """A page's report pastes into a chat or a PR: summary table, then one line per finding."""
    from ddt_prefetch_panel import detect
    from shop import views

    request = RequestFactory().get("/")
    with detect(KINDS=["n_plus_one"]) as report:
        for name in ("forward_fk_bad", "m2m_bad", "nested_bad", "reverse_fk_bad", "count_per_row_bad",
                     "filtered_prefetch_bad"):
            getattr(views, name)(request)
    assert len(report.findings) == 6
    text = report.to_markdown()
    assert len(text.encode()) < 1536, text
    assert text.splitlines()[2] == "| # | kind | relation | count | avoidable | proof | where |"
    assert "SELECT …" in text and '"shop_pizza"."id"' not in text
    assert any('"shop_pizza"."id"' in f["sql"] for f in report.to_dict()["findings"])  # full SQL: JSON only


def test_session_url_is_served_under_the_toolbar(client, store):
    from django.urls import reverse

    _browse(client)
    url = reverse("djdt:ddtpp_session")
    assert url == "/__debug__/prefetch/session/"
    html = client.get(url).json()["content"]
    assert "shop.Order.customer" in html
    assert f'href="{url}?format=sarif"' in html
    assert len(list(store.request_ids())) == 5  # the tab's own request is not stored as a page
    assert client.get(url, {"format": "md"})["Content-Type"] == "text/markdown"


def test_the_download_json_is_a_baseline_for_the_crawl(client, store, tmp_path):
    """Browse with the toolbar, Download JSON from the tab, then crawl the same pages against it:
    the toolbar's findings and the crawl's are the same problems (same fingerprints)."""
    import io

    from django.core.management import call_command

    client.get("/forward-fk/bad/")
    client.get("/m2m/bad/")
    download = session_view(RequestFactory().get("/", {"format": "json"})).content.decode()
    data = json.loads(download)
    assert set(data["budgets"]) == {"/forward-fk/bad/", "/m2m/bad/"}
    (tmp_path / "session.json").write_text(download)
    out = io.StringIO()
    call_command("prefetch_report", "/forward-fk/bad/", "/m2m/bad/", "--baseline", str(tmp_path / "session.json"),
                 "--fail-on", "new", stdout=out, stderr=io.StringIO())
    assert out.getvalue().splitlines()[0] == \
        f"## ddt-prefetch-panel: 0 new N+1 problems, 0 fixed, {len(data['findings'])} known"
