#!/usr/bin/env python
"""Benchmark: what the panel costs on a page with N N+1 queries (GitHub issue 7, part 5).

Run with ``make bench`` (or ``.venv/bin/python tests/benchmarks/bench.py --help``). The
script configures Django itself (``tests/benchmarks/settings.py``: in-memory SQLite, the
demo's ``shop`` app), seeds customers and orders with ``bulk_create``, then requests
``/orders/?n=N`` (a view reading ``order.customer.name`` for N orders, each with its own
customer: 1 + N queries) through Django's test ``Client``, so the whole middleware path is
measured: DDT's middleware, the panels' instrumentation, ``generate_stats`` (our
analysis), the memory store's JSON serialisation and the toolbar's HTML.

Four configurations, alternated round-robin within every repetition so drift and noise
spread over all of them:

1. ``none``: no toolbar (middleware list without DDT);
2. ``sql``: the toolbar with DDT's SQL panel only;
3. ``sql+ours``: the SQL panel and ``PrefetchPanel``;
4. ``ours``: ``PrefetchPanel`` alone.

Separately: ``report.analyze()`` on a capture of the same loop (analysis time per query),
the capture alone (loop inside ``capture.capturing()`` against the bare loop), and a
``tracemalloc`` pass (one request per configuration at the largest N) for memory.
``--profile`` adds a cProfile of ``sql+ours`` and lists the package's hottest functions.

Progress goes to stderr; the Markdown report goes to stdout and to ``--output``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import math
import os
import platform
import pstats
import statistics
import sys
import time
import tracemalloc
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[2]
SQL_PANEL = "debug_toolbar.panels.sql.SQLPanel"
OUR_PANEL = "ddt_prefetch_panel.panel.PrefetchPanel"
DEFAULT_SIZES = (10, 100, 1_000, 10_000)
DEFAULT_ROWS = 10_000

# Targets from the brief (issue 7); DESIGN.md "Speed budget" asks for <= 1.08.
TARGET_RATIO = 1.10
TARGET_RATIO_AT = 1_000
TARGET_ANALYZE_US = 15.0


@dataclass(frozen=True)
class Config:
    key: str
    label: str
    panels: tuple[str, ...] | None  # None: no toolbar at all

    @property
    def panel_ids(self) -> list[str]:
        return [path.rsplit(".", 1)[1] for path in self.panels or ()]


CONFIGS = (
    Config("none", "no toolbar", None),
    Config("sql", "SQL only", (SQL_PANEL,)),
    Config("sql+ours", "SQL + ours", (SQL_PANEL, OUR_PANEL)),
    Config("ours", "ours only", (OUR_PANEL,)),
)
BY_KEY = {c.key: c for c in CONFIGS}


_STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:5.0f} s] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- setup


def setup_django() -> None:
    # Run as a script, sys.path[0] is this directory: make the repository and the demo
    # importable instead (``tests.benchmarks.settings``, ``shop``).
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.path[:0] = [str(ROOT), str(ROOT / "demo")]
    # Overrides pytest-django's tests.settings when the smoke test runs us.
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.benchmarks.settings"
    import django

    django.setup()


def create_schema_and_seed(rows: int) -> None:
    from datetime import UTC, datetime, timedelta

    from django.core.management import call_command
    from django.db import transaction
    from shop.models import Customer, Order

    call_command("migrate", verbosity=0, interactive=False, skip_checks=True)
    now = datetime(2025, 3, 1, 18, 0, tzinfo=UTC)
    with transaction.atomic():
        customers = Customer.objects.bulk_create(
            (Customer(name=f"Customer {i}", email=f"customer{i}@example.com", city="Bench") for i in range(rows)),
            batch_size=2_000,
        )
        # Order i belongs to customer i: every order.customer access is a query of its own.
        Order.objects.bulk_create(
            (Order(customer_id=c.pk, status="new", created=now - timedelta(minutes=i)) for i, c in enumerate(customers)),
            batch_size=2_000,
        )
    assert Order.objects.count() == rows and Customer.objects.count() == rows


class Bench:
    """Clients for both middleware stacks and the per-configuration switch."""

    def __init__(self) -> None:
        from django.conf import settings
        from django.test import Client, override_settings

        self.plain = Client()
        self.toolbar = Client()
        # The handler builds its middleware chain once: build each under its own setting.
        with override_settings(MIDDLEWARE=[]):
            self.plain.handler.load_middleware()
        with override_settings(MIDDLEWARE=list(settings.TOOLBAR_MIDDLEWARE)):
            self.toolbar.handler.load_middleware()

    @contextmanager
    def configured(self, config: Config) -> Iterator[Any]:
        """The client for ``config``, with DEBUG_TOOLBAR_PANELS switched while inside."""
        from debug_toolbar.store import get_store
        from debug_toolbar.toolbar import DebugToolbar
        from django.test import override_settings

        get_store().clear()
        if config.panels is None:
            yield self.plain
            return
        with override_settings(DEBUG_TOOLBAR_PANELS=list(config.panels)):
            DebugToolbar._panel_classes = None  # DDT's setting_changed receiver does it too
            try:
                yield self.toolbar
            finally:
                get_store().clear()
        DebugToolbar._panel_classes = None

    def request(self, config: Config, n: int, check: bool = False) -> tuple[float, float]:
        """(CPU, wall) seconds for one GET of the N+1 page (store cleared, GC run beforehand).

        With ``check``, also assert (after the timing) that the configuration really ran
        its intended panels and that they saw the 1 + N queries.
        """
        from debug_toolbar.store import get_store
        from debug_toolbar.toolbar import DebugToolbar

        created: list = []

        def receiver(sender: Any, toolbar: Any, **kwargs: Any) -> None:
            created.append(toolbar)

        if check:
            DebugToolbar._created.connect(receiver, weak=False)
        try:
            with self.configured(config) as client:
                gc.collect()
                cpu, wall = time.process_time(), time.perf_counter()
                response = client.get("/orders/", {"n": n})
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                assert response.status_code == 200, response.status_code
                if check:
                    self.verify(config, n, response, created)
        finally:
            if check:
                DebugToolbar._created.disconnect(receiver)
        get_store().clear()
        return cpu, wall

    @staticmethod
    def verify(config: Config, n: int, response: Any, created: list) -> None:
        from debug_toolbar.store import get_store

        content = response.content.decode()
        if config.panels is None:
            assert not created, "a toolbar was created without the middleware"
            assert 'id="djDebug"' not in content
            return
        assert len(created) == 1, f"{config.key}: expected one toolbar, got {len(created)}"
        toolbar = created[0]
        enabled = [p.panel_id for p in toolbar.enabled_panels]
        assert enabled == config.panel_ids, f"{config.key}: enabled panels {enabled}"
        assert 'id="djDebug"' in content, f"{config.key}: toolbar not inserted in the page"
        store = get_store()
        if SQL_PANEL in config.panels:
            queries = store.panel(toolbar.request_id, "SQLPanel").get("queries", [])
            assert len(queries) == n + 1, f"{config.key}: SQL panel saw {len(queries)} queries"
        if OUR_PANEL in config.panels:
            stats = store.panel(toolbar.request_id, "PrefetchPanel")
            assert not stats.get("error"), stats.get("error")
            report = stats["report"]
            assert report["summary"]["queries"] == n + 1, report["summary"]
            counts = [f["count"] for f in report["findings"] if f["kind"] == "n_plus_one"]
            assert counts == [n], f"{config.key}: N+1 findings {counts}"


# --------------------------------------------------------------------------- measurements


def spread_schedule(reps: dict[int, int]) -> list[list[int]]:
    """Rounds of sizes: every size's repetitions spread evenly over the whole run."""
    rounds = max(reps.values())
    schedule = []
    for k in range(rounds):
        schedule.append([n for n, r in reps.items() if (k + 1) * r // rounds > k * r // rounds])
    return schedule


def measure_requests(bench: Bench, sizes: list[int], reps: dict[int, int]) -> dict[tuple[str, int], list]:
    """(CPU, wall) seconds of every timed request, by (configuration key, N)."""
    samples: dict[tuple[str, int], list] = {(c.key, n): [] for c in CONFIGS for n in sizes}
    schedule = spread_schedule(reps)
    for k, round_sizes in enumerate(schedule):
        for n in round_sizes:
            shift = len(samples[(CONFIGS[0].key, n)]) % len(CONFIGS)
            for config in CONFIGS[shift:] + CONFIGS[:shift]:  # rotate who goes first
                # The first timed request of every (configuration, N) is also checked.
                runs = samples[(config.key, n)]
                runs.append(bench.request(config, n, check=not runs))
        if (k + 1) % max(1, len(schedule) // 10) == 0 or k + 1 == len(schedule):
            log(f"  round {k + 1}/{len(schedule)}")
    return samples


def measure_capture_and_analysis(n: int, reps: int, analyze_reps: int) -> tuple[float, float]:
    """(capture, analysis) CPU seconds for the N+1 loop (medians).

    Capture: the loop inside ``capturing()`` minus the bare loop, alternated ``reps`` times (median of the
    paired differences).
    Analysis: ``report.analyze()`` of one capture of the loop, run ``analyze_reps`` times.
    """
    from ddt_prefetch_panel.capture import capturing
    from ddt_prefetch_panel.conf import get_config
    from ddt_prefetch_panel.report import analyze
    from tests.benchmarks.urls import customer_names

    bare, captured, analysis = [], [], []
    for _ in range(reps):
        gc.collect()
        start = time.process_time()
        customer_names(n)
        bare.append(time.process_time() - start)
        gc.collect()
        start = time.process_time()
        with capturing() as capture:
            customer_names(n)
        captured.append(time.process_time() - start)
    config = get_config()
    report = None
    for _ in range(analyze_reps):
        gc.collect()
        start = time.process_time()
        report = analyze(capture, config)
        analysis.append(time.process_time() - start)
    assert report is not None and report.summary["queries"] == n + 1, report
    assert [f.count for f in report.by_kind("n_plus_one")] == [n], report.findings
    capture_cost = statistics.median(c - b for c, b in zip(captured, bare))
    return capture_cost, statistics.median(analysis)


def measure_memory(bench: Bench, n: int) -> dict[str, tuple[float, float]]:
    """Per configuration: (peak, retained) bytes traced during one request at size ``n``.

    Retained is what is still allocated after the request and a GC, before the store is
    cleared: mostly what the panels stored.
    """
    from debug_toolbar.store import get_store

    result = {}
    tracemalloc.start()
    try:
        for config in CONFIGS:
            with bench.configured(config) as client:
                gc.collect()
                tracemalloc.reset_peak()
                base, _ = tracemalloc.get_traced_memory()
                response = client.get("/orders/", {"n": n})
                assert response.status_code == 200
                del response
                _, peak = tracemalloc.get_traced_memory()
                gc.collect()
                current, _ = tracemalloc.get_traced_memory()
                result[config.key] = (peak - base, current - base)
            get_store().clear()
    finally:
        tracemalloc.stop()
    return result


def profile(bench: Bench, n: int, reps: int, top: int = 25) -> str:
    """cProfile of ``sql+ours`` at ``n``: the package's functions by cumulative time."""
    from debug_toolbar.store import get_store

    config = BY_KEY["sql+ours"]
    profiler = cProfile.Profile()  # perf_counter: a CPU-time timer is a syscall and distorts the profile
    for _ in range(reps):
        with bench.configured(config) as client:
            gc.collect()
            profiler.enable()
            client.get("/orders/", {"n": n})
            profiler.disable()
        get_store().clear()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    package = os.sep + "ddt_prefetch_panel" + os.sep
    rows = []
    total = 0.0
    for (filename, lineno, name), (cc, nc, tt, ct, _callers) in stats.stats.items():
        if name == "get" and filename.endswith(os.sep + "client.py"):
            total = max(total, ct)
        if package in filename:
            rows.append((ct, tt, nc, f"{os.path.relpath(filename, ROOT)}:{lineno} {name}"))
    rows.sort(reverse=True)
    own_total = sum(tt for _ct, tt, _nc, _where in rows)
    out = [
        f"### Profile: SQL + ours, N = {n:,} ({reps} requests under cProfile)",
        "",
        f"cProfile inflates small functions. Whole request under the profiler: {total / reps * 1000:.1f} ms; "
        f"own time of all package functions: {own_total / reps * 1000:.1f} ms "
        f"({own_total / reps / n * 1e6:.1f} µs/query; callees outside the package not included). "
        "Times per request; µs/query = time / N. The ORM hooks (`forward`, `wrapper`, `_tagging_iter`, "
        "`execute_sql`) wrap Django's own query: their cumulative time includes Django's work.",
        "",
        "By cumulative time:",
        "",
        "| function | calls/request | cumulative ms | own ms | cumulative µs/query |",
        "|---|---:|---:|---:|---:|",
    ]
    for ct, tt, nc, where in rows[:top]:
        out.append(f"| `{where}` | {nc / reps:,.0f} | {ct / reps * 1000:.2f} | {tt / reps * 1000:.2f} | "
                   f"{ct / reps / n * 1e6:.2f} |")
    out += [
        "",
        "By own time (the function's body, without callees):",
        "",
        "| function | calls/request | own ms | own µs/query |",
        "|---|---:|---:|---:|",
    ]
    for _ct, tt, nc, where in sorted(rows, key=lambda r: -r[1])[: top // 2]:
        out.append(f"| `{where}` | {nc / reps:,.0f} | {tt / reps * 1000:.2f} | {tt / reps / n * 1e6:.2f} |")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- report


def machine() -> list[str]:
    import debug_toolbar
    import django
    import sqlite3

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return [
        f"- Machine: {platform.platform()}, {os.cpu_count()} CPUs{f' ({cpu})' if cpu else ''}",
        f"- Package: {PACKAGE_VERSION or package_version()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), Django {django.__version__}, "
        f"django-debug-toolbar {debug_toolbar.VERSION}, SQLite {sqlite3.sqlite_version} (in-memory)",
    ]


PACKAGE_VERSION = ""  # taken at start-up: the code imported then is the code measured


def package_version() -> str:
    """The commit measured, and whether the package had uncommitted changes."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ddt_prefetch_panel"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "ddt_prefetch_panel (not a git checkout)"
    if not head:
        return "ddt_prefetch_panel (not a git checkout)"
    changed = sorted(line[3:] for line in dirty if line.strip())
    return f"ddt_prefetch_panel at {head}" + (f", uncommitted changes in {', '.join(changed)}" if changed else "")


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def render(sizes: list[int], reps: dict[int, int], rows: int, samples: dict, analysis: dict,
           memory: dict, elapsed: float) -> str:
    cpu = {key: statistics.median(t[0] for t in values) * 1000 for key, values in samples.items()}  # ms
    wall = {key: statistics.median(t[1] for t in values) * 1000 for key, values in samples.items()}

    def per_round(a: str, b: str, n: int, ratio: bool = False, clock: int = 0) -> list[float]:
        """a − b (ms) or a / b for every repetition, both from the same round."""
        pairs = zip(samples[(a, n)], samples[(b, n)])
        return [(x[clock] / y[clock]) if ratio else (x[clock] - y[clock]) * 1000 for x, y in pairs]

    def paired(a: str, b: str, n: int, ratio: bool = False, clock: int = 0) -> float:
        return statistics.median(per_round(a, b, n, ratio, clock))

    def spread(n: int) -> str:
        ratios = per_round("sql+ours", "sql", n, ratio=True)
        return f"{min(ratios):.2f}–{max(ratios):.2f}"

    out = ["## ddt-prefetch-panel benchmark", ""]
    out += machine()
    out += [
        f"- Page: `/orders/?n=N` reads `order.customer.name` for N orders, each with its own customer "
        f"(1 + N queries); {rows:,} orders and customers seeded. Requests through Django's test Client "
        "(full middleware path; DDT memory store cleared between requests; RENDER_PANELS default).",
        "- Repetitions per configuration: " + ", ".join(f"N={n:,}: {reps[n]}" for n in sizes)
        + "; the four configurations alternate (rotated) within each repetition; medians.",
        "- Times are process CPU time (less disturbed than wall clock by other processes, though a busy machine "
        "still adds noise: see the ratio spread); wall-clock medians below.",
        "- Overheads (µs/q = per query, divided by N) and the ratio are medians of per-repetition differences "
        "and ratios (paired within a round). capture = the loop inside `capture.capturing()` minus the bare loop; "
        "analyze = `report.analyze()` of that capture (CPU time, medians; capture pairs: "
        + ", ".join(f"N={n:,}: {capture_reps(n, reps[n])}" for n in sizes) + ").",
        f"- Total run time {elapsed:.0f} s.",
        "",
        "### Request time (median CPU ms) and overhead",
        "",
        "| N | no toolbar | SQL only | SQL + ours | ours only | SQL over none µs/q | (SQL+ours) over SQL µs/q "
        "| ours over none µs/q | (SQL+ours)/SQL | ratio min–max | capture µs/q | analyze µs/q |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        none, sql, both, ours = (cpu[(c.key, n)] for c in CONFIGS)
        capture_s, analyze_s = analysis.get(n, (math.nan, math.nan))
        out.append(
            f"| {n:,} | {fmt(none, 2)} | {fmt(sql, 2)} | {fmt(both, 2)} | {fmt(ours, 2)} "
            f"| {fmt(paired('sql', 'none', n) / n * 1000)} | {fmt(paired('sql+ours', 'sql', n) / n * 1000)} "
            f"| {fmt(paired('ours', 'none', n) / n * 1000)} | {paired('sql+ours', 'sql', n, ratio=True):.3f} "
            f"| {spread(n)} "
            f"| {fmt(capture_s / n * 1e6)} | {fmt(analyze_s / n * 1e6)} |"
        )
    out += [
        "",
        "### Wall clock (median ms)",
        "",
        "| N | " + " | ".join(c.label for c in CONFIGS) + " | (SQL+ours)/SQL |",
        "|---:|" + "---:|" * (len(CONFIGS) + 1),
    ]
    for n in sizes:
        values = [wall[(c.key, n)] for c in CONFIGS]
        out.append(f"| {n:,} | " + " | ".join(fmt(v, 2) for v in values)
                   + f" | {paired('sql+ours', 'sql', n, ratio=True, clock=1):.3f} |")
    if len(sizes) > 1:
        out += [
            "",
            "### Growth: marginal CPU cost per extra query between sizes (µs; constant = linear)",
            "",
            "| sizes | " + " | ".join(c.label for c in CONFIGS) + " | (SQL+ours) − SQL | analyze |",
            "|---|" + "---:|" * (len(CONFIGS) + 2),
        ]
        for a, b in zip(sizes, sizes[1:]):
            cells = [fmt((cpu[(c.key, b)] - cpu[(c.key, a)]) / (b - a) * 1000) for c in CONFIGS]
            over = (paired("sql+ours", "sql", b) - paired("sql+ours", "sql", a)) / (b - a) * 1000
            an = (analysis[b][1] - analysis[a][1]) / (b - a) * 1e6
            out.append(f"| {a:,} → {b:,} | " + " | ".join(cells) + f" | {fmt(over)} | {fmt(an)} |")
    if memory:
        largest = max(sizes)
        out += [
            "",
            f"### Memory: one request at N = {largest:,} (tracemalloc, separate pass)",
            "",
            "| configuration | peak MiB | retained after request MiB |",
            "|---|---:|---:|",
        ]
        for c in CONFIGS:
            peak, kept = memory[c.key]
            out.append(f"| {c.label} | {peak / 2**20:.1f} | {kept / 2**20:.2f} |")
        out.append("")
        out.append("Peak: highest traced allocation during the request above what was allocated before it. "
                   "Retained: still allocated after the request and a GC (mostly the stored panel data).")

    verdicts = []
    at = TARGET_RATIO_AT if TARGET_RATIO_AT in sizes else max(sizes)
    ratio = paired("sql+ours", "sql", at, ratio=True)
    verdicts.append(f"(SQL+ours)/(SQL only) at N={at:,}: {ratio:.3f} (target <= {TARGET_RATIO:.2f}; "
                    f"DESIGN.md <= 1.08): {'MET' if ratio <= TARGET_RATIO else 'MISSED'}"
                    + ("" if at == TARGET_RATIO_AT else f" (indicative: N={TARGET_RATIO_AT:,} not measured)"))
    big = [n for n in sizes if n >= 1_000]
    if big:
        worst = max(analysis[n][1] / n * 1e6 for n in big)
        where = "N >= 1,000 (worst)"
    else:
        worst = analysis[max(sizes)][1] / max(sizes) * 1e6
        where = f"N={max(sizes):,} (indicative: fixed costs dominate small N)"
    verdicts.append(f"analysis per query at {where}: {fmt(worst)} µs (target <= {TARGET_ANALYZE_US:.0f}): "
                    f"{'MET' if worst <= TARGET_ANALYZE_US else 'MISSED'}")
    if len(sizes) >= 2 and sizes[-2] >= 100:
        a, b = sizes[-2], sizes[-1]
        over = {n: paired("sql+ours", "sql", n) / n for n in (a, b)}
        growth = over[b] / over[a] if over[a] > 0 else math.nan
        exponent = math.log(analysis[b][1] / analysis[a][1]) / math.log(b / a)
        linear = growth <= 1.25 and exponent <= 1.15
        verdicts.append(f"linear growth: (SQL+ours)−SQL per query at N={b:,} / at N={a:,} = {growth:.2f} "
                        f"(<= 1.25), analyze time exponent {exponent:.2f} (1.00 = linear, <= 1.15): "
                        f"{'MET' if linear else 'MISSED'}")
    out += ["", "### Targets", ""] + [f"- {v}" for v in verdicts]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- main


def default_reps(n: int) -> int:
    """30 at N=10 and 100, 10 at 1,000, 3 at 10,000: about five minutes in all."""
    return max(3, min(30, 10_000 // n))


def capture_reps(n: int, reps: int) -> int:
    """Bare and captured loops for the capture column: 5 up to N=1,000, one pair at 10,000."""
    return max(1, min(reps, 5, 5_000 // n))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        help="comma-separated N values (default %(default)s)")
    parser.add_argument("--reps", type=int, default=None,
                        help="repetitions per (configuration, N); default 10000/N clamped to 3..30")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: the smallest size only, 2 repetitions")
    parser.add_argument("--rows", type=int, default=None,
                        help=f"orders/customers to seed (default max({DEFAULT_ROWS:,}, largest N))")
    parser.add_argument("--output", default=str(ROOT / "build" / "bench.md"),
                        help="Markdown report file (default %(default)s; '' for none)")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile 'SQL + ours' and list the package's hottest functions")
    parser.add_argument("--profile-n", type=int, default=1_000, help="N for --profile (default %(default)s)")
    parser.add_argument("--profile-reps", type=int, default=5, help="requests profiled (default %(default)s)")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error("--sizes takes integers, e.g. --sizes 10,100")
    if not args.sizes or min(args.sizes) < 1:
        parser.error("--sizes needs positive integers")
    if args.quick:
        args.sizes = args.sizes[:1]
        args.reps = args.reps or 2
    if args.reps is not None and args.reps < 1:
        parser.error("--reps must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    global PACKAGE_VERSION
    args = parse_args(argv)
    started = time.perf_counter()
    PACKAGE_VERSION = package_version()
    setup_django()
    rows = args.rows or max(DEFAULT_ROWS, max(args.sizes))
    if rows < max(args.sizes):
        log(f"error: --rows {rows} is smaller than the largest size {max(args.sizes)}")
        return 2
    log(f"seeding {rows:,} customers and orders (in-memory SQLite)")
    create_schema_and_seed(rows)
    bench = Bench()
    reps = {n: args.reps or default_reps(n) for n in args.sizes}

    log("warm-up and configuration checks")
    for config in CONFIGS:
        bench.request(config, min(args.sizes), check=True)

    log(f"timing requests: {', '.join(f'N={n:,} x{reps[n]}' for n in args.sizes)} per configuration")
    samples = measure_requests(bench, args.sizes, reps)

    log("timing capture and analyze()")
    analysis = {n: measure_capture_and_analysis(n, capture_reps(n, reps[n]), max(3, min(2 * reps[n], 20)))
                for n in args.sizes}

    memory = {}
    if not args.no_memory:
        log(f"memory pass (tracemalloc) at N={max(args.sizes):,}")
        memory = measure_memory(bench, max(args.sizes))

    text = render(args.sizes, reps, rows, samples, analysis, memory, time.perf_counter() - started)
    if args.profile:
        log(f"profiling SQL + ours at N={args.profile_n:,}")
        if args.profile_n > rows:
            log(f"error: --profile-n {args.profile_n} exceeds the {rows} seeded rows")
            return 2
        text += "\n" + profile(bench, args.profile_n, args.profile_reps)
    sys.stdout.write(text)
    sys.stdout.flush()
    if args.output:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        log(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
