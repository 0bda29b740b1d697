"""Issue 12 through the real toolbar: a DRF browsable API page, and the same origin whether
the viewset module was imported before the first request or inside it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.frameworks.catalog.seed import seed
from tests.frameworks.fakelib import ensure_installed
from tests.frameworks.lines import at, line_of
from debug_toolbar.store import get_store

from tests.toolbar import get_with_toolbar, latest_request_id, render_panel, stored_stats

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def catalog(db):
    seed(authors=4, books_per_author=3)


def test_drf_browsable_api_page_through_the_toolbar(client, catalog):
    get_store().clear()
    response = client.get("/fw/api/books/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    request_id = latest_request_id()
    assert b'id="djDebug"' in response.content
    assert b"Book List" in response.content  # the browsable API's HTML page
    findings = stored_stats(request_id)["report"]["findings"]
    [finding] = [f for f in findings if f["kind"] == "n_plus_one" and f["relation"] == "catalog.Book.author"]
    assert at(finding["callsite"], "catalog/api.py", "    author = AuthorBriefSerializer()")
    assert finding["callsite"]["function"] == "BookSerializer.author"
    assert at(finding["origin"], "catalog/api.py", "    queryset = Book.objects.all()")
    assert finding["library"] is False
    html = render_panel(client, request_id)
    assert "BookSerializer.author" in html
    assert "tests/frameworks/catalog/api.py" in html
    assert "queryset = Book.objects.all()" in html
    assert ".select_related(&quot;author&quot;)" in html


def test_library_only_findings_are_folded_with_the_package_name(client, catalog):
    ensure_installed()
    _, request_id = get_with_toolbar(client, "/fw/exports/library/")
    [finding] = [f for f in stored_stats(request_id)["report"]["findings"] if f["kind"] == "n_plus_one"]
    assert finding["library"] is True
    html = render_panel(client, request_id)
    folded = html[html.index("data-ddtpp-library"):]
    assert "In library code (1)" in folded
    assert "ddtpp_fakelib" in folded
    assert "catalog.Book.author" in folded


def test_user_built_queryset_looped_by_a_library_is_not_folded(client, catalog):
    ensure_installed()
    _, request_id = get_with_toolbar(client, "/fw/exports/visible/")
    [finding] = [f for f in stored_stats(request_id)["report"]["findings"] if f["kind"] == "n_plus_one"]
    assert finding["library"] is False
    html = render_panel(client, request_id)
    assert "data-ddtpp-library" not in html
    assert "catalog.Book.author" in html


@pytest.mark.parametrize("page, callsite", [
    ("drf", ("demo/shop/serializers.py", "OrderSerializer.customer")),
    ("jinja2", ("shop/orders.jinja", "root")),
])
def test_demo_framework_pages(client, pizzeria, page, callsite):
    """The demo's DRF and Jinja2 scenarios: the bad page names the serializer field or the
    template line, and its fix is verified; the fixed page has no N+1."""
    _, request_id = get_with_toolbar(client, f"/{page}/bad/")
    findings = [f for f in stored_stats(request_id)["report"]["findings"] if f["kind"] == "n_plus_one"]
    customer = next(f for f in findings if f["relation"] == "shop.Order.customer")
    assert (customer["callsite"]["filename"], customer["callsite"]["function"]) == callsite
    assert customer["origin"]["filename"] == "demo/shop/views.py"
    assert customer["proof"]["status"] == "verified"
    _, request_id = get_with_toolbar(client, f"/{page}/fixed/")
    assert not [f for f in stored_stats(request_id)["report"]["findings"] if f["kind"] == "n_plus_one"]


def test_framework_fix_places_are_labelled_in_the_panel(client, catalog):
    _, request_id = get_with_toolbar(client, "/fw/generic/books/")
    html = render_panel(client, request_id)
    assert "Override in your subclass" in html
    assert "def get_queryset(self):" in html


def _origin_line(request_id: str) -> int | None:
    findings = stored_stats(request_id)["report"]["findings"]
    [finding] = [f for f in findings if f["kind"] == "n_plus_one" and f["relation"] == "catalog.Book.author"]
    return finding["origin"]["lineno"] if finding["origin"] else None


def test_same_origin_after_a_warm_up_request(client, catalog):
    get_with_toolbar(client, "/fw/api/books/?format=json")
    _, request_id = get_with_toolbar(client, "/fw/api/books/?format=json")
    assert _origin_line(request_id) == line_of("catalog/api.py", "    queryset = Book.objects.all()")


ALONE = """
import sys

import pytest
from tests.frameworks.catalog.seed import seed
from tests.frameworks.lines import line_of
from tests.toolbar import get_with_toolbar, stored_stats


@pytest.mark.django_db
def test_first_request_of_the_process(client):
    assert {module!r} not in sys.modules  # imported by the first request, inside its capture
    seed(authors=3, books_per_author=2)
    _, request_id = get_with_toolbar(client, {path!r})
    findings = stored_stats(request_id)["report"]["findings"]
    [finding] = [f for f in findings if f["relation"] == "catalog.Book.author"]
    assert finding["origin"]["lineno"] == line_of({origin_file!r}, {origin_text!r})
    assert finding["callsite"]["function"] == {function!r}
"""

FIRST_REQUESTS = {
    "drf": dict(module="tests.frameworks.catalog.api", path="/fw/api/books/?format=json",
                origin_file="catalog/api.py", origin_text="    queryset = Book.objects.all()",
                function="BookSerializer.author"),
    "forms": dict(module="tests.frameworks.catalog.forms", path="/fw/forms/copy/",
                  origin_file="catalog/forms.py", origin_text="    book = forms.ModelChoiceField(",
                  function="CopyForm.book"),
}


@pytest.mark.parametrize("case", sorted(FIRST_REQUESTS))
def test_same_origin_when_the_first_request_imports_the_module(case, tmp_path):
    """A fresh process whose first request imports the URLconf (and the class whose body
    builds the queryset) inside the capture: the same origin as after a warm-up."""
    test_file = tmp_path / f"test_first_request_{case}.py"  # outside tests/: no other run collects it
    test_file.write_text(ALONE.format(**FIRST_REQUESTS[case]))
    # Its own test database name: on PostgreSQL this session's test database is in use.
    env = dict(os.environ, DDTPP_POSTGRES_DB=os.environ.get("DDTPP_POSTGRES_DB", "ddtpp") + f"_alone{os.getpid()}")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
         "-c", str(ROOT / "pyproject.toml"), str(test_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
