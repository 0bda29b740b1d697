"""The suite-wide report of the pytest plugin, on a sample suite run by pytester (with and without xdist)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sarif_pydantic import Sarif

from tests.halves import SQLITE_HALF_ONLY

pytestmark = SQLITE_HALF_ONLY  # pytester sessions on their own SQLite databases

ROOT = Path(__file__).resolve().parent.parent

SAMPLE = '''
import pytest
from shop.models import Order


@pytest.fixture
def orders(db):
    from shop.seed import seed

    seed(orders=5)


def customer_names():
    return [order.customer.name for order in Order.objects.order_by("pk")]


def test_list_page(orders):
    assert len(customer_names()) == 5


def test_export(orders):
    assert customer_names()


def test_pizzas(orders):
    for order in Order.objects.order_by("pk"):
        list(order.pizzas.all())


def test_fixed(orders):
    assert [o.customer.name for o in Order.objects.select_related("customer")]


def test_failing_still_reported(orders):
    for order in Order.objects.order_by("pk"):
        list(order.pizzas.all())
    assert False, "this test fails on purpose"
'''


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), str(ROOT / "demo")]))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.settings")
    # The sample suite's own SQLite databases: under `make test-postgres` the outer session already
    # holds the PostgreSQL test database the inner one would create.
    monkeypatch.delenv("DDTPP_POSTGRES_HOST", raising=False)
    pytester.makepyfile(test_sample=SAMPLE)
    return pytester


def _run(suite: pytest.Pytester, *args: str) -> pytest.RunResult:
    return suite.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", *args)


def _entries(path: Path) -> dict[str, dict]:
    data = json.loads(path.read_text())
    return {f"{f['relation']}@{f['callsite']['lineno']}": f for f in data["findings"]}


def test_json_report_lists_each_problem_once_with_its_tests(suite):
    result = _run(suite, "--n-plus-one-report=n1.json")
    result.assert_outcomes(passed=4, failed=1)
    entries = _entries(suite.path / "n1.json")
    customer = entries["shop.Order.customer@13"]
    assert customer["tests"] == ["test_sample.py::test_export", "test_sample.py::test_list_page"]
    assert customer["occurrences"] == 2 and customer["snippets"]["fix"] == '.select_related("customer")'
    pizzas = [e for e in entries.values() if e["relation"] == "shop.Order.pizzas"]
    assert sorted(t for e in pizzas for t in e["tests"]) == [
        "test_sample.py::test_failing_still_reported", "test_sample.py::test_pizzas"]
    assert not any("test_fixed" in t for e in entries.values() for t in e["tests"])
    result.stdout.fnmatch_lines(["*N+1 queries (ddt-prefetch-panel)*", "*N+1 shop.Order.customer at *test_sample.py:13*",
                                 '*fix at *test_sample.py:13: return [order.customer.name for order in Order.objects*'])


def test_markdown_and_sarif_by_extension(suite):
    _run(suite, "--n-plus-one-report=n1.md", "-k", "not failing")
    text = (suite.path / "n1.md").read_text()
    assert text.startswith("## ") and "| # | kind | relation | seen |" in text
    assert "; seen in 2 tests: `test_sample.py::test_export`, `test_sample.py::test_list_page`" in text
    _run(suite, "--n-plus-one-report=n1.sarif", "-k", "not failing")
    log = json.loads((suite.path / "n1.sarif").read_text())
    Sarif.model_validate(log)
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]}
    assert uris == {"test_sample.py"}


def test_fail_option_fails_a_green_session(suite):
    green = ["-k", "not failing"]
    assert _run(suite, *green).ret == 0
    result = _run(suite, "--n-plus-one-fail", *green)
    result.assert_outcomes(passed=4)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*--n-plus-one-fail: 2 N+1 problems remain*"])
    assert _run(suite, "--n-plus-one-fail", "-k", "fixed").ret == 0


def test_allowlisted_findings_do_not_fail(suite):
    suite.makeconftest('''
        import pytest

        @pytest.fixture(autouse=True)
        def allow_orders(settings):
            settings.DDT_PREFETCH_PANEL = {"ALLOW": [{"model": "shop.Order"}]}
    ''')
    result = _run(suite, "--n-plus-one-fail", "--n-plus-one-report=n1.json", "-k", "not failing")
    assert result.ret == 0
    assert json.loads((suite.path / "n1.json").read_text())["findings"] == []


def test_xdist_workers_are_merged(suite):
    pytest.importorskip("xdist")
    _run(suite, "--n-plus-one-report=serial.json")
    result = _run(suite, "-n", "2", "--n-plus-one-report=parallel.json")
    result.assert_outcomes(passed=4, failed=1)
    serial, parallel = _entries(suite.path / "serial.json"), _entries(suite.path / "parallel.json")
    assert parallel.keys() == serial.keys()
    for key in serial:
        assert parallel[key]["tests"] == serial[key]["tests"]
        assert parallel[key]["count"] == serial[key]["count"]


LOGIN = '''
import pytest
from django.contrib.auth.models import User


@pytest.mark.django_db
def test_logs_in(client):
    user = User.objects.create_user("staff", password="pw")
    client.force_login(user)  # the client's session, then login()'s key cycling: the same SQL twice
    client.logout()
    assert client.login(username="staff", password="pw")
'''


def test_logging_in_is_a_fixed_sequence_not_an_n_plus_one(suite):
    """Every test that logs in would carry two session "N+1s" into the report: the same INSERT and
    key check, once from the client's session and once from login(), each down its own path."""
    suite.makepyfile(test_login=LOGIN)
    result = _run(suite, "--n-plus-one-report=n1.json", "--n-plus-one-fail", "-W", "error::RuntimeWarning",
                  "test_login.py", "test_sample.py::test_pizzas")
    result.assert_outcomes(passed=2)
    findings = json.loads((suite.path / "n1.json").read_text())["findings"]
    assert [(f["relation"], f["tests"]) for f in findings] == [("shop.Order.pizzas", ["test_sample.py::test_pizzas"])]
