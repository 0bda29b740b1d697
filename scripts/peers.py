"""Run the peer test cases (tests/peers/cases.py) under django-zeal, nplusone and our detect().

    make peers                       # creates .venv-peers, then runs this script
    .venv-peers/bin/python scripts/peers.py [--cases] [--json]

Each tool runs in its own process (zeal and nplusone patch Django's ORM when their app loads),
on an in-memory SQLite database, every case inside a transaction that is rolled back. A case
passes for a tool when the tool does what the peer's own test asserts:

* must report: every expected relation is named, by an N+1 / lazy-load report or, for nplusone's
  eager-load cases, an unused eager-load report (nplusone's messages carry no app label, so
  names are compared from the model on);
* quiet: nothing of the asserted kinds is reported (an exception also fails the case).

Each tool is driven through its own public API: zeal's ``zeal_context``/``zeal_ignore`` with
``ZEAL_RAISE = False`` (warnings collected), nplusone's ``NPlusOneMiddleware`` around each block
with a collecting ``NPLUSONE_LOGGER``, ours through ``detect()`` and ``ignore_n_plus_one()``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import warnings
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("ours", "zeal", "nplusone")
TOOL_APPS = {"ours": ["ddt_prefetch_panel"], "zeal": ["zeal"], "nplusone": ["nplusone.ext.django"]}


def configure(tool: str) -> None:
    import django
    from django.conf import settings

    sys.path.insert(0, str(ROOT))
    settings.configure(
        DEBUG=True,
        SECRET_KEY="peers",
        USE_TZ=True,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", *TOOL_APPS[tool],
                        "tests.peers.social", "tests.peers.testapp"],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        ALLOWED_HOSTS=["*"],
        ZEAL_RAISE=False,
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --------------------------------------------------------------------------- one env per tool


class BaseEnv:
    """Collects ``(kind, name)`` pairs reported while the case runs."""

    def __init__(self, data: dict[str, Any], case: Any) -> None:
        self.data = data
        self.case = case
        self.reported: list[tuple[str, str]] = []

    def ignore(self, patterns: list[dict[str, str]] | None = None) -> Any:
        return nullcontext()

    def context(self) -> Any:
        return nullcontext()

    @contextmanager
    def around(self) -> Iterator[None]:
        yield


class OurEnv(BaseEnv):
    def ignore(self, patterns: list[dict[str, str]] | None = None) -> Any:
        from ddt_prefetch_panel.testing import ignore_n_plus_one
        from tests.peers.cases import ours_allow

        return ignore_n_plus_one(*ours_allow(patterns)) if patterns else ignore_n_plus_one()

    @contextmanager
    def context(self) -> Iterator[None]:
        from ddt_prefetch_panel import detect
        from tests.peers.cases import ours_allow

        options: dict[str, Any] = {"THRESHOLD": self.case.threshold}
        if self.case.allow:
            options["ALLOW"] = ours_allow(self.case.allow)
        with detect(**options) as report:
            yield
        self.reported += [(f.kind, f.relation or f.model or "") for f in report.findings]


ZEAL_MESSAGE = re.compile(r"N\+1 detected on (\S+)")


class ZealEnv(BaseEnv):
    def ignore(self, patterns: list[dict[str, str]] | None = None) -> Any:
        from zeal import zeal_ignore

        return zeal_ignore(list(patterns) if patterns else None)

    @contextmanager
    def context(self) -> Iterator[None]:
        from django.test import override_settings
        from zeal import zeal_context

        with override_settings(ZEAL_NPLUSONE_THRESHOLD=self.case.threshold,
                               ZEAL_ALLOWLIST=list(self.case.allow)), zeal_context():
            yield

    @contextmanager
    def around(self) -> Iterator[None]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        for warning in caught:
            match = ZEAL_MESSAGE.search(str(warning.message))
            if match:
                self.reported.append(("n_plus_one", match.group(1)))


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


NPLUSONE_MESSAGE = re.compile(r"Potential (n\+1 query|unnecessary eager load) detected on `([^`]+)`")


class NPlusOneEnv(BaseEnv):
    """nplusone has no scoped ignore: ``ignore()`` does nothing (its allowlist is per request)."""

    @contextmanager
    def context(self) -> Iterator[None]:
        from django.http import HttpRequest, HttpResponse
        from django.test import override_settings
        from nplusone.ext.django import NPlusOneMiddleware

        handler = Collect()
        logger = logging.getLogger(f"peers.nplusone.{id(handler)}")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        whitelist = [dict(entry) for entry in self.case.allow]
        with override_settings(NPLUSONE_LOGGER=logger, NPLUSONE_LOG_LEVEL=logging.WARNING,
                               NPLUSONE_WHITELIST=whitelist):
            middleware = NPlusOneMiddleware(lambda request: HttpResponse())
            request = HttpRequest()
            middleware.process_request(request)
            try:
                yield
            finally:
                middleware.process_response(request, HttpResponse())
        for message in handler.messages:
            match = NPLUSONE_MESSAGE.search(message)
            if match:
                kind = "n_plus_one" if match.group(1).startswith("n+1") else "unused_prefetch"
                self.reported.append((kind, match.group(2)))


ENVS = {"ours": OurEnv, "zeal": ZealEnv, "nplusone": NPlusOneEnv}


def same_name(expected: str, reported: str) -> bool:
    """``app.Model.field`` against a report that may drop the app label (nplusone)."""
    return expected == reported or expected.split(".", 1)[-1] == reported


def verdict(tool: str, case: Any, reported: list[tuple[str, str]]) -> bool:
    """Did the tool do what the peer's test asserts? Each tool is held to the names it uses itself
    (zeal names a ``.get()`` loop ``Model.get()``; we name no relation there)."""
    if case.expect == "quiet":
        return not any(kind in case.silent for kind, _ in reported)
    names = [name for kind, name in reported if kind == case.kind]
    expected = case.relations if tool == "ours" else case.names
    if not expected:
        return bool(names)
    return all(any(same_name(one, name) for name in names) for one in expected)


def run_tool(tool: str) -> list[dict[str, Any]]:
    configure(tool)
    from django.db import transaction

    from tests.peers.cases import CASES

    results = []
    for case in CASES:
        error = None
        env = ENVS[tool]({}, case)
        try:
            with transaction.atomic():
                env.data = case.setup()
                with env.around():
                    for block in case.blocks:
                        if case.wrap:
                            with env.context():
                                block(env)
                        else:
                            block(env)
                transaction.set_rollback(True)
        except Exception as exc:  # a crash is a failed case, reported with its message
            error = f"{type(exc).__name__}: {exc}"
        passed = error is None and verdict(tool, case, env.reported)
        results.append({"id": case.id, "expect": case.expect, "kind": case.kind, "passed": passed,
                        "reported": sorted(set(env.reported)), "error": error})
    return results


# --------------------------------------------------------------------------- table


def versions() -> dict[str, str]:
    from importlib.metadata import version

    import django

    return {"ours": "ddt-prefetch-panel " + version("ddt-prefetch-panel"), "zeal": "django-zeal " + version("django-zeal"),
            "nplusone": "nplusone " + version("nplusone"), "django": django.get_version()}


ROWS = (
    ("zeal", "report", "n_plus_one", "zeal: N+1 must be reported"),
    ("zeal", "quiet", None, "zeal: must stay quiet"),
    ("nplusone", "report", "n_plus_one", "nplusone: lazy load must be reported (threshold 1)"),
    ("nplusone", "report", "unused_prefetch", "nplusone: unused eager load, every level named"),
    ("nplusone", "quiet", None, "nplusone: must stay quiet"),
)


def table(results: dict[str, list[dict[str, Any]]], names: dict[str, str]) -> str:
    head = "| Peer cases | " + " | ".join(names[t] for t in TOOLS) + " |"
    lines = [head, "|---|" + "---:|" * len(TOOLS)]
    for peer, expect, kind, label in ROWS:
        cells = []
        for tool in TOOLS:
            rows = [r for r in results[tool] if r["id"].startswith(peer + "/") and r["expect"] == expect
                    and (kind is None or r["kind"] == kind)]
            errors = sum(1 for r in rows if r["error"])
            cell = f"{sum(r['passed'] for r in rows)}/{len(rows)}"
            cells.append(cell + (f" ({errors} error{'s' if errors > 1 else ''})" if errors else ""))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tool", choices=TOOLS, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the per-case results as JSON")
    parser.add_argument("--cases", action="store_true", help="list the cases where the tools disagree")
    args = parser.parse_args()
    if args.tool:
        json.dump({"results": run_tool(args.tool), "versions": versions() if args.tool == "ours" else {}}, sys.stdout)
        return 0

    results: dict[str, list[dict[str, Any]]] = {}
    found: dict[str, str] = {}
    for tool in TOOLS:
        child = subprocess.run([sys.executable, __file__, "--tool", tool], capture_output=True, text=True,
                               cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if child.returncode:
            sys.stderr.write(child.stderr)
            return child.returncode
        data = json.loads(child.stdout)
        results[tool] = data["results"]
        found.update(data["versions"])
    if args.json:
        json.dump(results, sys.stdout, indent=1)
        return 0
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    print(f"Measured {stamp}, Django {found['django']}, Python {sys.version.split()[0]}, SQLite.\n")
    print(table(results, {t: found[t] for t in TOOLS}))
    if args.cases:
        print()
        by_id = {tool: {r["id"]: r for r in results[tool]} for tool in TOOLS}
        for case_id in by_id["ours"]:
            row = {tool: by_id[tool][case_id] for tool in TOOLS}
            if len({r["passed"] for r in row.values()}) > 1:
                marks = "  ".join(f"{tool}:{'ok' if r['passed'] else 'FAIL'}" for tool, r in row.items())
                print(f"{case_id:55} {marks}")
                for tool, r in row.items():
                    if not r["passed"]:
                        print(f"    {tool}: {r['error'] or r['reported'] or 'nothing reported'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
