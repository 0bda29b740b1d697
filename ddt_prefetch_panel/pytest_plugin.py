"""pytest plugin (registered through the ``pytest11`` entry point).

* marker: ``@pytest.mark.no_n_plus_one(threshold=..., kinds=[...], allow=[...])`` runs the whole
  test inside ``assert_no_n_plus_one``;
* fixture: ``assert_no_n_plus_one`` gives the context manager, for one block of a test;
* ``--n-plus-one-report=PATH`` (``.md``, ``.json`` or ``.sarif``): every test's call runs under
  ``detect()``, and one suite-wide report lists each problem once with the tests that hit it;
  with pytest-xdist, workers send their findings to the controller, which writes the file;
* ``--n-plus-one-fail``: the session fails at the end if findings remain (after the allowlist);
* ``--n-plus-one-baseline=PATH`` (any JSON report of the package, e.g. an earlier
  ``--n-plus-one-report=PATH.json``): findings in it are known; the summary and the report say
  what is new, still there and fixed; with ``--n-plus-one-fail``, only new findings and query
  budgets exceeded (a test running more queries than the baseline recorded, beyond
  ``BUDGET_TOLERANCE``) fail the session;
* ``--n-plus-one-baseline-update``: rewrite the baseline with what is left (it only shrinks).

Nothing here imports Django at import time: pytest loads plugins before settings exist.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .baseline import Comparison

WORKER_KEY = "ddt_prefetch_panel_reports"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ddt-prefetch-panel", "N+1 queries (ddt-prefetch-panel)")
    group.addoption(
        "--n-plus-one-report", metavar="PATH", default=None,
        help="write one deduplicated report of the N+1 queries of every test to PATH "
             "(format from the extension: .md, .json or .sarif)",
    )
    group.addoption(
        "--n-plus-one-fail", action="store_true", default=False,
        help="fail the test session if any N+1 query remains (after the allowlist); with "
             "--n-plus-one-baseline, only new ones and exceeded query budgets",
    )
    group.addoption(
        "--n-plus-one-baseline", metavar="PATH", default=None,
        help="compare with a JSON report written before (e.g. --n-plus-one-report=PATH.json): its "
             "findings are known, the others new",
    )
    group.addoption(
        "--n-plus-one-baseline-update", action="store_true", default=False,
        help="rewrite the --n-plus-one-baseline file without the findings fixed since (never adds any)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "no_n_plus_one(threshold=None, kinds=None, allow=None): fail the test on N+1 queries "
        "(ddt-prefetch-panel test mode)",
    )
    baseline = config.getoption("n_plus_one_baseline", None)
    if config.getoption("n_plus_one_baseline_update", False) and not baseline:
        raise pytest.UsageError("--n-plus-one-baseline-update needs --n-plus-one-baseline=PATH")
    report = config.getoption("n_plus_one_report", None)
    if config.getoption("n_plus_one_baseline_update", False) and report and os.path.abspath(report) == \
            os.path.abspath(baseline):
        raise pytest.UsageError("--n-plus-one-baseline-update rewrites the baseline: give --n-plus-one-report "
                                "another path")
    if baseline and not hasattr(config, "workerinput") and not os.path.isfile(baseline):
        raise pytest.UsageError(f"--n-plus-one-baseline: no file {baseline}; record one with "
                                f"--n-plus-one-report={baseline}")
    if config.getoption("n_plus_one_report", None) or config.getoption("n_plus_one_fail", False) or baseline:
        config.pluginmanager.register(SuiteReport(config), "ddt_prefetch_panel_suite_report")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    marker = item.get_closest_marker("no_n_plus_one")
    if marker is None:
        return (yield)
    from .testing import assert_no_n_plus_one

    with assert_no_n_plus_one(**marker.kwargs):
        return (yield)


@pytest.fixture(name="assert_no_n_plus_one")
def assert_no_n_plus_one_fixture() -> Any:
    from .testing import assert_no_n_plus_one

    return assert_no_n_plus_one


class SuiteReport:
    """Findings of every test's call phase, merged (across xdist workers too) and written once."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.path: str | None = config.getoption("n_plus_one_report")
        self.fail: bool = config.getoption("n_plus_one_fail")
        self.baseline_path: str | None = config.getoption("n_plus_one_baseline")
        self.update: bool = config.getoption("n_plus_one_baseline_update")
        self.sources: list[tuple[dict, dict]] = []
        self.data: dict | None = None
        self.comparison: Comparison | None = None  # with a baseline

    @property
    def is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Any:
        from django.conf import settings

        if not settings.configured:
            return (yield)
        from .analyze import detect
        from .testing import DEFAULT_TEST_KINDS

        manager = detect(KINDS=list(DEFAULT_TEST_KINDS))
        report = manager.__enter__()
        source = {"test": item.nodeid}
        try:
            return (yield)
        except BaseException:
            # A failed test may have stopped before its loops: no budget, and its findings are
            # never claimed fixed by this run (session.aggregate).
            source["failed"] = True
            raise
        finally:
            manager.__exit__(None, None, None)  # analysed even when the test failed
            # Every test, with findings or not: its query count and statements are its budget.
            self.sources.append((source, report.to_dict()))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: a worker finished; take its findings."""
        payload = getattr(node, "workeroutput", {}).get(WORKER_KEY)
        if payload:
            self.sources += [(source, report) for source, report in json.loads(payload)]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            self.config.workeroutput[WORKER_KEY] = json.dumps(self.sources)
            return
        from . import baseline
        from .session import aggregate, format_for

        # Workers finish in any order: sort by test id so the report does not depend on it.
        self.data = aggregate(sorted(self.sources, key=lambda item: item[0].get("test", "")))
        if self.baseline_path:
            recorded = baseline.load(self.baseline_path)
            self.comparison = baseline.compare(self.data, recorded, _budget_tolerance())
            self.data = baseline.mark(self.data, self.comparison)
            if self.update:
                baseline.write(self.baseline_path, baseline.update(recorded, self.comparison, self.data))
        if self.path:
            with open(self.path, "w", encoding="utf-8") as handle:
                handle.write(baseline.render(self.data, format_for(self.path), root=str(self.config.rootpath)))
        if self.fail and self._failures() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _failures(self) -> list[str]:
        """What ``--n-plus-one-fail`` fails on, said in a few words each."""
        if self.comparison is None:
            failing = _failing(self.data["findings"])
            return [f"{len(failing)} N+1 problem{'s' if len(failing) != 1 else ''} remain"] if failing else []
        new, grown = _failing(self.comparison.new), self.comparison.budgets
        return ([f"{len(new)} new N+1 problem{'s' if len(new) != 1 else ''}"] if new else []) + (
            [f"{len(grown)} query budget{'s' if len(grown) != 1 else ''} exceeded"] if grown else [])

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or self.data is None:
            return
        from .findings import kind_title, where

        findings = self.data["findings"]
        terminalreporter.section("N+1 queries (ddt-prefetch-panel)")
        if self.comparison is not None:
            terminalreporter.write_line(f"Against {self.baseline_path}: {self.comparison.headline()}.")
            findings = self.comparison.new
            if findings:
                terminalreporter.write_line("New:")
        elif not findings:
            terminalreporter.write_line("No N+1 queries in the tests that ran.")
        ordered = sorted(findings, key=lambda entry: bool(entry.get("test_code")))  # tests' own loops last
        for entry in ordered[:20]:
            tests = len(entry.get("tests") or [])
            fix = (entry.get("snippets") or {}).get("line") or (entry.get("snippets") or {}).get("fix") or ""
            terminalreporter.write_line(
                f"{kind_title(entry['kind'])} {entry.get('relation') or entry.get('model')} at "
                f"{where(entry.get('callsite'))} ({tests} test{'s' if tests != 1 else ''}, "
                f"{entry['avoidable']} avoidable queries)" + (" [the test's own setup code]" if entry.get("test_code") else "")
                + (f"\n    fix{_at(entry.get('place'))}: {fix.splitlines()[0]}" if fix else "")
            )
        if len(findings) > 20:
            terminalreporter.write_line(f"... and {len(findings) - 20} more")
        if self.comparison is not None:
            self._comparison_summary(terminalreporter)
        if self.path:
            terminalreporter.write_line(f"Report written to {self.path}")
        if self.update:
            terminalreporter.write_line(f"Baseline {self.baseline_path} updated: "
                                        f"{len(self.comparison.fixed)} fixed findings removed")
        failures = self._failures()
        if self.fail and failures:
            terminalreporter.write_line(f"--n-plus-one-fail: {', '.join(failures)}", red=True)

    def _comparison_summary(self, terminalreporter: Any) -> None:
        from .baseline import SHORT_LIST, short_line

        for title, entries in (("Fixed", self.comparison.fixed), ("Known, still there", self.comparison.known)):
            if entries:
                terminalreporter.write_line(f"{title}:")
                for entry in entries[:SHORT_LIST]:
                    terminalreporter.write_line(f"  {short_line(entry).replace('`', '')}")
                if len(entries) > SHORT_LIST:
                    terminalreporter.write_line(f"  ... and {len(entries) - SHORT_LIST} more")
        for budget in self.comparison.budgets:
            terminalreporter.write_line(f"Query budget exceeded: {budget['key']}: {budget['before']} -> "
                                        f"{budget['after']} queries")
            for text in budget["statements"][:5]:
                terminalreporter.write_line(f"  new: {text}")


def _at(place: dict | None) -> str:
    """`` at file:line`` of a finding's place to act, when it is a line of the project."""
    from .findings import place_where

    if not place or place.get("kind") == "upstream" or not place.get("file"):
        return ""
    return f" at {place_where(place)}"


def _budget_tolerance() -> int:
    """``BUDGET_TOLERANCE`` of the project's settings (0 when Django is not configured)."""
    from django.conf import settings

    if not settings.configured:
        return 0
    from .conf import get_config

    return int(get_config()["BUDGET_TOLERANCE"])


def _failing(findings: list[dict]) -> list[dict]:
    """What --n-plus-one-fail fails on: as in test mode, not findings wholly inside a library
    (their queryset and loop are a package's), nor a test's own setup loops (``test_code``);
    the report still lists both, apart."""
    return [f for f in findings if not f.get("library") and not f.get("test_code")]

