"""Prove that ddt-prefetch-panel changes nothing in Django's and django-debug-toolbar's own tests.

    make compat                          # installs the suites' test dependencies, then runs this
    .venv/bin/python scripts/compat.py [--part django|ddt] [--parallel N] [--groups N] [--django-apps a,b]

Both suites come from the sdists of the *installed* Django and django-debug-toolbar (downloaded
with pip into build/compat/, only their ``tests/`` kept, one directory per version), and run
against the installed packages.

1. Django: ``tests/runtests.py`` on SQLite (its ``test_sqlite`` settings) for the ORM-heavy test
   apps of DJANGO_APPS, twice: plain, then with ``ddt_prefetch_panel`` in INSTALLED_APPS (its
   AppConfig.ready installs the ORM hooks) and every test method body run inside
   ``ddt_prefetch_panel.detect()`` (capture, then the full analysis with its replayed proofs, at
   the end of the body; async test bodies run inside it through Django's async_to_sync). Each
   run is a few runtests.py processes over groups of apps (--groups), each with --parallel.
2. django-debug-toolbar: its suite (``python -m django test tests`` with ``tests.settings``),
   plain, then with ``ddt_prefetch_panel`` in INSTALLED_APPS and its panel appended to the
   toolbar's default DEBUG_TOOLBAR_PANELS.

Each run's per-test outcome (pass, fail, error, skip, expected failure, unexpected success;
a failed subtest fails its test) is recorded by a unittest result class and written as JSON.
The script fails when any test's outcome differs between the two runs of a suite, unless the
test is in an allowlist below with its reason; each difference is printed with both outcomes
and the error of the run with the package. Tests that fail in both runs are listed, but are
not ours. It also fails when a passing test of a run with the package did not run inside
detect() (Django part), so the wrapping itself is checked.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "compat"
PANEL = "ddt_prefetch_panel.panel.PrefetchPanel"
APP = "ddt_prefetch_panel"
CHILD_ENV = "DDTPP_COMPAT_CHILD"

# Django's ORM-heavy test apps: relations, prefetching, inheritance, querysets, writes; then more
# of them (regressions, expressions, composite keys, signals, transactions, fixtures, formsets).
DJANGO_APPS = [
    "prefetch_related", "select_related", "select_related_onetoone", "known_related_objects",
    "many_to_one", "many_to_many", "many_to_one_null", "m2m_through", "one_to_one",
    "model_inheritance", "model_inheritance_regress", "proxy_models", "generic_relations",
    "generic_relations_regress", "custom_managers", "defer", "defer_regress", "queries", "lookup",
    "annotations", "aggregation", "foreign_object", "model_formsets", "admin_changelist",
    "serializers", "pagination", "async", "get_or_create", "update", "bulk_create", "delete",
    "multiple_database",
    "aggregation_regress", "select_related_regress", "expressions", "expressions_case",
    "filtered_relation", "m2m_regress", "m2m_recursive", "m2m_signals", "m2m_through_regress",
    "m2m_multiple", "m2m_intermediary", "m2o_recursive", "null_fk", "null_fk_ordering", "null_queries",
    "nested_foreign_keys", "reverse_lookup", "ordering", "raw_query", "custom_pk", "custom_columns",
    "basic", "save_delete_hooks", "signals", "transactions", "fixtures_regress", "model_regress",
    "update_only_fields", "force_insert_update", "from_db_value", "composite_pk", "queryset_pickle",
    "inline_formsets", "model_formsets_regress", "generic_inline_admin", "contenttypes_tests",
    "get_object_or_404", "string_lookup", "or_lookups", "dates", "datetimes", "delete_regress",
    "proxy_model_inheritance", "extra_regress",
]

# Differences that are not the package's doing. Each entry: test id -> (text that the error of
# the failing run must contain, reason). The difference is accepted only with that text, so the
# same test failing in another way is still reported.
FLAKY: dict[str, tuple[str, str]] = {
    "serializers.test_deserialization.TestDeserializer.test_crafted_xml_performance": (
        "not less than or equal to",
        ("times XML deserialisation at growing sizes with time.perf_counter() and asserts the mean "
         "growth ratio is <= 2; the timed loop runs no query, and with 2 busy cores the ratio "
         "drifts past 2 (it passes when run alone, with or without the package)"),
    ),
}

# django-debug-toolbar tests that hard-code the toolbar's panel list, its app list or the exact
# system check messages: they cannot pass with our app installed and our panel in the toolbar.
_SIDEBAR = ("'PrefetchPanel'",
            "asserts the history sidebar's panel ids are exactly DDT's default panels; ours is one more")
DDT_EXPECTED: dict[str, tuple[str, str]] = {
    "tests.panels.test_history.HistoryViewsTestCase.test_history_sidebar": _SIDEBAR,
    "tests.panels.test_history.HistoryViewsTestCase.test_history_sidebar_includes_history": _SIDEBAR,
    "tests.panels.test_history.HistoryViewsTestCase.test_history_sidebar_expired_request_id": _SIDEBAR,
    "tests.panels.test_staticfiles.StaticFilesPanelTestCase.test_default_case": (
        "'ddt_prefetch_panel'",
        ("asserts the apps with static files are exactly ['django.contrib.admin', 'debug_toolbar']; "
         "our app ships static files too")),
    "tests.test_checks.ChecksTestCase.test_panels_is_empty": (
        "ddt_prefetch_panel",
        ("asserts run_checks() returns only DDT's W005 with DEBUG_TOOLBAR_PANELS=[]; our W001 "
         "rightly adds that our panel is not in the list")),
}

OUTCOME_RANK = {"pass": 0, "skip": 1, "expected failure": 2, "unexpected success": 3, "fail": 4, "error": 5}


# --------------------------------------------------------------------------------------------
# Child side: runs inside the suite's process (and its parallel workers).
# --------------------------------------------------------------------------------------------

def _child_config() -> dict | None:
    raw = os.environ.get(CHILD_ENV)
    return json.loads(raw) if raw else None


def _make_recorder(out_path: str) -> type:
    """A TextTestResult that also keeps every test's outcome and writes them as JSON at the end.

    The parallel runner replays its workers' events on the parent's result, so the parent's
    instance sees every test.
    """
    import unittest

    class Recorder(unittest.TextTestResult):
        _exc_info_to_string: Any  # unittest.TestResult's, untyped

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.outcomes: dict[str, list[str]] = {}

        def _record(self, test: Any, outcome: str, detail: str = "") -> None:
            test_id = test.id()
            old = self.outcomes.get(test_id)
            if old is None or OUTCOME_RANK[outcome] > OUTCOME_RANK[old[0]]:
                self.outcomes[test_id] = [outcome, detail]

        def addSuccess(self, test: Any) -> None:
            super().addSuccess(test)
            self._record(test, "pass")

        def addFailure(self, test: Any, err: Any) -> None:
            super().addFailure(test, err)
            self._record(test, "fail", self._exc_info_to_string(err, test))

        def addError(self, test: Any, err: Any) -> None:
            super().addError(test, err)
            self._record(test, "error", self._exc_info_to_string(err, test))

        def addSkip(self, test: Any, reason: str) -> None:
            super().addSkip(test, reason)
            self._record(test, "skip", reason)

        def addExpectedFailure(self, test: Any, err: Any) -> None:
            super().addExpectedFailure(test, err)
            self._record(test, "expected failure")

        def addUnexpectedSuccess(self, test: Any) -> None:
            super().addUnexpectedSuccess(test)
            self._record(test, "unexpected success")

        def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
            super().addSubTest(test, subtest, err)
            if err is not None:
                kind = "fail" if issubclass(err[0], test.failureException) else "error"
                self._record(test, kind, f"subtest {subtest.id()}\n{self._exc_info_to_string(err, test)}")

        def stopTestRun(self) -> None:
            super().stopTestRun()
            Path(out_path).write_text(json.dumps(self.outcomes, indent=0, sort_keys=True))

    return Recorder


def _wrap_test_bodies(stats_path: str) -> None:
    """Run every test method body inside detect(); one JSON line per body goes to stats_path."""
    import unittest

    original = unittest.TestCase._callTestMethod  # type: ignore[attr-defined]
    if getattr(original, "_ddtpp_compat", False):
        return

    def _callTestMethod(self: Any, method: Any) -> Any:
        from ddt_prefetch_panel import detect

        analysed = False
        report = None
        try:
            with detect() as report:
                result = original(self, method)
            analysed = True
            return result
        finally:
            # Django runs an async test method through async_to_sync (capture follows its context).
            line = {"id": self.id(), "analysed": analysed, "async": hasattr(method, "awaitable")}
            if analysed and report is not None:
                line.update(queries=report.summary.get("queries", 0), findings=len(report.findings),
                            proofs=sum(1 for f in report.findings if f.proof))
            with open(stats_path, "a") as stream:  # O_APPEND: parallel workers share the file
                stream.write(json.dumps(line) + "\n")

    _callTestMethod._ddtpp_compat = True  # type: ignore[attr-defined]
    unittest.TestCase._callTestMethod = _callTestMethod  # type: ignore[attr-defined]


def _start_skipped_tests() -> None:
    """Number decorator-skipped tests in Django's parallel workers like every other test.

    A worker sends each outcome with the test's position, counted by startTest() calls. Python
    3.12.1 calls no startTest() for a skipped test (cpython #106588, reverted in 3.12.2), so the
    parent would file the outcomes of the next tests under their neighbours' ids.
    """
    import unittest

    from django.test.runner import RemoteTestResult

    if getattr(RemoteTestResult, "_ddtpp_compat", False):
        return
    start, skip = RemoteTestResult.startTest, RemoteTestResult.addSkip

    def startTest(self: Any, test: Any) -> None:
        self._ddtpp_started = test
        start(self, test)

    def addSkip(self: Any, test: Any, reason: str) -> None:
        if isinstance(test, unittest.TestCase) and getattr(self, "_ddtpp_started", None) is not test:
            startTest(self, test)
        skip(self, test, reason)

    RemoteTestResult.startTest, RemoteTestResult.addSkip = startTest, addSkip  # type: ignore[method-assign]
    RemoteTestResult._ddtpp_compat = True  # type: ignore[attr-defined]


def _prepare_child(config: dict) -> None:
    """Patch this process for the run; also runs in spawned workers (they import this module)."""
    suite_dir = config["suite_dir"]
    if suite_dir not in sys.path:
        sys.path.insert(0, suite_dir)
    with_panel = config["mode"] == "panel"
    _start_skipped_tests()
    if config["suite"] == "django":
        import runtests  # Django's tests/runtests.py, as a module: its main block does not run

        if with_panel and APP not in runtests.ALWAYS_INSTALLED_APPS:
            runtests.ALWAYS_INSTALLED_APPS.append(APP)
        if with_panel:
            _wrap_test_bodies(config["stats"])
    else:
        os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
        import tests.settings as ddt_settings  # django-debug-toolbar's; Django reads this module

        if with_panel and APP not in ddt_settings.INSTALLED_APPS:
            from debug_toolbar.settings import PANELS_DEFAULTS

            ddt_settings.INSTALLED_APPS = [*ddt_settings.INSTALLED_APPS, APP]
            ddt_settings.DEBUG_TOOLBAR_PANELS = [*PANELS_DEFAULTS, PANEL]


def _run_child(config: dict) -> int:
    from django.test.runner import DiscoverRunner

    recorder = _make_recorder(config["results"])
    DiscoverRunner.get_resultclass = lambda self: recorder  # type: ignore[method-assign]
    os.chdir(config["suite_dir"])
    if config["suite"] == "django":
        return _run_django_suite(config)
    from django.core.management import execute_from_command_line

    execute_from_command_line(["django-admin", "test", "--noinput", f"--parallel={config['parallel']}",
                               *config["labels"]])
    return 0


def _run_django_suite(config: dict) -> int:
    """What runtests.py's main block does for `runtests.py --parallel N --noinput LABELS`."""
    import inspect

    import runtests

    tmpdir = tempfile.mkdtemp(prefix="django_")
    tempfile.tempdir = os.environ["TMPDIR"] = tmpdir
    os.environ["DJANGO_SETTINGS_MODULE"] = "test_sqlite"
    try:
        wanted = {
            "verbosity": 1, "interactive": False, "failfast": False, "keepdb": False, "reverse": False,
            "test_labels": config["labels"], "debug_sql": False, "parallel": config["parallel"],
            "tags": None, "exclude_tags": None, "test_name_patterns": None, "start_at": None,
            "start_after": None, "pdb": False, "buffer": False, "timing": False, "shuffle": False,
        }
        params = inspect.signature(runtests.django_tests).parameters
        missing = [name for name, p in params.items()
                   if name not in wanted and p.default is inspect.Parameter.empty]
        if missing:
            raise SystemExit(f"compat: runtests.django_tests() wants unknown arguments {missing}")
        failures = runtests.django_tests(**{name: value for name, value in wanted.items() if name in params})
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return 1 if failures else 0


# --------------------------------------------------------------------------------------------
# Parent side: fetch the suites, run each twice, compare.
# --------------------------------------------------------------------------------------------

def fetch_tests(dist: str, version: str) -> Path:
    """build/compat/<dist>-<version>/ holding the sdist's tests/ (downloaded once per version)."""
    dest = BUILD / f"{dist.lower()}-{version}"
    if (dest / "tests").is_dir():
        return dest
    BUILD.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD) as tmp:
        print(f"compat: downloading the {dist} {version} sdist")
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        "--dest", tmp, f"{dist}=={version}"], check=True)
        (archive,) = Path(tmp).glob("*.tar.gz")
        with tarfile.open(archive) as tar:
            top = tar.getnames()[0].split("/")[0]
            members = [m for m in tar.getmembers() if m.name.startswith(f"{top}/tests/")]
            if not members:
                raise SystemExit(f"compat: the {dist} {version} sdist has no tests/ directory")
            tar.extractall(tmp, members=members, filter="data")
        staging = Path(tmp) / "staging"
        staging.mkdir()
        (Path(tmp) / top / "tests").rename(staging / "tests")
        try:
            staging.rename(dest)
        except OSError:  # another run extracted it meanwhile
            if not (dest / "tests").is_dir():
                raise
    return dest


class Run:
    """One run of a suite, as one process per group of test labels: outcomes, detect() stats, time."""

    def __init__(self, suite: str, mode: str, suite_dir: Path, groups: list[list[str]], parallel: int | str,
                 out: Path) -> None:
        self.suite, self.mode, self.groups, self.out = suite, mode, groups, out
        self.log = out / f"{suite}-{mode}.log"
        self.stats_path = out / f"{suite}-{mode}-detect.jsonl"
        self.config = {"suite": suite, "mode": mode, "suite_dir": str(suite_dir), "parallel": parallel,
                       "stats": str(self.stats_path)}
        self.outcomes: dict[str, list[str]] = {}
        self.stats: dict[str, dict] = {}
        self.seconds = 0.0

    def run(self) -> bool:
        label = "with the package" if self.mode == "panel" else "plain"
        print(f"   {label}: running (log: {self.log.relative_to(ROOT)})")
        self.log.unlink(missing_ok=True)
        self.stats_path.unlink(missing_ok=True)
        start = time.monotonic()
        for index, labels in enumerate(self.groups, 1):
            results = self.out / f"{self.suite}-{self.mode}-{index}.json"
            results.unlink(missing_ok=True)
            config = {**self.config, "labels": labels, "results": str(results)}
            with open(self.log, "a") as log:
                log.write(f"== group {index}/{len(self.groups)}: {' '.join(labels)}\n")
                log.flush()
                proc = subprocess.run([sys.executable, __file__], env={**os.environ, CHILD_ENV: json.dumps(config)},
                                      stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False)
            if not results.exists():
                print(f"   {label}: FAILED to run group {index} (exit {proc.returncode}); end of {self.log}:")
                print(indent("\n".join(self.log.read_text(errors="replace").splitlines()[-40:]), 6))
                return False
            self.outcomes.update(json.loads(results.read_text()))
        self.seconds = time.monotonic() - start
        if self.stats_path.exists():
            for line in self.stats_path.read_text().splitlines():
                entry = json.loads(line)
                self.stats[entry["id"]] = entry
        print(f"   {label}: {self.describe()}")
        return True

    def describe(self) -> str:
        counts: dict[str, int] = {}
        for outcome, _ in self.outcomes.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        parts = ", ".join(f"{counts[k]} {k}" for k in OUTCOME_RANK if counts.get(k))
        text = f"{len(self.outcomes)} tests in {self.seconds:.1f}s ({parts})"
        if self.stats:
            analysed = [s for s in self.stats.values() if s["analysed"]]
            in_async = [s for s in analysed if s["async"]]
            text += (f"; detect() around {len(self.stats)} test bodies, {len(analysed)} analysed: "
                     f"{sum(s['queries'] for s in analysed)} statements, "
                     f"{sum(s['findings'] for s in analysed)} findings, "
                     f"{sum(s['proofs'] for s in analysed)} with a proof "
                     f"(async bodies: {len(in_async)}, {sum(s['queries'] for s in in_async)} statements)")
        return text


def indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.rstrip().splitlines())


def short_error(detail: str, lines: int = 25) -> str:
    kept = detail.rstrip().splitlines()
    if len(kept) > lines:
        kept = ["...", *kept[-lines:]]
    return "\n".join(kept)


def is_allowed(test_id: str, a: list[str], b: list[str], allowed: dict[str, tuple[str, str]]) -> bool:
    """An allowlisted difference whose failing run(s) failed with the listed text."""
    if test_id not in allowed:
        return False
    text = allowed[test_id][0]
    failing = [detail for outcome, detail in (a, b) if outcome in ("fail", "error")]
    return bool(failing) and all(text in detail for detail in failing)


def compare(title: str, plain: Run, panel: Run, allowed: dict[str, tuple[str, str]], check_wrapped: bool) -> bool:
    """Print the differences between the runs; True when there is none outside `allowed`."""
    ok = True
    differing: list[tuple[str, list[str], list[str]]] = []
    tolerated: list[tuple[str, list[str], list[str]]] = []
    both_failing: list[tuple[str, list[str], list[str]]] = []
    for test_id in sorted(set(plain.outcomes) | set(panel.outcomes)):
        a = plain.outcomes.get(test_id, ["missing", ""])
        b = panel.outcomes.get(test_id, ["missing", ""])
        if a[0] != b[0]:
            (tolerated if is_allowed(test_id, a, b, allowed) else differing).append((test_id, a, b))
        elif a[0] in ("fail", "error", "unexpected success"):
            both_failing.append((test_id, a, b))
    if differing:
        ok = False
        print(f"\n   {len(differing)} test(s) of {title} differ with the package:")
        for test_id, a, b in differing:
            print(f"   DIFF {test_id}: plain {a[0]}, with the package {b[0]}")
            if b[0] in ("fail", "error", "skip"):
                print(indent(short_error(b[1]), 8))
            elif a[0] in ("fail", "error", "skip"):
                print(indent("plain run: " + short_error(a[1]), 8))
    for test_id, a, b in tolerated:
        print(f"   allowed: {test_id}: plain {a[0]}, with the package {b[0]}: {allowed[test_id][1]}")
    for test_id in sorted(set(allowed) - {t for t, _, _ in tolerated}):
        if test_id in plain.outcomes and plain.outcomes[test_id][0] == panel.outcomes.get(test_id, [""])[0]:
            print(f"   note: allowlisted {test_id}: same outcome in both runs this time")
    for test_id, a, _ in both_failing:
        last = a[1].rstrip().splitlines()[-1] if a[1] else ""
        print(f"   fails without the package too (not ours): {test_id}: {a[0]}: {last}")
    if check_wrapped:
        outside = sorted(t for t, (outcome, _) in panel.outcomes.items()
                         if outcome in ("pass", "unexpected success") and t not in panel.stats)
        if outside:
            ok = False
            print(f"\n   {len(outside)} passing test(s) did not run inside detect(), e.g.:")
            print(indent("\n".join(outside[:20]), 6))
    if ok:
        print(f"   same outcomes for all {len(panel.outcomes)} tests"
              + (f" ({len(tolerated)} allowlisted difference(s))" if tolerated else ""))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("django", "ddt"), action="append",
                        help="run only this part (repeatable); default: both")
    parser.add_argument("--parallel", default="auto",
                        help="processes for Django's suite: a number or 'auto' (one per core); default auto")
    parser.add_argument("--groups", type=int, default=4,
                        help="runtests.py processes the Django test apps are split into, one after the other "
                             "(SQLite's foreign key check after each test scans every installed table, so "
                             "smaller groups run faster); default 4")
    parser.add_argument("--django-apps", help="comma-separated Django test labels instead of the built-in list")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # in order with pip's output in CI logs
    parts = args.part or ["django", "ddt"]
    parallel = args.parallel if args.parallel == "auto" else int(args.parallel)

    import debug_toolbar
    import django

    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    out = BUILD / "runs" / f"py{python}-django{django.__version__}-ddt{debug_toolbar.VERSION}"
    out.mkdir(parents=True, exist_ok=True)
    print(f"compat: Python {sys.version.split()[0]}, Django {django.__version__}, "
          f"django-debug-toolbar {debug_toolbar.VERSION}; outputs in {out.relative_to(ROOT)}")
    ok = True
    timings = []
    if "django" in parts:
        suite_dir = fetch_tests("Django", django.__version__) / "tests"
        labels = args.django_apps.split(",") if args.django_apps else list(DJANGO_APPS)
        groups = [labels[i::args.groups] for i in range(min(args.groups, len(labels)))]
        print(f"\n== Django {django.__version__}: {len(labels)} test apps of runtests.py on SQLite "
              f"({len(groups)} runs of --parallel {parallel}), plain then with the package and detect() "
              "around each test body")
        plain, panel = (Run("django", mode, suite_dir, groups, parallel, out) for mode in ("plain", "panel"))
        if plain.run() and panel.run():
            ok &= compare("Django's suite", plain, panel, FLAKY, check_wrapped=True)
        else:
            ok = False
        timings += [("Django suite, plain", plain.seconds), ("Django suite, with the package", panel.seconds)]
    if "ddt" in parts:
        suite_dir = fetch_tests("django-debug-toolbar", debug_toolbar.VERSION)
        print(f"\n== django-debug-toolbar {debug_toolbar.VERSION}: its test suite, plain then with the app "
              "installed and the Prefetch panel in DEBUG_TOOLBAR_PANELS")
        plain, panel = (Run("ddt", mode, suite_dir, [["tests"]], 1, out) for mode in ("plain", "panel"))
        if plain.run() and panel.run():
            ok &= compare("django-debug-toolbar's suite", plain, panel, DDT_EXPECTED, check_wrapped=False)
        else:
            ok = False
        timings += [("DDT suite, plain", plain.seconds), ("DDT suite, with the package", panel.seconds)]
    print("\ncompat: wall times: " + ", ".join(f"{name} {seconds:.0f}s" for name, seconds in timings))
    print("compat: " + ("OK, the package changed no test outcome" if ok else "FAILED (see above)"))
    return 0 if ok else 1


_CHILD = _child_config()
if _CHILD is not None:
    _prepare_child(_CHILD)

if __name__ == "__main__":
    sys.exit(_run_child(_CHILD) if _CHILD is not None else main())
