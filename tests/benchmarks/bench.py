#!/usr/bin/env python
"""Benchmark: what the panel costs a development server, against the toolbar and the peers.

Run with ``make bench`` (which builds ``.venv-bench`` with django-zeal, nplusone and DRF) or
``python tests/benchmarks/bench.py --help``.

How it measures (issue 15):

- One long-lived **worker process per configuration** (``configs.py``), started with its
  own settings (``settings.py``) like a dev server. A worker calls Django's
  ``WSGIHandler`` (what ``runserver`` serves) with a WSGI environ for
  ``GET http://127.0.0.1:8000/...`` from ``REMOTE_ADDR`` 127.0.0.1, reads and closes the
  body (``request_finished`` fires). So the full path runs: DDT's middleware, the
  panels' instrumentation, ``generate_stats``, the store (DDT's ``MemoryStore`` with its
  default ``RESULTS_CACHE_SIZE``, never cleared) and the toolbar's HTML. No socket: the
  HTTP parsing a socket adds is the same for every configuration, and an HTTP client
  process would compete for the cores with the worker being timed.
- Only one worker runs at a time. Each **round** visits the configurations in a fresh
  random order; each visit is a **turn** of 6 requests whose **mean** is the sample, so
  the garbage collections that a configuration's allocations cause are paid where they
  happen. No ``gc.collect()`` anywhere in a timed turn.
- Ratios and differences are taken within a round (paired), then the median over rounds.
- Times are the worker's CPU time (``time.process_time``), which a busy shared machine
  disturbs less than the wall clock; wall-clock figures are reported too.
- Per request, ``gc.callbacks`` count full (generation 2) collections and time all
  collections; wrappers installed by the worker (not by the package) time our panel's
  ``generate_stats``, the store's ``save_panel`` for our panel, and replay proofs when
  ``ddt_prefetch_panel.prove`` exists.
- Peak memory: one request per configuration under ``tracemalloc`` (peak above the level
  before it), plus the peak RSS of the process during a request without tracemalloc. With
  lazy proofs a full store holds the last RESULTS_CACHE_SIZE requests' captures: that peak is
  measured with everything under tracemalloc from before the first of RESULTS_CACHE_SIZE + 1
  requests (``op_memory_full``), on the forward FK and on the manager shape.
- "Proofs off" configurations (``DDT_PREFETCH_PANEL["PROOFS"] = False``) show what the
  replay proofs cost; "ours" rows pin ``PROOF_MODE="eager"`` (proofs with every request, the
  worst case) and "lazy proofs" rows run the default (analysis only; the capture held until
  the panel is opened, which no benchmark request does).
- Loop shapes (issue 23, ``SHAPES``, pages in ``urls.py``): the forward FK runs at every N;
  the reverse FK through the manager (iterated, ``len()``), an M2M ``.all()``, a ``.count()``
  per row, a template loop and a DRF nested serializer list run at N = 1,000 with every
  configuration but the forward FK's breakdown rows (``SHAPE_SKIPS``). What each peer
  reported on each shape is kept from the checked request.
- Real pages: the demo's page with the most queries (found by the harness) and a DRF list
  with nested serializers (``api.py``), default panels with and without ours.
- Profile: ``py-spy`` (sampling; each sample pauses the worker, since non-blocking samples of
  CPython 3.11 read frames that change under them and gave impossible stacks) of ours alone at N = 1,000 (forward FK,
  manager and template shapes) and of default panels + ours on the DRF page, each sample
  attributed to capture, ORM hooks, analysis, store serialisation, DDT or the rest
  (``categorise``), and our capture and hook samples to a per-statement step (``step_of``).

Progress goes to stderr; the Markdown report goes to stdout and to ``--output``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
if __name__ == "__main__":  # run as a script: make ``tests.benchmarks`` and ``shop`` importable
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != str(HERE)]
    sys.path[:0] = [str(ROOT), str(ROOT / "demo")]

from tests.benchmarks.configs import BY_KEY, CONFIGS, Config  # noqa: E402

DEFAULT_SIZES = (10, 100, 1_000)
DEFAULT_LINEARITY = (10_000, 20_000)
TURN = 6
PEERS = ("zeal", "nplusone")
PAGE_CONFIGS = ("none", "default", "default+ours", "default+ours-noproofs", "default+ours-lazy")  # real pages
PAGE_ONLY = ("default+ours-noproofs", "default+ours-lazy")  # not run on the synthetic pages
SHAPE_SKIPS = ("ddt", "ours-noproofs")  # the forward FK's breakdown only: not run on the other shapes
OUR_PANEL_ID = "PrefetchPanel"
RESULTS_CACHE_SIZE = 25  # DDT's default, which settings.py keeps: the requests its store (and lazy.py) holds


@dataclass(frozen=True)
class Shape:
    """One loop shape of the synthetic N+1 (``urls.py``): its page runs 1 + per_row × N queries."""

    key: str
    label: str
    path: str
    loop: str
    per_row: int = 1
    needs: str = ""  # a module the page needs (DRF)


SHAPES = (
    Shape("fk", "forward FK", "/orders/", "`order.customer.name`"),
    Shape("manager", "reverse FK, manager iterated", "/shape/manager/", "`for p in order.pizzas.all()`"),
    Shape("len", "reverse FK, len()", "/shape/len/", "`len(order.pizzas.all())`"),
    Shape("m2m", "M2M .all()", "/shape/m2m/", "`for t in customer.favorite_toppings.all()`"),
    Shape("count", ".count() per row", "/shape/count/", "`order.pizzas.count()`"),
    Shape("template", "template loop", "/shape/template/", "`{% for o in orders %}{{ o.customer.name }}`"),
    Shape("drf", "DRF nested serializer list", "/shape/drf/",
          "`OrderSerializer`: nested `CustomerSerializer()`, `PizzaSerializer(many=True)`", 2, "rest_framework"),
)
SHAPE_BY_KEY = {shape.key: shape for shape in SHAPES}

# Issue 15's targets.
TARGET_ALONE = 1.08  # ours alone / no toolbar at N = 1,000, and below django-zeal's ratio
TARGET_OVER_SQL = 1.05  # (SQL + ours) / SQL at N = 1,000
TARGET_AT = 1_000
TARGET_LINEAR = 1.25  # µs/query added at the largest N <= this x the figure at N = 1,000
TARGET_OPEN_MS = 100  # opening the panel on a real page, beside the lazy proofs it makes (issue 23)
TARGET_MEMORY = 1.10  # peak memory of ours alone / no toolbar at N = 10,000
# Issue 23's, per loop shape at N = 1,000: ours alone below both peers, and over DDT's panels.
TARGET_SHAPE_OVER = 1.05  # (SQL + ours) / SQL and (default panels + ours) / default panels
TARGET_LAZY_PAGES = 1.10  # (default panels + ours, lazy proofs) / default panels on the real pages
TARGET_PROOF_MS = 20.0  # replay proofs per request at N = 1,000

_STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:5.0f} s] {message}", file=sys.stderr, flush=True)


# =========================================================================== worker side


class Probes:
    """Per-request counters a worker keeps: GC, our generate_stats, our store write, proofs."""

    def __init__(self) -> None:
        import gc

        self.totals: Counter[str] = Counter()
        self.depth: Counter[str] = Counter()
        self._gc_start = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        # perf_counter, not process_time: this runs on every collection (hundreds per request
        # on a big page) and the CPU-time clock is a system call; a collection is CPU-bound.
        if phase == "start":
            self._gc_start = time.perf_counter()
            return
        spent = time.perf_counter() - self._gc_start
        self.totals["gc_s"] += spent
        if info["generation"] == 2:
            self.totals["gc2"] += 1
            self.totals["gc2_s"] += spent

    def timer(self, name: str, original: Callable, when: Callable[..., bool] | None = None) -> Callable:
        """``original`` wrapped so its outermost calls add their duration to ``totals[name]``."""
        depth = self.depth  # shared by every timer of ``name``: nested calls are counted once

        def timed(*args: Any, **kwargs: Any) -> Any:
            if depth[name] or (when is not None and not when(*args, **kwargs)):
                return original(*args, **kwargs)
            depth[name] += 1
            start = time.process_time()  # CPU time, like the requests' own figures
            try:
                return original(*args, **kwargs)
            finally:
                self.totals[name] += time.process_time() - start
                depth[name] -= 1

        timed.__wrapped__ = original  # type: ignore[attr-defined]
        return timed

    def install(self, config: Config) -> list[str]:
        """Wrap what exists in this configuration; return what was wrapped."""
        wrapped = []
        if not config.ours:
            return wrapped
        from debug_toolbar.store import get_store

        from ddt_prefetch_panel.panel import PrefetchPanel

        PrefetchPanel.generate_stats = self.timer("stats_s", PrefetchPanel.generate_stats)
        store = get_store()
        save = store.save_panel  # a bound classmethod
        store.save_panel = classmethod(  # type: ignore[method-assign]
            lambda cls, request_id, panel_id, data=None: timed_save(request_id, panel_id, data)
        )
        timed_save = self.timer("save_s", save, when=lambda request_id, panel_id, data=None: panel_id == OUR_PANEL_ID)
        wrapped += ["PrefetchPanel.generate_stats", f"{store.__name__}.save_panel"]
        wrapped += self._wrap_proofs()
        return wrapped

    def _wrap_proofs(self) -> list[str]:
        """Time the proof functions other modules of the package imported by name (the entry
        points; prove.py's calls to its own helpers stay unwrapped, so the timer adds nothing
        per row). If none is imported by name, prove.py's public functions are wrapped in place.
        Outermost calls only (nested proof calls are inside the outer one's time).
        """
        import importlib
        import inspect

        try:
            prove = importlib.import_module("ddt_prefetch_panel.prove")
        except ImportError:
            return []
        names = []
        timers: dict[Any, Callable] = {}
        modules = [m for name, m in list(sys.modules.items()) if m is not None and m is not prove
                   and (name == "ddt_prefetch_panel" or name.startswith("ddt_prefetch_panel."))]
        if not any(inspect.isfunction(v) and v.__module__ == prove.__name__ for m in modules for v in vars(m).values()):
            modules = [prove]
        for module in modules:
            for attr, value in list(vars(module).items()):
                if (inspect.isfunction(value) and value.__module__ == prove.__name__ and not attr.startswith("_")
                        and (module is not prove or attr.isidentifier())):
                    if value not in timers:
                        timers[value] = self.timer("proof_s", value)
                    setattr(module, attr, timers[value])
                    names.append(f"{module.__name__}.{attr} (prove)")
        return names


def rss_kib(field_name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


class Server:
    """One configuration's Django, called through ``WSGIHandler`` as runserver calls it."""

    def __init__(self, config: Config, data: str, rows: int) -> None:
        import io

        self.config = config
        self.data = data
        self.io = io
        self.probes = Probes()  # before django.setup(): collections during start-up are counted too
        import django

        django.setup()
        from django.core.wsgi import get_wsgi_application

        self.create_schema_and_seed(rows)
        self.wrapped = self.probes.install(config)
        self.app = get_wsgi_application()
        self.environ = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_ACCEPT": "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8",
            "HTTP_USER_AGENT": "ddt-prefetch-panel-bench",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,  # as runserver's threading server says
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }

    def create_schema_and_seed(self, rows: int) -> None:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False, skip_checks=True)
        if self.data == "demo":
            from shop.seed import seed

            seed()  # the demo's own data, as ``make demo`` seeds it
            return
        from datetime import UTC, datetime, timedelta

        from decimal import Decimal

        from django.db import transaction
        from shop.models import Category, Customer, Order, Pizza, Topping

        now = datetime(2025, 3, 1, 18, 0, tzinfo=UTC)
        with transaction.atomic():
            customers = Customer.objects.bulk_create(
                (Customer(name=f"Customer {i}", email=f"customer{i}@example.com", city="Bench") for i in range(rows)),
                batch_size=2_000,
            )
            # Order i belongs to customer i: every order.customer access is a query of its own.
            orders = Order.objects.bulk_create(
                (Order(customer_id=c.pk, status="new", created=now - timedelta(minutes=i))
                 for i, c in enumerate(customers)),
                batch_size=2_000,
            )
            # Two pizzas per order and two favourite toppings per customer: the reverse-FK,
            # count and M2M loops read a few rows per query, as real pages do.
            category = Category.objects.create(name="Bench")
            toppings = Topping.objects.bulk_create(Topping(name=f"Topping {i}") for i in range(5))
            Pizza.objects.bulk_create(
                (Pizza(order_id=o.pk, category_id=category.pk, name=f"Pizza {i}.{k}", price=Decimal("9.50"))
                 for i, o in enumerate(orders) for k in range(2)),
                batch_size=2_000,
            )
            through = Customer.favorite_toppings.through
            through.objects.bulk_create(
                (through(customer_id=c.pk, topping_id=toppings[(i + k) % len(toppings)].pk)
                 for i, c in enumerate(customers) for k in range(2)),
                batch_size=2_000,
            )

    def get(self, path: str) -> tuple[str, bytes]:
        path, _, query = path.partition("?")
        environ = dict(self.environ, PATH_INFO=path, QUERY_STRING=query)
        environ["wsgi.input"] = self.io.BytesIO(b"")
        status: list[str] = []

        def start_response(status_line: str, headers: list, exc_info: Any = None) -> Callable:
            status.append(status_line)
            return lambda data: None

        result = self.app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return status[0], body

    # ----------------------------------------------------------------- commands

    def op_info(self) -> dict:
        import sqlite3
        from importlib import metadata

        import django

        versions = {}
        for dist in ("django-debug-toolbar", "django-zeal", "nplusone", "djangorestframework", "sqlglot"):
            try:
                versions[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                pass
        return {"python": platform.python_version(), "implementation": platform.python_implementation(),
                "django": django.__version__, "sqlite": sqlite3.sqlite_version, "versions": versions,
                "wrapped": self.wrapped, "pid": os.getpid()}

    def op_turn(self, path: str, requests: int) -> dict:
        """``requests`` GETs of ``path``, back to back; per-request figures."""
        rows = []
        totals = self.probes.totals
        for _ in range(requests):
            before = dict(totals)
            cpu, wall = time.process_time(), time.perf_counter()
            status, _body = self.get(path)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if not status.startswith("200"):
                raise RuntimeError(f"GET {path}: {status}")
            row = {"cpu": cpu, "wall": wall}
            for key in ("gc2", "gc_s", "gc2_s", "stats_s", "save_s", "proof_s"):
                row[key] = totals.get(key, 0) - before.get(key, 0)
            rows.append(row)
        return {"rows": rows}

    def op_memory(self, path: str) -> dict:
        """Peak memory of one request: tracemalloc peak above the level before it (separate
        request), and the process's peak RSS during a request without tracemalloc."""
        import gc
        import tracemalloc

        result: dict[str, float] = {}
        try:  # Linux: writing 5 to clear_refs resets VmHWM (the peak RSS) to the current RSS
            with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
                refs.write("5")
            before = rss_kib("VmRSS")
            self.get(path)
            result["rss_before_kib"] = before
            result["rss_peak_kib"] = rss_kib("VmHWM")
        except OSError:
            pass
        gc.collect()  # the memory pass is not a timed turn
        tracemalloc.start()
        try:
            base, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            self.get(path)
            current, peak = tracemalloc.get_traced_memory()
            result["traced_peak"] = peak - base
            result["traced_retained"] = current - base
        finally:
            tracemalloc.stop()
        return result

    def op_memory_full(self, path: str, requests: int) -> dict:
        """Peak memory of a request once ``requests - 1`` others were served before it, all under
        tracemalloc: with lazy proofs, what DDT's store and shared.py hold for the earlier ones
        (RESULTS_CACHE_SIZE of them) is part of the peak, measured rather than computed."""
        import gc
        import tracemalloc

        gc.collect()
        tracemalloc.start()
        try:
            base, _ = tracemalloc.get_traced_memory()
            for _ in range(requests - 1):
                self.get(path)
            held = tracemalloc.get_traced_memory()[0] - base
            tracemalloc.reset_peak()
            self.get(path)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        return {"traced_peak": peak, "held_before": held, "requests": requests, "path": path}

    def op_open(self, path: str) -> dict:
        """Open our panel on a fresh request of ``path``, as a click does: DDT's ``render_panel``
        view through the WSGI handler. CPU time of that view, and of the replay proofs it made
        (lazy proofs run then); then the same panel opened a second time (proofs stored)."""
        from debug_toolbar.store import get_store

        self.get(path)
        request_id = list(get_store().request_ids())[-1]
        url = f"/__debug__/render_panel/?request_id={request_id}&panel_id={OUR_PANEL_ID}"
        out = {}
        for label in ("first", "again"):
            proofs = self.probes.totals["proof_s"]
            start = time.process_time()
            status, body = self.get(url)
            out[f"{label}_s"] = time.process_time() - start
            out[f"{label}_proof_s"] = self.probes.totals["proof_s"] - proofs
            if not status.startswith("200") or (label == "first" and b"replayed when opened" not in body):
                raise RuntimeError(f"render_panel {status}: {body[:300]!r}")
        return out

    def op_check(self, path: str, n: int | None = None) -> dict:
        """One request with the configuration's own checks: the toolbar ran the intended
        panels, our panel and the SQL panel saw the queries, the peers reported the N+1."""
        import logging
        import warnings

        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        handler_records: list[logging.LogRecord] = []
        caught: list[warnings.WarningMessage] = []
        nplusone_logger = logging.getLogger("nplusone")
        level = nplusone_logger.level

        class ListHandler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                handler_records.append(record)

        handler = ListHandler()
        nplusone_logger.addHandler(handler)
        nplusone_logger.setLevel(logging.DEBUG)
        toolbars: list[Any] = []
        if self.config.toolbar:
            from debug_toolbar.toolbar import DebugToolbar

            def created(sender: Any, toolbar: Any, **kwargs: Any) -> None:
                toolbars.append(toolbar)

            DebugToolbar._created.connect(created, weak=False, dispatch_uid="ddtpp-bench")
        try:
            with warnings.catch_warnings(record=True) as caught, CaptureQueriesContext(connection) as queries:
                warnings.simplefilter("always")
                status, body = self.get(path)
        finally:
            nplusone_logger.removeHandler(handler)
            nplusone_logger.setLevel(level)
            if self.config.toolbar:
                DebugToolbar._created.disconnect(dispatch_uid="ddtpp-bench")
        if not status.startswith("200"):
            raise RuntimeError(f"GET {path}: {status}")
        out: dict[str, Any] = {"queries": len(queries)}
        config = self.config
        if config.peer == "zeal":
            out["peer_reports"] = sum("N+1 detected" in str(w.message) for w in caught)
        elif config.peer == "nplusone":
            out["peer_reports"] = sum("n+1" in r.getMessage().lower() for r in handler_records)
        if not config.toolbar:
            if b'id="djDebug"' in body:
                raise RuntimeError("toolbar inserted without its middleware")
            return out
        from debug_toolbar.store import get_store

        store = get_store()
        if len(toolbars) != 1:
            raise RuntimeError(f"{len(toolbars)} toolbars for one request")
        toolbar = toolbars[0]
        enabled = [panel.panel_id for panel in toolbar.enabled_panels]
        expected = [p for p in config.panel_ids if p not in ("RedirectsPanel", "ProfilingPanel")]  # off by default
        if sorted(enabled) != sorted(expected):  # DDT moves the TimerPanel first
            raise RuntimeError(f"enabled panels {enabled}, expected {expected}")
        if config.panel_ids and b"</body>" in body and b'id="djDebug"' not in body:
            raise RuntimeError("toolbar not inserted in the page")
        request_id = toolbar.request_id
        if config.sql:
            out["sql_panel_queries"] = len(store.panel(request_id, "SQLPanel").get("queries", []))
        if config.ours:
            stats = store.panel(request_id, OUR_PANEL_ID)
            if stats.get("error"):
                raise RuntimeError(f"our panel failed: {stats['error']}")
            report = stats["report"]
            out["ours_queries"] = report["summary"]["queries"]
            out["ours_n_plus_one"] = [f["count"] for f in report["findings"] if f["kind"] == "n_plus_one"]
            out["ours_findings"] = [[f["kind"], f["count"]] for f in report["findings"]]
        return out

    def op_pages(self) -> dict:
        """Query count of every argument-free demo page (GET, status 200)."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext
        from django.urls import reverse
        from shop import urls as shop_urls

        pages = {}
        for pattern in shop_urls.urlpatterns:
            if not pattern.name:
                continue
            path = reverse(f"shop:{pattern.name}")
            with CaptureQueriesContext(connection) as queries:
                status, body = self.get(path)
            if status.startswith("200"):
                pages[path] = {"queries": len(queries), "bytes": len(body)}
        return {"pages": pages}


def worker_main(key: str, data: str, rows: int) -> int:
    # The protocol owns the real stdout; anything a library prints goes to stderr.
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.benchmarks.settings"
    os.environ["DDTPP_BENCH_CONFIG"] = key
    os.environ["DDTPP_BENCH_DATA"] = data
    try:
        server = Server(BY_KEY[key], data, rows)
    except Exception as exc:
        import traceback

        channel.write(json.dumps({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}) + "\n")
        return 1
    channel.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        command = json.loads(line)
        op = command.pop("op")
        if op == "quit":
            break
        try:
            result = getattr(server, f"op_{op}")(**command)
        except Exception as exc:
            import traceback

            result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        channel.write(json.dumps(result) + "\n")
    return 0


# =========================================================================== coordinator side


class WorkerError(RuntimeError):
    pass


class Worker:
    def __init__(self, config: Config, data: str, rows: int, log_dir: Path) -> None:
        self.config = config
        self.data = data
        self.log_path = log_dir / f"{config.key}-{data}.log"
        env = dict(os.environ, PYTHONHASHSEED="0")
        env.pop("PYTEST_VERSION", None)
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", config.key, "--data", data, "--rows", str(rows)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log_path.open("w"), text=True, env=env,
            cwd=ROOT,
        )
        self.ready = False

    @property
    def name(self) -> str:
        return f"{self.config.key} ({self.data})"

    def _read(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise WorkerError(f"worker {self.name} exited (rc {self.process.poll()}); its log ends:\n{tail}")
        result = json.loads(line)
        if "error" in result:
            raise WorkerError(f"worker {self.name}: {result['error']}\n{result.get('traceback', '')}")
        return result

    def wait_ready(self) -> None:
        if not self.ready:
            self._read()
            self.ready = True

    def call(self, op: str, **args: Any) -> dict:
        self.wait_ready()
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def quit(self) -> None:
        """Ask the worker to exit (``close`` waits for it)."""
        stdin = self.process.stdin
        if self.process.poll() is None and stdin is not None and not stdin.closed:
            try:
                stdin.write(json.dumps({"op": "quit"}) + "\n")
                stdin.close()
            except OSError:
                pass

    def close(self) -> None:
        self.quit()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Samples:
    """Per (configuration, page): one dict of turn means per round, in round order."""

    turns: dict[tuple[str, str], list[dict]] = field(default_factory=lambda: defaultdict(list))

    def add(self, key: str, page: str, rows: list[dict]) -> None:
        mean = {name: statistics.fmean(r[name] for r in rows) for name in rows[0]}
        mean["requests"] = len(rows)
        mean["gc2_total"] = sum(r["gc2"] for r in rows)
        self.turns[(key, page)].append(mean)

    def has(self, key: str, page: str) -> bool:
        return bool(self.turns.get((key, page)))

    def median(self, key: str, page: str, name: str = "cpu") -> float:
        return statistics.median(t[name] for t in self.turns[(key, page)])

    def paired(self, a: str, b: str, page: str, ratio: bool, name: str = "cpu") -> list[float]:
        """a / b or a − b for every round where both ran (turns are in round order)."""
        pairs = zip(self.turns[(a, page)], self.turns[(b, page)])
        return [x[name] / y[name] if ratio else x[name] - y[name] for x, y in pairs]

    def gc2_per_request(self, key: str, page: str) -> float:
        turns = self.turns[(key, page)]
        return sum(t["gc2_total"] for t in turns) / sum(t["requests"] for t in turns)


def run_rounds(workers: dict[str, Worker], page: str, rounds: int, turn: int, samples: Samples,
               rng: random.Random, label: str) -> None:
    keys = list(workers)
    for k in range(rounds):
        rng.shuffle(keys)
        for key in keys:
            samples.add(key, page, workers[key].call("turn", path=page, requests=turn)["rows"])
        if rounds <= 10 or (k + 1) % max(1, rounds // 5) == 0 or k + 1 == rounds:
            log(f"  {label}: round {k + 1}/{rounds}")


def warm_up(workers: dict[str, Worker], page: str, requests: int) -> None:
    for worker in workers.values():
        worker.call("turn", path=page, requests=requests)


def check_synthetic(worker: Worker, n: int, shape: Shape = SHAPES[0]) -> dict:
    """One checked request of ``shape``'s page. A peer that reports nothing fails the forward
    FK (the shape both document); on the other shapes what it reported is kept for the report."""
    result = worker.call("check", path=synthetic(n, shape))
    config = worker.config
    queries = 1 + shape.per_row * n
    problems = []
    if result["queries"] != queries:
        problems.append(f"{result['queries']} queries instead of {queries}")
    if config.sql and result.get("sql_panel_queries") != queries:
        problems.append(f"SQL panel saw {result.get('sql_panel_queries')} queries")
    if config.ours and (result.get("ours_queries") != queries or result.get("ours_n_plus_one") != [n] * shape.per_row):
        problems.append(f"our panel: {result.get('ours_queries')} queries, findings {result.get('ours_findings')}")
    if config.peer and not result.get("peer_reports") and shape is SHAPES[0]:
        problems.append(f"{config.peer} reported nothing")
    if problems:
        raise WorkerError(f"check of {worker.name} on {shape.label} at N={n}: " + "; ".join(problems))
    return result


def check_page(worker: Worker, path: str) -> dict:
    result = worker.call("check", path=path)
    if worker.config.ours and not result.get("ours_n_plus_one"):
        raise WorkerError(f"check of {worker.name} on {path}: our panel found no N+1 ({result})")
    return result


# --------------------------------------------------------------------------- profile


CATEGORIES = ("capture (cursor wrapper, stacks)", "ORM hooks", "analysis (generate_stats)",
              "store serialisation (our panel's data)", "DDT: middleware, its panels, toolbar HTML",
              "the view, Django and SQLite (no toolbar's work)")


def categorise(frames: list[str]) -> str:
    """One py-spy sample (frames ``function (path:line)``, outermost first) → one of CATEGORIES.

    Inside our ``generate_stats``: serialisation if DDT's store ``serialize()`` is on the
    stack, else analysis. Elsewhere the innermost frame of the package decides (hooks.py or
    capture_orm.py: hooks; any other module: capture), unless Django's ``db`` package runs
    below it: a hook or the cursor wrapper calling Django's own code is the view's time (and
    DDT's own code below our wrapper of its ``_postprocess`` is DDT's).
    The same rule for DDT's own frames (middleware, its panels, the toolbar's HTML); the rest
    is the view, Django and SQLite.
    """
    def path(frame: str) -> str:
        return "/" + frame.rsplit("(", 1)[-1].rsplit(":", 1)[0].replace(os.sep, "/")

    def function(frame: str) -> str:
        return frame.rsplit(" (", 1)[0]

    ours = [("/ddt_prefetch_panel/" in path(f)) for f in frames]
    for frame, mine in zip(frames, ours):
        if mine and function(frame).endswith("generate_stats"):
            if any(function(f) == "serialize" and "/debug_toolbar/" in path(f) for f in frames):
                return CATEGORIES[3]
            return CATEGORIES[2]
    if any(ours):
        innermost = max(i for i, mine in enumerate(ours) if mine)
        if not any("/django/db/" in path(f) or "/debug_toolbar/" in path(f) for f in frames[innermost + 1:]):
            name = path(frames[innermost]).rsplit("/", 1)[-1]
            return CATEGORIES[1] if name in ("hooks.py", "capture_orm.py") else CATEGORIES[0]
    ddt = [i for i, f in enumerate(frames) if "/debug_toolbar/" in path(f)]
    if ddt and not any("/django/db/" in path(f) or function(f) == "BaseHandler._get_response"
                       for f in frames[ddt[-1] + 1:]):
        return CATEGORIES[4]
    return CATEGORIES[5]


# Our per-statement work by step: a capture or hook sample goes to the step of its innermost frame
# of the package that belongs to a step (helpers such as ``is_library_code`` count for their caller).
STEPS = (
    ("stack walk to the toolbar's frame (`Capture.stack`, `stack_key`)", ("stack_key", "Capture.stack")),
    ("build and evaluation stacks of querysets (`first_frame`, `build_stack`)",
     ("build_stack", "Capture.first_frame")),
    ("tagging loaded instances (`ModelIterable`, `_source_for`, new roots)",
     ("_tagging_iter", "_source_for", "_tag_selected", "_wrap_model_iterable.<locals>.__iter__")),
    ("origin stamp of a manager's queryset (`_stamp_origin`)", ("_stamp_origin", "_wrap_get_queryset.<locals>.get_queryset")),
    ("relation descriptors and related managers (hops)",
     ("_wrap_many_get.<locals>.__get__", "_with_hop.<locals>.wrapper", "_wrap_forward_get.<locals>.__get__",
      "_wrap_deferred_get.<locals>.__get__", "_hopping_get_queryset.<locals>.get_queryset", "_tag_related_queryset",
      "_run_with_manager_hop.<locals>.wrapper", "_tag_manager")),
    ("cursor wrapper: bucket and totals (`_record` without the stack walk)",
     ("execute_wrapper", "_record", "bucket_key", "Bucket.tally", "params_hash")),
    ("`execute_sql`, `_fetch_all`, cursor wrappers", ("_wrap_execute_sql.<locals>.execute_sql",
                                                        "_wrap_fetch_all.<locals>._fetch_all",
                                                        "_wrap_prepare_cursor.<locals>._prepare_cursor")),
)


STEP_OF = {function: step for step, functions in STEPS for function in functions}


def step_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        if "ddt_prefetch_panel/" in frame.replace(os.sep, "/"):
            step = STEP_OF.get(frame.rsplit(" (", 1)[0])
            if step is not None:
                return step
    return "other capture and hook code"


def profile(worker: Worker, path: str, requests: int, out_dir: Path, queries: int, name: str = "") -> dict | None:
    """py-spy samples of ``requests`` GETs of ``path`` in ``worker``, by category."""
    spy = Path(sys.executable).parent / "py-spy"
    spy_path = str(spy) if spy.exists() else shutil.which("py-spy")
    if not spy_path:
        log("profile skipped: py-spy is not installed (make bench installs it into .venv-bench)")
        return None
    pid = worker.call("info")["pid"]
    raw = out_dir / f"profile-{worker.config.key}-{worker.data}{'-' + name if name else ''}.txt"
    spy_proc = subprocess.Popen([spy_path, "record", "--pid", str(pid), "--rate", "250", "--format", "raw",
                                 "--output", str(raw)],
                                stdout=subprocess.DEVNULL, stderr=(out_dir / "py-spy.log").open("w"))
    time.sleep(1.5)  # py-spy attaches
    start = time.perf_counter()
    rows = worker.call("turn", path=path, requests=requests)["rows"]
    elapsed = time.perf_counter() - start
    spy_proc.send_signal(signal.SIGINT)
    try:
        spy_proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        spy_proc.kill()
        spy_proc.wait()
    if not raw.exists():
        log(f"profile failed: py-spy wrote nothing (see {out_dir / 'py-spy.log'})")
        return None
    by_category: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    by_step: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if not any("op_turn" in f for f in frames):
            continue  # py-spy attached before or detached after the turn
        samples = int(count)
        total += samples
        category = categorise(frames)
        by_category[category] += samples
        if category in CATEGORIES[:4]:
            by_function[re.sub(r":\d+\)$", ")", frames[-1])] += samples  # per function, not per line
        if category in CATEGORIES[:2]:
            by_step[step_of(frames)] += samples
    if not total:
        return None
    per_request_ms = statistics.fmean(r["wall"] for r in rows) * 1000
    return {"label": worker.config.label, "path": path, "n": queries, "requests": requests, "samples": total, "elapsed": elapsed, "request_ms": per_request_ms,
            "cpu_ms": statistics.fmean(r["cpu"] for r in rows) * 1000,
            "categories": {c: by_category[c] / total for c in CATEGORIES},
            "functions": [(f, s / total) for f, s in by_function.most_common(15)],
            "steps": [(step, by_step[step] / total) for step in [*(name for name, _ in STEPS),
                                                                  "other capture and hook code"]]}


# --------------------------------------------------------------------------- report


def machine(info: dict) -> list[str]:
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    cores = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cores
    versions = info["versions"]
    peers = ", ".join(f"{name} {versions[name]}" for name in ("django-zeal", "nplusone", "djangorestframework")
                      if name in versions) or "no peers installed"
    return [
        f"- Machine: {model}, {cores} logical cores ({usable} usable), {platform.system()} {platform.release()}; "
        f"load average at start {LOAD_AT_START}, at end {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
        "(other processes share the machine)",
        f"- Python {info['python']} ({info['implementation']}), Django {info['django']}, "
        f"django-debug-toolbar {versions.get('django-debug-toolbar')}, {peers}, "
        f"sqlglot {versions.get('sqlglot')}, SQLite {info['sqlite']} (in-memory)",
        f"- {PACKAGE_VERSION}",
    ]


LOAD_AT_START = ""
PACKAGE_VERSION = ""


def package_version() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ddt_prefetch_panel"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        head = ""
    if not head:
        return "ddt_prefetch_panel: not a git checkout"
    changed = sorted(line[3:] for line in dirty if line.strip())
    return f"ddt_prefetch_panel at commit {head}" + (f", with uncommitted changes in {', '.join(changed)}"
                                                      if changed else "")


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


@dataclass
class Results:
    args: argparse.Namespace
    info: dict
    keys: list[str]
    samples: Samples
    sizes: list[int]
    linearity: list[int]
    memory: dict[str, dict]
    pages: dict[str, str]  # label -> path
    page_keys: list[str]
    page_info: dict[str, dict]
    profiles: list[dict]
    shapes: list[Shape]
    reports: dict[tuple[str, str], int | None]  # (configuration, shape key) -> N+1 reports of a peer
    elapsed: float = 0.0
    # "fk"/"manager" -> configuration -> op_memory_full's result (a store filled first)
    full_memory: dict[str, dict] = field(default_factory=dict)
    opens: dict[str, dict] = field(default_factory=dict)  # real page path -> op_open's medians


def synthetic(n: int, shape: Shape = SHAPES[0]) -> str:
    return f"{shape.path}?n={n}"


def render(r: Results) -> str:
    s = r.samples
    out = ["## ddt-prefetch-panel benchmark", ""]
    out += machine(r.info)
    out += [
        f"- Page `/orders/?n=N`: N orders each with its own customer, `order.customer.name` read for each "
        f"(1 + N queries); the other loop shapes below. \"ours\" rows: PROOF_MODE \"eager\"; \"lazy proofs\": "
        f"the default. Long-lived worker process per configuration calling Django's WSGIHandler; "
        f"configurations in a fresh random order each round; turns of {r.args.turn} requests "
        f"({r.args.linearity_turn} at N ≥ 10,000), the mean of a turn is one sample; no forced "
        "`gc.collect()`; DDT's MemoryStore kept across requests (RESULTS_CACHE_SIZE 25).",
        "- Rounds: " + ", ".join(f"N={n:,}: {len(s.turns[(r.keys[0], synthetic(n))])}" for n in r.sizes)
        + "".join(f", N={n:,}: {len(s.turns[('none', synthetic(n))])} (no toolbar and ours only)"
                  for n in r.linearity if s.has("none", synthetic(n)))
        + f". Process CPU time; ratios and differences paired within a round, median over rounds. "
        f"Total run time {r.elapsed:.0f} s.",
        "",
    ]
    # ------------------------------------------------------------ main table
    for n in r.sizes:
        page = synthetic(n)
        out += [f"### N = {n:,}", "",
                "| configuration | ms per request | wall ms | vs no toolbar (min–max) | µs per query added "
                "| full GCs per request | GC ms per request |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for key in r.keys:
            ms = s.median(key, page) * 1000
            if key == "none":
                ratio, added = "1.000", "—"
            else:
                ratios = s.paired(key, "none", page, ratio=True)
                ratio = f"{statistics.median(ratios):.3f} ({min(ratios):.2f}–{max(ratios):.2f})"
                added = fmt(statistics.median(s.paired(key, "none", page, ratio=False)) / n * 1e6)
            out.append(f"| {BY_KEY[key].label} | {fmt(ms, 2)} | {fmt(s.median(key, page, 'wall') * 1000, 2)} "
                       f"| {ratio} | {added} "
                       f"| {s.gc2_per_request(key, page):.2f} | {fmt(s.median(key, page, 'gc_s') * 1000, 2)} |")
        for over, base, label in (("sql+ours", "sql", "SQL panel + ours, over SQL panel alone"),
                                  ("default+ours", "default", "default panels + ours, over default panels"),
                                  ("ours", "ddt", "ours alone, over DDT with no panels"),
                                  ("ours", "ours-noproofs", "ours alone, proofs on over proofs off")):
            if over in r.keys and base in r.keys:
                ratios = s.paired(over, base, page, ratio=True)
                added = statistics.median(s.paired(over, base, page, ratio=False)) / n * 1e6
                out.append(f"| *{label}* | | | {statistics.median(ratios):.3f} ({min(ratios):.2f}–{max(ratios):.2f}) "
                           f"| {fmt(added)} | | |")
        if "ours" in r.keys:
            stats = s.median("ours", page, "stats_s") * 1000
            save = s.median("ours", page, "save_s") * 1000
            proof = s.median("ours", page, "proof_s") * 1000 if r.info["proofs"] else math.nan
            out += ["", f"Ours alone: `generate_stats` {fmt(stats, 2)} ms per request "
                        f"({fmt(stats / n * 1000)} µs/query), of which the store's `save_panel` (JSON) "
                        f"{fmt(save, 2)} ms; replay proofs "
                        + (f"{fmt(proof, 2)} ms per request." if r.info["proofs"]
                           else "n/a (no `ddt_prefetch_panel.prove` in this checkout).")]
        out.append("")
    # ------------------------------------------------------------ issue-style summary
    at = TARGET_AT if TARGET_AT in r.sizes else max(r.sizes)
    page = synthetic(at)

    def ratio_of(a: str, b: str) -> float:
        if a not in r.keys or b not in r.keys:
            return math.nan
        return statistics.median(s.paired(a, b, page, ratio=True))

    def added_of(a: str, b: str) -> float:
        if a not in r.keys or b not in r.keys:
            return math.nan
        return statistics.median(s.paired(a, b, page, ratio=False)) / at * 1e6

    out += [f"### Summary at N = {at:,}", "", "| configuration | ratio | µs per query added |", "|---|---:|---:|"]
    for a, b, label in (("ours", "none", "ours alone"), ("ours-noproofs", "none", "ours alone, proofs off"),
                        ("ours-lazy", "none", "ours alone, lazy proofs"),
                        ("zeal", "none", "django-zeal alone"),
                        ("nplusone", "none", "nplusone alone"), ("sql", "none", "DDT SQL panel alone"),
                        ("default", "none", "DDT default panels"),
                        ("sql+ours", "sql", "SQL panel + ours, over SQL panel alone"),
                        ("default+ours", "default", "DDT default panels + ours, over default panels")):
        if a in r.keys and b in r.keys:
            out.append(f"| {label} | {ratio_of(a, b):.3f} | {fmt(added_of(a, b))} |")
    out.append("")
    # ------------------------------------------------------------ loop shapes
    shapes = [shape for shape in r.shapes if s.has("none", synthetic(at, shape))]

    def shape_ratio(a: str, b: str, shape: Shape, ratio: bool = True) -> float:
        page = synthetic(at, shape)
        if not (s.has(a, page) and s.has(b, page)):
            return math.nan
        value = statistics.median(s.paired(a, b, page, ratio=ratio))
        return value if ratio else value / (shape.per_row * at) * 1e6  # µs per query of the loop

    def reported(key: str, shape: Shape) -> str:
        count = r.reports.get((key, shape.key))
        return "n/a" if count is None and (key, shape.key) not in r.reports else ("yes" if count else "**no**")

    if len(shapes) > 1 or shapes and shapes[0].key != "fk":
        peers = [k for k in PEERS if k in r.keys]
        out += [f"### Loop shapes at N = {at:,}", "",
                "Each page loops over N rows and runs one query per row (the DRF list two: customer and "
                f"pizzas); {r.args.shape_rounds} rounds of {r.args.shape_turn} requests per shape (the forward "
                "FK: the rounds of the table above). Ratios over the row's baseline, paired within a round, "
                "median over rounds.", "",
                "| shape | loop | queries | no toolbar ms | ours alone | ours alone, lazy proofs "
                + "".join(f"| {BY_KEY[k].label} " for k in peers)
                + "| (SQL + ours) / SQL | (default + ours) / default |",
                "|---|---|---:|---:|---:|---:|" + "---:|" * len(peers) + "---:|---:|"]
        for shape in shapes:
            cells = [fmt(shape_ratio(a, b, shape), 3) for a, b in
                     (("ours", "none"), ("ours-lazy", "none"), *((k, "none") for k in peers),
                      ("sql+ours", "sql"), ("default+ours", "default"))]
            out.append(f"| {shape.label} | {shape.loop} | {1 + shape.per_row * at:,} "
                       f"| {fmt(s.median('none', synthetic(at, shape)) * 1000, 1)} | " + " | ".join(cells) + " |")
        gc_keys = [k for k in ("none", "ours", "ours-lazy", *peers, "sql", "sql+ours", "default", "default+ours")
                   if k in r.keys]
        out += ["", "| shape | µs per query added: ours alone / lazy "
                + "".join(f"/ {BY_KEY[k].label.split()[0]} " for k in peers)
                + "| over SQL panel: ours | over default panels: ours | full GCs per request: "
                + " / ".join(BY_KEY[k].label for k in gc_keys) + " "
                + "".join(f"| N+1 reported by {BY_KEY[k].label.split()[0]} " for k in peers) + "|",
                "|---|---:|---:|---:|---:|" + "---:|" * len(peers)]
        for shape in shapes:
            shape_page = synthetic(at, shape)  # not ``page``: ratio_of() and the targets below read that one
            added = " / ".join(fmt(shape_ratio(k, "none", shape, ratio=False)) for k in ("ours", "ours-lazy", *peers))
            gcs = " / ".join(f"{s.gc2_per_request(k, shape_page):.2f}" if s.has(k, shape_page) else "n/a"
                             for k in gc_keys)
            out.append(f"| {shape.label} | {added} | {fmt(shape_ratio('sql+ours', 'sql', shape, ratio=False))} "
                       f"| {fmt(shape_ratio('default+ours', 'default', shape, ratio=False))} | {gcs} "
                       + "".join(f"| {reported(k, shape)} " for k in peers) + "|")
        out.append("")
    # ------------------------------------------------------------ linearity
    lin = [n for n in r.sizes + r.linearity if s.has("ours", synthetic(n)) and s.has("none", synthetic(n))]
    if len(lin) > 1:
        out += ["### Linearity: ours alone over no toolbar", "",
                "| N | ms no toolbar | ms ours alone | ratio | µs per query added | generate_stats µs/query |",
                "|---:|---:|---:|---:|---:|---:|"]
        for n in lin:
            p = synthetic(n)
            out.append(f"| {n:,} | {fmt(s.median('none', p) * 1000, 1)} | {fmt(s.median('ours', p) * 1000, 1)} "
                       f"| {statistics.median(s.paired('ours', 'none', p, ratio=True)):.3f} "
                       f"| {fmt(statistics.median(s.paired('ours', 'none', p, ratio=False)) / n * 1e6)} "
                       f"| {fmt(s.median('ours', p, 'stats_s') / n * 1e6, 2)} |")
        out.append("")
    # ------------------------------------------------------------ memory
    if r.memory:
        n_mem = r.args.memory_n
        out += [f"### Memory: one request at N = {n_mem:,}", "",
                "| configuration | tracemalloc peak MiB | retained after the request MiB | peak RSS MiB "
                "| RSS growth during the request MiB |", "|---|---:|---:|---:|---:|"]
        for key, m in r.memory.items():
            rss = m.get("rss_peak_kib")
            growth = (m["rss_peak_kib"] - m["rss_before_kib"]) / 1024 if rss else math.nan
            out.append(f"| {BY_KEY[key].label} | {m['traced_peak'] / 2**20:.1f} | {m['traced_retained'] / 2**20:.2f} "
                       f"| {fmt(rss / 1024 if rss else math.nan)} | {fmt(growth)} |")
        out += ["", "tracemalloc: highest traced allocation during the request above the level before it "
                "(separate request after a collection); retained includes what the panels stored. "
                "RSS: the process's VmHWM reset just before a request without tracemalloc.", ""]
        for name, by_key in r.full_memory.items():
            if "none" in by_key and "ours-lazy" in by_key:
                none, lazy = by_key["none"], by_key["ours-lazy"]
                out += [f"Measured with a full store, `{lazy['path']}` (everything under tracemalloc, "
                        f"from before the first request): ours alone with lazy proofs served "
                        f"{lazy['requests'] - 1} requests first, so DDT's store and the captures held for their "
                        f"proofs are full ({RESULTS_CACHE_SIZE} requests), then one more: its peak is "
                        f"{lazy['traced_peak'] / 2**20:.1f} MiB, of which {lazy['held_before'] / 2**20:.2f} MiB "
                        f"held before it. No toolbar, after one request (it holds nothing across requests): "
                        f"{none['traced_peak'] / 2**20:.1f} MiB. Ratio **{lazy['traced_peak'] / none['traced_peak']:.3f}**.",
                        ""]
    # ------------------------------------------------------------ real pages
    if r.pages:
        out += ["### Real pages: DDT default panels with and without ours", "",
                "| page | configuration | ms per request | vs default panels (min–max) | ms added "
                "| ours' generate_stats ms | proofs ms |", "|---|---|---:|---:|---:|---:|---:|"]
        for label, path in r.pages.items():
            if not all(s.has(k, path) for k in r.page_keys):
                continue
            name = f"{label}, `{path}`, {r.page_info[path]['queries']} queries"
            for key in r.page_keys:
                config = BY_KEY[key]
                ratio = added = stats = proofs = ""
                if key not in ("none", "default") and "default" in r.page_keys:
                    ratios = s.paired(key, "default", path, ratio=True)
                    ratio = f"{statistics.median(ratios):.3f} ({min(ratios):.2f}–{max(ratios):.2f})"
                    added = fmt(statistics.median(s.paired(key, "default", path, ratio=False)) * 1000, 2)
                if config.ours:
                    stats = fmt(s.median(key, path, "stats_s") * 1000, 2)
                    proofs = fmt(s.median(key, path, "proof_s") * 1000, 2) if r.info["proofs"] else "n/a"
                out.append(f"| {name} | {config.label} | {fmt(s.median(key, path) * 1000, 2)} | {ratio} "
                           f"| {added} | {stats} | {proofs} |")
                name = ""
        out.append("")
    if r.opens:
        out += ["Opening the panel (default panels + ours, lazy proofs): a fresh request of the page, then "
                "DDT's `render_panel` view for our panel as a click calls it, through the WSGI handler; CPU ms, "
                f"median of {r.args.opens}. The first opening makes the replay proofs; a second one reads them "
                "from the store.", "",
                "| page | first opening ms | of which replay proofs ms | first opening without the proofs ms "
                "| opened again ms |", "|---|---:|---:|---:|---:|"]
        for label, path in r.pages.items():
            o = r.opens.get(path)
            if o:
                out.append(f"| {label} `{path}` | {fmt(o['first_s'] * 1000, 1)} | {fmt(o['first_proof_s'] * 1000, 1)} "
                           f"| {fmt(open_without_proofs(o) * 1000, 1)} | {fmt(o['again_s'] * 1000, 1)} |")
        out.append("")
    # ------------------------------------------------------------ profile
    for p in r.profiles:
        out += [f"### Where the time goes: {p['label']}, `{p['path']}` ({p['n']:,} queries; py-spy, "
                f"{p['samples']:,} samples over {p['requests']} requests of {p['cpu_ms']:.0f} ms CPU, "
                f"{p['request_ms']:.0f} ms wall)", "",
                "| part | share of the samples | ms per request (share × CPU time) | µs per query |",
                "|---|---:|---:|---:|"]
        for category, share in p["categories"].items():
            ms = share * p["cpu_ms"]
            out.append(f"| {category} | {share * 100:.1f} % | {ms:.1f} | {ms / p['n'] * 1000:.1f} |")
        out += ["", "Capture and ORM hooks by step (the innermost frame of the package that belongs to a step; "
                "µs per query = share × CPU time under py-spy / queries):", "",
                "| step | share of the samples | µs per query |", "|---|---:|---:|"]
        out += [f"| {step} | {share * 100:.1f} % | {share * p['cpu_ms'] / p['n'] * 1000:.1f} |"
                for step, share in p["steps"]]
        out += ["", "Hottest leaf functions in our parts (share of all samples):", ""]
        out += [f"- `{name}`: {share * 100:.1f} %" for name, share in p["functions"]]
        out.append("")
    # ------------------------------------------------------------ targets
    out += ["### Targets (issue 15)", ""]
    alone, zeal = ratio_of("ours", "none"), ratio_of("zeal", "none")
    ok = None if math.isnan(alone) else alone <= TARGET_ALONE and (math.isnan(zeal) or alone < zeal)
    out.append(f"- ours alone / no toolbar at N={at:,}: {fmt(alone, 3)} (≤ {TARGET_ALONE}"
               + (f", below django-zeal's {zeal:.3f}" if not math.isnan(zeal) else ", django-zeal not measured")
               + f"): {verdict(ok)}")
    over = ratio_of("sql+ours", "sql")
    out.append(f"- (SQL + ours) / SQL at N={at:,}: {fmt(over, 3)} (≤ {TARGET_OVER_SQL}): "
               f"{verdict(None if math.isnan(over) else over <= TARGET_OVER_SQL)}")
    if len(lin) > 1 and at in lin:
        base = statistics.median(s.paired("ours", "none", synthetic(at), ratio=False)) / at
        big = max(lin)
        top = statistics.median(s.paired("ours", "none", synthetic(big), ratio=False)) / big
        growth = top / base if base > 0 else math.nan
        out.append(f"- linear to {big:,}: µs/query added at N={big:,} / at N={at:,} = {fmt(growth, 2)} "
                   f"(≤ {TARGET_LINEAR}): {verdict(None if math.isnan(growth) else growth <= TARGET_LINEAR)}")
    else:
        out.append("- linearity: n/a (run with --linearity)")
    if "ours" in r.memory and "none" in r.memory:
        mem = r.memory["ours"]["traced_peak"] / r.memory["none"]["traced_peak"]
        out.append(f"- peak memory ours alone / no toolbar at N={r.args.memory_n:,} (tracemalloc): {mem:.3f} "
                   f"(≤ {TARGET_MEMORY}): {verdict(mem <= TARGET_MEMORY)}")
    gc_pairs = [(a, b) for a, b in (("ours", "none"), ("sql+ours", "sql"), ("default+ours", "default"))
                if a in r.keys and b in r.keys]
    if gc_pairs:
        cells, worse = [], False
        for a, b in gc_pairs:
            with_ours = statistics.fmean(s.gc2_per_request(a, synthetic(n)) for n in r.sizes)
            without = statistics.fmean(s.gc2_per_request(b, synthetic(n)) for n in r.sizes)
            worse |= with_ours > without
            cells.append(f"{BY_KEY[a].label} {with_ours:.2f} vs {BY_KEY[b].label} {without:.2f}")
        out.append("- full-GC frequency with ours no higher than without (gen-2 collections per request, "
                   f"mean over N): {'; '.join(cells)}: {verdict(not worse)}")
    if r.info["proofs"] and "ours" in r.keys:
        proof = s.median("ours", page, "proof_s") * 1000
        out.append(f"- replay proofs at N={at:,}: {proof:.2f} ms per request (≤ {TARGET_PROOF_MS:.0f}): "
                   f"{verdict(proof <= TARGET_PROOF_MS)}")
    else:
        out.append("- replay proofs ≤ 20 ms per request: n/a (no `ddt_prefetch_panel.prove` in this checkout)")
    if at != TARGET_AT:
        out.append(f"- (N={TARGET_AT:,} not measured: the verdicts above are at N={at:,}, indicative only)")
    out += ["", "### Targets per loop shape (issue 23)", ""]
    for shape in shapes:
        peer_ratios = {k: shape_ratio(k, "none", shape) for k in PEERS if k in r.keys}
        cells = []
        for key in ("ours", "ours-lazy"):
            alone = shape_ratio(key, "none", shape)
            ok = None if math.isnan(alone) or not peer_ratios else all(alone < v for v in peer_ratios.values())
            cells.append(f"{BY_KEY[key].label} {fmt(alone, 3)} {verdict(ok)}")
        peers_text = ", ".join(f"{BY_KEY[k].label.split()[0]} {fmt(v, 3)}" for k, v in peer_ratios.items()) \
            or "peers not measured"
        overs = []
        for a, b, label in (("sql+ours", "sql", "(SQL + ours) / SQL"),
                            ("default+ours", "default", "(default + ours) / default")):
            value = shape_ratio(a, b, shape)
            overs.append(f"{label} {fmt(value, 3)} {verdict(None if math.isnan(value) else value <= TARGET_SHAPE_OVER)}")
        out.append(f"- {shape.label}: below both peers ({peers_text}): {'; '.join(cells)}. "
                   f"≤ {TARGET_SHAPE_OVER}: {'; '.join(overs)}")
    measured = r.full_memory.get("fk", {})
    if "none" in measured and "ours-lazy" in measured:
        ratio = measured["ours-lazy"]["traced_peak"] / measured["none"]["traced_peak"]
        out.append(f"- peak memory at N={r.args.memory_n:,}, ours alone with lazy proofs and a full store "
                   f"({RESULTS_CACHE_SIZE} held requests, measured) / no toolbar: {ratio:.3f} (≤ {TARGET_MEMORY}): "
                   f"{verdict(ratio <= TARGET_MEMORY)}")
    for label, path in r.pages.items():
        o = r.opens.get(path)
        if o:
            rest = open_without_proofs(o) * 1000
            out.append(f"- {label}: opening the panel renders in {rest:.1f} ms plus the proofs' own "
                       f"{o['first_proof_s'] * 1000:.1f} ms (≤ {TARGET_OPEN_MS} ms plus the proofs): "
                       f"{verdict(rest <= TARGET_OPEN_MS)}")
    for label, path in r.pages.items():
        if s.has("default+ours-lazy", path) and s.has("default", path):
            lazy = statistics.median(s.paired("default+ours-lazy", "default", path, ratio=True))
            out.append(f"- {label} `{path}`, (default panels + ours, lazy proofs) / default panels: {lazy:.3f} "
                       f"(≤ {TARGET_LAZY_PAGES}): {verdict(lazy <= TARGET_LAZY_PAGES)}")
    if at != TARGET_AT:
        out.append(f"- (N={TARGET_AT:,} not measured: the verdicts above are at N={at:,}, indicative only)")
    return "\n".join(out) + "\n"


def open_without_proofs(opened: dict) -> float:
    """Seconds the first opening of the panel took beside the replay proofs it made."""
    return opened["first_s"] - opened["first_proof_s"]


# --------------------------------------------------------------------------- main


def default_rounds(n: int) -> int:
    """20 rounds at N <= 10, 12 up to 100, 6 up to 1,000, 3 beyond."""
    return 20 if n <= 10 else 12 if n <= 100 else 6 if n <= 1_000 else 3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)),
                        help="N values run with every configuration (default %(default)s)")
    parser.add_argument("--linearity", default=",".join(map(str, DEFAULT_LINEARITY)),
                        help="large N values run with no toolbar and ours alone only (default %(default)s; '' for none)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per size (default 20/12/6 at 10/100/1,000)")
    parser.add_argument("--linearity-rounds", type=int, default=2, help="rounds per linearity size (default %(default)s)")
    parser.add_argument("--turn", type=int, default=TURN, help="requests per turn (default %(default)s)")
    parser.add_argument("--linearity-turn", type=int, default=3,
                        help="requests per turn at the linearity sizes (default %(default)s)")
    parser.add_argument("--shapes", default=",".join(shape.key for shape in SHAPES),
                        help="loop shapes (default: all: %(default)s); the forward FK (fk) runs at every N, "
                             "the others at N = 1,000 (the largest --sizes below it)")
    parser.add_argument("--shape-rounds", type=int, default=6, help="rounds per loop shape (default %(default)s)")
    parser.add_argument("--shape-turn", type=int, default=3,
                        help="requests per turn on the loop shapes other than fk (default %(default)s)")
    parser.add_argument("--configs", default=",".join(c.key for c in CONFIGS),
                        help="configurations (default: all: %(default)s)")
    parser.add_argument("--no-peers", action="store_true", help="leave out django-zeal and nplusone")
    parser.add_argument("--opens", type=int, default=3,
                        help="times the panel is opened on a fresh request of each real page (default %(default)s)")
    parser.add_argument("--memory-n", type=int, default=10_000, help="N of the memory pass (default %(default)s; 0: skip)")
    parser.add_argument("--pages", default="demo,drf", help="real pages: demo,drf (default %(default)s; '' for none)")
    parser.add_argument("--page-rounds", type=int, default=8, help="rounds per real page (default %(default)s)")
    parser.add_argument("--profile-n", type=int, default=1_000, help="N of the py-spy profile (0: skip)")
    parser.add_argument("--profile-requests", type=int, default=30, help="requests profiled (default %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: N=10 only (every shape), 2 rounds of 2 requests, small memory pass, "
                             "no linearity or profile")
    parser.add_argument("--keep-logs", action="store_true", help="keep the workers' logs after a good run")
    parser.add_argument("--seed", type=int, default=None, help="seed of the shuffles (default: random, printed)")
    parser.add_argument("--output", default=str(ROOT / "build" / "bench.md"),
                        help="Markdown report file (default %(default)s; '' for none)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", default="synthetic", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    def sizes(text: str) -> list[int]:
        try:
            values = sorted({int(v.replace("_", "")) for v in text.split(",") if v.strip()})
        except ValueError:
            parser.error(f"expected comma-separated integers, got {text!r}")
        if any(v < 1 for v in values):
            parser.error("sizes must be positive")
        return values

    args.sizes = sizes(args.sizes)
    args.linearity = [n for n in sizes(args.linearity) if n not in args.sizes]
    args.pages = [p for p in args.pages.split(",") if p.strip()]
    if args.quick:
        args.sizes, args.linearity = args.sizes[:1], []
        args.rounds, args.turn, args.page_rounds = args.rounds or 2, 2, 2
        args.shape_rounds, args.shape_turn = 2, 2
        args.memory_n = min(args.memory_n, 100)
        args.profile_n, args.opens = 0, 1
    if not args.sizes and not args.worker:
        parser.error("--sizes needs at least one N")
    keys = [k.strip() for k in args.configs.split(",") if k.strip()]
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        parser.error(f"unknown configurations {unknown}; known: {', '.join(BY_KEY)}")
    if "none" not in keys:
        keys.insert(0, "none")
    shapes = [k.strip() for k in args.shapes.split(",") if k.strip()]
    if [k for k in shapes if k not in SHAPE_BY_KEY]:
        parser.error(f"unknown shapes in {shapes}; known: {', '.join(SHAPE_BY_KEY)}")
    args.shapes = [shape for shape in SHAPES if shape.key in shapes or shape.key == "fk"]  # fk: the N sweep
    args.keys = [c.key for c in CONFIGS if c.key in keys]  # canonical order for the report
    return args


def peers_available(keys: list[str], no_peers: bool) -> tuple[list[str], list[str]]:
    import importlib.util

    notes = []
    kept = []
    for key in keys:
        config = BY_KEY[key]
        if config.peer:
            if no_peers:
                continue
            if importlib.util.find_spec(config.peer) is None:
                notes.append(f"{config.label}: skipped, `{config.peer}` is not installed in {sys.prefix} "
                             "(`make bench` installs the peers into .venv-bench)")
                continue
        kept.append(key)
    return kept, notes


def main(argv: list[str] | None = None) -> int:
    global PACKAGE_VERSION, LOAD_AT_START
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker, args.data, args.rows)
    PACKAGE_VERSION = package_version()
    LOAD_AT_START = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    rng = random.Random(seed)
    keys, notes = peers_available(args.keys, args.no_peers)
    shapes = [shape for shape in args.shapes if not shape.needs or importlib.util.find_spec(shape.needs)]
    notes += [f"loop shape {shape.label}: skipped, `{shape.needs}` is not installed in {sys.prefix}"
              for shape in args.shapes if shape not in shapes]
    at = TARGET_AT if TARGET_AT in args.sizes else max(args.sizes)  # as render() picks it
    reports: dict[tuple[str, str], int | None] = {}  # (configuration, shape) -> the peer's N+1 reports
    page_keys = [k for k in PAGE_CONFIGS if k in keys] if args.pages else []
    keys = [k for k in keys if k not in PAGE_ONLY]
    log_dir = Path(tempfile.mkdtemp(prefix="ddtpp-bench-"))
    rows = max(args.sizes + args.linearity + [args.memory_n])
    log(f"starting {len(keys)} workers ({', '.join(keys)}; {rows:,} rows each; logs in {log_dir}); seed {seed}")
    workers = {key: Worker(BY_KEY[key], "synthetic", rows, log_dir) for key in keys}
    page_workers = {key: Worker(BY_KEY[key], "demo", 0, log_dir) for key in page_keys} \
        if {"default", "default+ours"} <= set(page_keys) else {}
    samples = Samples()
    memory: dict[str, dict] = {}
    full_memory: dict[str, dict] = {}
    opens: dict[str, dict] = {}
    pages: dict[str, str] = {}
    page_info: dict[str, dict] = {}
    profiles: list[dict] = []
    try:
        for worker in [*workers.values(), *page_workers.values()]:
            worker.wait_ready()
        info = workers["none"].call("info")
        ours_info = workers["ours"].call("info") if "ours" in workers else {"wrapped": []}
        info["proofs"] = any(w.endswith("(prove)") for w in ours_info["wrapped"])
        info["versions"].update(ours_info.get("versions", {}))
        log("checking every configuration: panels ran, queries seen, N+1 reported")
        for worker in workers.values():
            reports[(worker.config.key, "fk")] = check_synthetic(worker, min(args.sizes)).get("peer_reports")
        for n in args.sizes:
            page = synthetic(n)
            warm_up(workers, page, 2 if n == min(args.sizes) else 1)
            rounds = args.rounds or default_rounds(n)
            run_rounds(workers, page, rounds, args.turn, samples, rng, f"N={n:,}")
        shape_workers = {k: w for k, w in workers.items() if k not in SHAPE_SKIPS}
        for shape in shapes[1:]:  # the forward FK ran above, at every N
            log(f"loop shape {shape.label} at N={at:,}: checking every configuration")
            for worker in shape_workers.values():
                reports[(worker.config.key, shape.key)] = check_synthetic(worker, at, shape).get("peer_reports")
            page = synthetic(at, shape)  # the checked request warmed each worker up for this page
            run_rounds(shape_workers, page, args.shape_rounds, args.shape_turn, samples, rng, f"{shape.label} N={at:,}")
        big = {k: w for k, w in workers.items() if k in ("none", "ours")}
        for n in args.linearity if len(big) == 2 else []:
            page = synthetic(n)
            warm_up(big, page, 1)
            run_rounds(big, page, args.linearity_rounds, args.linearity_turn, samples, rng, f"N={n:,} (linearity)")
        if args.memory_n:
            log(f"memory pass at N={args.memory_n:,}")
            for key in [k for k in ("none", "ours", "ours-noproofs", "ours-lazy") if k in workers]:
                memory[key] = workers[key].call("memory", path=synthetic(args.memory_n))
            # The same with a full store, measured: no toolbar holds nothing across requests, so one
            # request before the traced one is its steady state; ours fills the store first.
            full_pages = [("fk", synthetic(args.memory_n))]
            manager = next((shape for shape in shapes if shape.key == "manager"), None)
            if manager is not None:  # a root per row: what a held capture costs most
                full_pages.append(("manager", synthetic(min(args.memory_n, max(args.sizes)), manager)))
            for name, path in full_pages:
                log(f"memory pass with a full store: {path}")
                for key, requests in (("none", 2), ("ours-lazy", RESULTS_CACHE_SIZE + 1)):
                    if key in workers:
                        full_memory.setdefault(name, {})[key] = workers[key].call("memory_full", path=path,
                                                                                  requests=requests)
        if page_workers:
            found = page_workers["none"].call("pages")["pages"] if "none" in page_workers else \
                page_workers["default"].call("pages")["pages"]
            heaviest = max(found, key=lambda p: (found[p]["queries"], p))
            if "demo" in args.pages:
                pages["demo's heaviest page"] = heaviest
                page_info[heaviest] = found[heaviest]
            if "drf" in args.pages:
                drf = "/api/orders/"
                try:
                    queries = page_workers["default"].call("check", path=drf)["queries"]
                    pages["DRF nested serializers"] = drf
                    page_info[drf] = {"queries": queries}
                except WorkerError as exc:
                    notes.append(f"DRF page skipped: {str(exc).splitlines()[0]}")
            for label, path in pages.items():
                for worker in page_workers.values():
                    check_page(worker, path)
                warm_up(page_workers, path, 1 if args.quick else 2)
                run_rounds(page_workers, path, args.page_rounds, args.turn, samples, rng, f"{label} {path}")
                if "default+ours-lazy" in page_workers:  # opening the panel: where lazy proofs are made
                    runs = [page_workers["default+ours-lazy"].call("open", path=path) for _ in range(args.opens)]
                    opens[path] = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        if args.profile_n and "ours" in workers:
            log(f"profiling ours alone at N={args.profile_n:,} with py-spy")
            prof = profile(workers["ours"], synthetic(args.profile_n), args.profile_requests, log_dir,
                           args.profile_n + 1)
            profiles += [prof] if prof else []
            for shape in [shape for shape in shapes if shape.key in ("manager", "template")]:
                log(f"profiling ours alone on the {shape.label} shape at N={args.profile_n:,} with py-spy")
                prof = profile(workers["ours"], synthetic(args.profile_n, shape), args.profile_requests, log_dir,
                               1 + shape.per_row * args.profile_n, shape.key)
                profiles += [prof] if prof else []
            if "default+ours" in page_workers and "DRF nested serializers" in pages:
                drf = pages["DRF nested serializers"]
                log(f"profiling default panels + ours on {drf} with py-spy")
                prof = profile(page_workers["default+ours"], drf, 2 * args.profile_requests, log_dir,
                               page_info[drf]["queries"])
                profiles += [prof] if prof else []
    finally:
        everyone = [*workers.values(), *page_workers.values()]
        for worker in everyone:  # all exit at once
            worker.quit()
        for worker in everyone:
            worker.close()
    results = Results(args, info, keys, samples, args.sizes,
                      [n for n in args.linearity if samples.has("ours", synthetic(n))], memory, pages,
                      list(page_workers), page_info, profiles, shapes, reports, time.perf_counter() - _STARTED,
                      full_memory, opens)
    text = render(results)
    if notes:
        text += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
    sys.stdout.write(text)
    sys.stdout.flush()
    if args.output:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        for raw in log_dir.glob("profile-*.txt"):  # py-spy's collapsed stacks, for flame graphs
            shutil.copy(raw, output.parent / f"{output.stem}-{raw.name}")
        log(f"written to {output}")
    if not args.keep_logs:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
