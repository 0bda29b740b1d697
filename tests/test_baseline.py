"""Baselines (baseline.py): a sample suite recorded, then changed the ways a team changes code,
run by pytester in a subprocess as a team runs it; and the comparison on plain report dicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ddt_prefetch_panel.baseline import Baseline, compare, from_document, mark, render, update
from ddt_prefetch_panel.findings import finding_fingerprint
from tests.halves import SQLITE_HALF_ONLY

ROOT = Path(__file__).resolve().parent.parent
# The sample suite runs on its own SQLite databases: the PostgreSQL half would repeat it exactly.

SAMPLE = '''
import pytest
from shop.models import Order


@pytest.fixture
def orders(db):
    from shop.seed import seed

    seed(orders=5)


def test_customers(orders):
    assert [order.customer.name for order in Order.objects.order_by("pk")]


def test_pizzas(orders):
    for order in Order.objects.order_by("pk"):
        list(order.pizzas.all())


def test_fixed(orders):
    assert [o.customer.name for o in Order.objects.select_related("customer")]
'''

NEW_TEST = '''

def test_cities(orders):
    assert [order.customer.city for order in Order.objects.order_by("-pk")]
'''

PIZZAS_LOOP = '''    for order in Order.objects.order_by("pk"):
        list(order.pizzas.all())'''
PIZZAS_FIXED = '''    for order in Order.objects.order_by("pk").prefetch_related("pizzas"):
        list(order.pizzas.all())'''


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "demo")]),
           "DJANGO_SETTINGS_MODULE": "tests.settings"}
    env.pop("DDTPP_POSTGRES_HOST", None)  # the sample suite's own SQLite databases
    return env


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sample suite's report, recorded once (in another directory than the runs compared with it)."""
    directory = tmp_path_factory.mktemp("recorded")
    (directory / "test_sample.py").write_text(SAMPLE)
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-q",
                    "--n-plus-one-report=base.json"], cwd=directory, env=_env(), check=True, capture_output=True)
    return (directory / "base.json").read_text()


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, recorded: str) -> pytest.Pytester:
    for key, value in _env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DDTPP_POSTGRES_HOST", raising=False)
    (pytester.path / "test_sample.py").write_text(SAMPLE)
    (pytester.path / "base.json").write_text(recorded)
    return pytester


def _run(suite: pytest.Pytester, *args: str) -> pytest.RunResult:
    return suite.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", *args)


def _record(suite: pytest.Pytester) -> dict:
    return json.loads((suite.path / "base.json").read_text())


def _edit(suite: pytest.Pytester, old: str, new: str) -> None:
    path = suite.path / "test_sample.py"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _relations(data: dict, state: str) -> list[str]:
    return sorted(f["relation"] for f in data["findings"] if f.get("baseline_state") == state)


@SQLITE_HALF_ONLY
def test_a_recorded_baseline_read_back_passes(suite):
    """Recorded in one directory, read back in another (test ids and fingerprints hold no directory)."""
    base = _record(suite)
    assert sorted(f["relation"] for f in base["findings"]) == ["shop.Order.customer", "shop.Order.pizzas"]
    assert set(base["budgets"]) == {"test_sample.py::test_customers", "test_sample.py::test_fixed",
                                    "test_sample.py::test_pizzas"}
    result = _run(suite, "--n-plus-one-baseline=base.json", "--n-plus-one-fail", "--n-plus-one-report=now.json")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*Against base.json: 0 new N+1 problems, 0 fixed, 2 known.*"])
    now = json.loads((suite.path / "now.json").read_text())
    assert _relations(now, "known") == ["shop.Order.customer", "shop.Order.pizzas"]
    assert now["baseline"]["new"] == [] and now["baseline"]["budgets"] == []


@SQLITE_HALF_ONLY
def test_lines_moved_above_every_finding_are_still_known(suite):
    base = _record(suite)
    _edit(suite, "import pytest\n", "import pytest\n" + "# moved\n\n" * 12)
    result = _run(suite, "--n-plus-one-baseline=base.json", "--n-plus-one-fail", "--n-plus-one-report=now.json")
    assert result.ret == 0, result.stdout.str()
    now = json.loads((suite.path / "now.json").read_text())
    assert _relations(now, "known") == ["shop.Order.customer", "shop.Order.pizzas"]
    lines = {f["relation"]: f["callsite"]["lineno"] for f in base["findings"]}
    assert all(f["callsite"]["lineno"] == lines[f["relation"]] + 24 for f in now["findings"])


@SQLITE_HALF_ONLY
def test_a_new_n_plus_one_fails_and_is_the_only_one_named_new(suite):
    _record(suite)
    (suite.path / "test_sample.py").write_text(SAMPLE + NEW_TEST)
    result = _run(suite, "--n-plus-one-baseline=base.json", "--n-plus-one-fail", "--n-plus-one-report=now.md")
    result.assert_outcomes(passed=4)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*Against base.json: 1 new N+1 problem, 0 fixed, 2 known.*", "New:",
        "N+1 shop.Order.customer at test_sample.py:27 in test_cities* (1 test, * avoidable queries)",
        "*--n-plus-one-fail: 1 new N+1 problem*",
    ])
    text = (suite.path / "now.md").read_text()
    new_section = text.split("### New (1)")[1].split("### Known, still there (2)")[0]
    assert "test_sample.py::test_cities" in new_section
    assert "test_customers" not in new_section and "test_pizzas" not in new_section
    assert text.splitlines()[0] == "## ddt-prefetch-panel: 1 new N+1 problem, 0 fixed, 2 known"


@SQLITE_HALF_ONLY
def test_a_fixed_finding_is_listed_and_the_update_drops_it(suite):
    base = _record(suite)
    pizzas = next(f["fingerprint"] for f in base["findings"] if f["relation"] == "shop.Order.pizzas")
    _edit(suite, PIZZAS_LOOP, PIZZAS_FIXED)
    (suite.path / "test_sample.py").write_text((suite.path / "test_sample.py").read_text() + NEW_TEST)

    # The test that had it failed before its loop: nothing is claimed, and its budget stays.
    _edit(suite, PIZZAS_FIXED, "    assert False, 'stops before the loop'\n" + PIZZAS_FIXED)
    failed = _run(suite, "--n-plus-one-baseline=base.json", "--n-plus-one-baseline-update")
    failed.stdout.fnmatch_lines(["*1 new N+1 problem, 0 fixed, 1 known (1 not checked*"])
    assert json.loads((suite.path / "base.json").read_text()) == base
    _edit(suite, "    assert False, 'stops before the loop'\n", "")
    # The test that had it did not run: nothing is claimed.
    partial = _run(suite, "--n-plus-one-baseline=base.json", "-k", "not pizzas", "--n-plus-one-report=partial.json")
    assert json.loads((suite.path / "partial.json").read_text())["baseline"]["fixed"] == []
    partial.stdout.fnmatch_lines(["*1 new N+1 problem, 0 fixed, 1 known (1 not checked*"])

    result = _run(suite, "--n-plus-one-baseline=base.json", "--n-plus-one-report=now.json",
                  "--n-plus-one-baseline-update")
    result.stdout.fnmatch_lines(["*1 new N+1 problem, 1 fixed, 1 known*", "Fixed:",
                                 "  N+1 shop.Order.pizzas at test_sample.py:1[0-9] in test_pizzas",
                                 "*Baseline base.json updated: 1 fixed findings removed*"])
    now = json.loads((suite.path / "now.json").read_text())
    assert [f["fingerprint"] for f in now["baseline"]["fixed"]] == [pizzas]
    updated = json.loads((suite.path / "base.json").read_text())
    # Dropped the fixed one, never added the new one (test_cities).
    assert [f["relation"] for f in updated["findings"]] == ["shop.Order.customer"]
    assert updated["summary"]["findings"] == 1
    assert "test_sample.py::test_cities" not in updated["budgets"]
    assert updated["budgets"]["test_sample.py::test_pizzas"]["queries"] < base["budgets"][
        "test_sample.py::test_pizzas"]["queries"]


@SQLITE_HALF_ONLY
def test_xdist_workers_are_compared_as_one_run(suite):
    """Fixed needs every test that had a finding to have run: on whichever worker it ran."""
    pytest.importorskip("xdist")
    base = _record(suite)
    (suite.path / "test_sample.py").write_text(SAMPLE.replace(PIZZAS_LOOP, PIZZAS_FIXED) + NEW_TEST)
    result = _run(suite, "-n", "2", "--n-plus-one-baseline=base.json", "--n-plus-one-report=now.json",
                  "--n-plus-one-fail")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*1 new N+1 problem, 1 fixed, 1 known*"])
    now = json.loads((suite.path / "now.json").read_text())
    fingerprints = {f["relation"]: f["fingerprint"] for f in base["findings"]}
    assert [f["fingerprint"] for f in now["baseline"]["fixed"]] == [fingerprints["shop.Order.pizzas"]]
    assert now["baseline"]["known"] == [fingerprints["shop.Order.customer"]]
    assert [f["tests"] for f in now["findings"] if f["baseline_state"] == "new"] == [["test_sample.py::test_cities"]]
    names = ("customers", "pizzas", "fixed", "cities")
    assert set(now["budgets"]) == {f"test_sample.py::test_{name}" for name in names}
    assert now["baseline"]["budgets"] == []  # each test's count does not depend on its worker


@SQLITE_HALF_ONLY
def test_a_budget_that_grows_is_listed_with_its_new_statement(suite):
    _record(suite)
    _edit(suite, '''    assert [o.customer.name for o in Order.objects.select_related("customer")]''',
          '''    assert [o.customer.name for o in Order.objects.select_related("customer")]
    assert not Order.objects.filter(status="lost").exists()''')
    result = _run(suite, "--n-plus-one-baseline=base.json", "--n-plus-one-fail", "--n-plus-one-report=now.md")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*0 new N+1 problems, 0 fixed, 2 known, 1 query budget exceeded*",
        "Query budget exceeded: test_sample.py::test_fixed: * -> * queries",
        '  new: SELECT … FROM "shop_order" WHERE "shop_order"."status" = ? LIMIT ?',
        "*--n-plus-one-fail: 1 query budget exceeded*",
    ])
    assert "### Query budgets exceeded (1)" in (suite.path / "now.md").read_text()
    # BUDGET_TOLERANCE absorbs it.
    suite.makepyfile(tolerant_settings='''
        from tests.settings import *  # noqa: F403

        DDT_PREFETCH_PANEL = {"BUDGET_TOLERANCE": 1}
    ''')
    tolerant = _run(suite, "--ds=tolerant_settings", "--n-plus-one-baseline=base.json", "--n-plus-one-fail")
    assert tolerant.ret == 0, tolerant.stdout.str()


@SQLITE_HALF_ONLY
def test_update_needs_a_baseline_and_a_missing_file_is_an_error(suite):
    result = _run(suite, "-p", "no:django", "--n-plus-one-baseline-update")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--n-plus-one-baseline-update needs --n-plus-one-baseline=PATH*"])
    missing = _run(suite, "-p", "no:django", "--n-plus-one-baseline=nowhere.json")
    missing.stderr.fnmatch_lines(["*no file nowhere.json; record one with --n-plus-one-report=nowhere.json*"])
    same = _run(suite, "-p", "no:django", "--n-plus-one-baseline=base.json", "--n-plus-one-baseline-update",
                "--n-plus-one-report=base.json")
    same.stderr.fnmatch_lines(["*--n-plus-one-baseline-update rewrites the baseline: give --n-plus-one-report *"])


# --------------------------------------------------------------------------- on plain data


def _finding(relation: str, lineno: int, tests: list[str], code: str = "for o in orders: o.customer") -> dict:
    entry = {"kind": "n_plus_one", "model": "shop.Order", "relation": relation, "sql": "SELECT 1",
             "callsite": {"filename": "shop/views.py", "lineno": lineno, "function": "orders", "code": code},
             "place": {"file": "shop/views.py", "line": 3, "code": "orders = Order.objects.all()", "kind": "queryset"},
             "avoidable": 9, "count": 10, "tests": tests}
    return {**entry, "fingerprint": finding_fingerprint(entry)}


def _data(findings: list[dict], budgets: dict[str, tuple[int, list[str]]]) -> dict:
    return {"version": 1, "summary": {"findings": len(findings)}, "findings": findings,
            "budgets": {key: {"queries": queries, "statements": shapes} for key, (queries, shapes) in budgets.items()},
            "statements": {"a1": "SELECT … FROM a", "b2": "SELECT … FROM b"}}


def test_finding_fingerprint_ignores_lines_directories_and_the_querysets_text():
    base = _finding("shop.Order.customer", 12, [])
    moved = {**base, "callsite": {**base["callsite"], "lineno": 40, "filename": "/elsewhere/checkout/shop/views.py"},
             "place": {**base["place"], "line": 31}}
    assert finding_fingerprint(moved) == finding_fingerprint(base) == base["fingerprint"]
    for changed in ({**base, "relation": "shop.Order.pizzas"}, {**base, "kind": "duplicate"},
                    {**base, "callsite": {**base["callsite"], "code": "for o in orders: o.customer.name"}},
                    {**base, "callsite": {**base["callsite"], "function": "export"}},
                    {**base, "place": {**base["place"], "file": "shop/api.py"}},
                    {**base, "origin": {"function": "export", "filename": "shop/views.py", "lineno": 3}}):
        assert finding_fingerprint(changed) != base["fingerprint"]
    # The queryset's line may change (another filter) without the problem becoming a new one.
    edited = {**base, "place": {**base["place"], "code": "orders = Order.objects.filter(paid=True)"}}
    assert finding_fingerprint(edited) == base["fingerprint"]
    # Without a relation, the SQL's shape tells problems apart, not its values.
    dup = {**base, "relation": None, "sql": "SELECT * FROM t WHERE id = 1"}
    assert finding_fingerprint(dup) == finding_fingerprint({**dup, "sql": "SELECT * FROM t WHERE id = 7"})
    assert finding_fingerprint(dup) != finding_fingerprint({**dup, "sql": "SELECT * FROM u WHERE id = 1"})


def test_compare_new_known_fixed_and_unchecked():
    customer = _finding("shop.Order.customer", 12, ["t::a"])
    pizzas = _finding("shop.Order.pizzas", 20, ["t::b"])
    lost = _finding("shop.Order.lines", 30, ["t::gone"])
    recorded = from_document(_data([customer, pizzas, lost], {"t::a": (5, ["a1"]), "t::b": (11, ["a1"])}))
    cities = _finding("shop.Customer.city", 40, ["t::c"])
    now = _data([{**customer, "callsite": {**customer["callsite"], "lineno": 99}}, cities],
                {"t::a": (5, ["a1"]), "t::b": (2, ["a1"]), "t::c": (3, ["b2"])})
    result = compare(now, recorded)
    assert [f["relation"] for f in result.new] == ["shop.Customer.city"]
    assert [f["relation"] for f in result.known] == ["shop.Order.customer"]
    assert [f["relation"] for f in result.fixed] == ["shop.Order.pizzas"]
    assert [f["relation"] for f in result.unchecked] == ["shop.Order.lines"]  # t::gone did not run
    assert result.headline() == ("1 new N+1 problem, 1 fixed, 1 known "
                                 "(1 not checked: not every test or page that had them ran)")
    document = update(recorded, result, now)
    assert [f["relation"] for f in document["findings"]] == ["shop.Order.customer", "shop.Order.lines"]
    assert document["budgets"] == {"t::a": {"queries": 5, "statements": ["a1"]},
                                   "t::b": {"queries": 2, "statements": ["a1"]}}
    assert document["statements"] == {"a1": "SELECT … FROM a"}


def test_budgets_grow_beyond_the_tolerance_only():
    recorded = from_document(_data([], {"t::a": (5, ["a1"])}))
    grown = _data([], {"t::a": (7, ["a1", "b2"]), "t::new": (50, ["b2"])})
    assert compare(grown, recorded).budgets == [
        {"key": "t::a", "before": 5, "after": 7, "statements": ["SELECT … FROM b"]}]
    assert compare(grown, recorded, tolerance=2).budgets == []
    assert compare(grown, recorded, tolerance=1).headline() == "0 new N+1 problems, 0 fixed, 0 known, " \
                                                               "1 query budget exceeded"
    # A budget that grew is never written back: the update only lowers them.
    assert update(recorded, compare(grown, recorded), grown)["budgets"]["t::a"]["queries"] == 5


def test_any_report_shape_is_a_baseline():
    from ddt_prefetch_panel.sarif import to_sarif

    customer = _finding("shop.Order.customer", 12, ["t::a"])
    for document in (_data([customer], {}), {"version": 1, "summary": {}, "findings": [customer], "fixes": []},
                     to_sarif([customer]), {"findings": [{k: v for k, v in customer.items() if k != "fingerprint"}]}):
        assert set(from_document(document).findings) == {customer["fingerprint"]}
    with pytest.raises(ValueError, match="no findings"):
        from_document({"hello": 1})


def test_the_pull_request_comment_of_ten_new_findings_is_under_4_kb(pizzeria):
    """Ten real findings of the demo (fix, proof, patch), all new against an empty baseline."""
    from django.test import Client

    from ddt_prefetch_panel import detect
    from ddt_prefetch_panel.session import aggregate

    client, sources = Client(), []
    for page in ("forward-fk", "reverse-fk", "m2m", "m2m-reverse", "o2o", "nested", "combined", "template-loop",
                 "filtered-prefetch", "count-per-row", "generic", "deferred"):
        with detect() as report:
            client.get(f"/{page}/bad/")
        sources.append(({"url": f"/{page}/bad/", "method": "GET"}, report.to_dict()))
    data = aggregate(sources)
    data["findings"] = [f for f in data["findings"] if f["kind"] == "n_plus_one" and f["snippets"].get("fix")][:10]
    assert len(data["findings"]) == 10
    comparison = compare(data, Baseline())
    text = render(mark(data, comparison), "md")
    assert text.splitlines()[0] == "## ddt-prefetch-panel: 10 new N+1 problems, 0 fixed, 0 known"
    assert text.count(". N+1 `shop.") == 10 and text.count("(verified: ") == 10
    assert len(text.encode()) < 4096, len(text.encode())
    # Fewer new findings leave room for their patch.
    two = {**data, "findings": data["findings"][:2]}
    assert "```diff\n--- a/demo/shop/views.py" in render(mark(two, compare(two, Baseline())), "md")
