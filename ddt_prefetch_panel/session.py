"""Many reports as one: a browsing session, a crawl, or a test suite.

Findings are aggregated by (kind, relation, call site): one entry per problem in the code,
with the requests, pages or tests where it occurred, the total queries it cost and the
proven fix. The same aggregation serves the panel's "All requests" tab (requests read from
DDT's store, memory or database), the ``prefetch_report`` command and the pytest report.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit

from .findings import Finding, kind_title, markdown_table
from .patch import embed_fixes

PANEL_ID = "PrefetchPanel"
HISTORY_PANEL_ID = "HistoryPanel"
SOURCE_KEYS = ("requests", "pages", "tests")


def finding_key(finding: dict) -> tuple:
    """What makes two findings the same problem in the code."""
    callsite = finding.get("callsite") or {}
    subject = finding.get("relation") or finding.get("model")
    # Without a relation (duplicates, indexes) the statement tells problems of one model apart.
    statement = None if finding.get("relation") else finding.get("sql")
    # One line reached from two places to act (a template included by two views) is two problems.
    return (finding.get("kind"), subject, callsite.get("filename"), callsite.get("lineno"), statement,
            finding.get("fingerprint"))


def _proof_rank(finding: dict) -> int:
    status = (finding.get("proof") or {}).get("status")
    return {"verified": 0, None: 1, "skipped": 2, "failed": 3}.get(status, 2)


def aggregate(sources: Iterable[tuple[dict, dict]]) -> dict:
    """A session report from ``(source, report dict)`` pairs.

    ``source`` describes where a report came from: ``{"request_id", "url", "method"}`` for a
    request, ``{"test": node id}`` for a test. Entries keep the fields of the finding with the
    best proof (verified first) and add ``occurrences`` plus the ``requests``, ``pages`` and
    ``tests`` they were seen in; ``count``, ``avoidable`` and ``duration_ms`` are totals.
    ``budgets`` gives each test (or page) that ran to the end its query count and the ids of its
    statement shapes, whose text ``statements`` holds once for all (query budgets, ``baseline.py``).
    """
    entries: dict[tuple, dict] = {}
    order: list[tuple] = []
    reports = 0
    pages: set[str] = set()
    tests: set[str] = set()
    queries = 0
    budgets: dict[str, dict] = {}
    statements: dict[str, str] = {}
    for source, report in sources:
        if not report:
            continue
        reports += 1
        summary = report.get("summary") or {}
        queries += summary.get("queries", 0)
        page = _page(source)
        if page:
            pages.add(page)
        if source.get("test"):
            tests.add(source["test"])
        budget_key = source.get("test") or page
        if budget_key and not failed(source):
            _add_budget(budgets.setdefault(budget_key, {"queries": 0, "statements": []}), summary, statements)
        for finding in embed_fixes(report):
            key = finding_key(finding)
            entry = entries.get(key)
            if entry is None:
                entry = entries[key] = {**finding, "count": 0, "avoidable": 0, "duration_ms": 0.0,
                                        "occurrences": 0, "requests": [], "pages": [], "tests": []}
                order.append(key)
            elif _proof_rank(finding) < _proof_rank(entry):
                totals = {k: entry[k] for k in ("count", "avoidable", "duration_ms", "occurrences", *SOURCE_KEYS)}
                entry.clear()
                entry.update({**finding, **totals})
            entry["occurrences"] += 1
            entry["count"] += int(finding.get("count") or 0)
            entry["avoidable"] += int(finding.get("avoidable") or 0)
            entry["duration_ms"] = round(entry["duration_ms"] + float(finding.get("duration_ms") or 0), 3)
            for name, value in (("requests", source.get("request_id")), ("pages", page), ("tests", source.get("test"))):
                if value and value not in entry[name]:
                    entry[name].append(value)
    findings = sorted((entries[k] for k in order), key=_rank)
    return {
        "version": 1,
        "summary": {
            "reports": reports,
            "pages": len(pages),
            "tests": len(tests),
            "queries": queries,
            "findings": len(findings),
            "n_plus_one": sum(1 for f in findings if f["kind"] == "n_plus_one"),
            "avoidable": sum(f["avoidable"] for f in findings),
        },
        "findings": findings,
        "budgets": dict(sorted(budgets.items())),
        "statements": dict(sorted(statements.items())),
    }


def _rank(entry: dict) -> tuple:
    """Most avoidable first; ties by where they are, not by timings, so a report recorded twice
    (a baseline checked in) lists its findings in the same order."""
    callsite = entry.get("callsite") or {}
    return (-entry["avoidable"], -entry["occurrences"], str(callsite.get("filename") or ""),
            int(callsite.get("lineno") or 0), entry.get("fingerprint") or "")


def failed(source: dict) -> bool:
    """A test that failed or a page that answered with a server error may have stopped early:
    its query count is no budget, and the run does not show its findings fixed."""
    return bool(source.get("failed")) or int(source.get("status_code") or 0) >= 500


def _add_budget(budget: dict, summary: dict, statements: dict[str, str]) -> None:
    """A page requested twice keeps its largest count and every statement shape it ran."""
    shapes = summary.get("statements") or {}
    statements.update(shapes)
    budget["queries"] = max(budget["queries"], int(summary.get("queries") or 0))
    budget["statements"] = sorted(set(budget["statements"]) | set(shapes))


def _page(source: dict) -> str | None:
    url = source.get("url")
    if not url:
        return None
    path = urlsplit(url).path or "/"
    method = source.get("method")
    return f"{method} {path}" if method and method != "GET" else path


# --------------------------------------------------------------------------- DDT's store


def stored_reports(store: Any = None) -> Iterator[tuple[dict, dict]]:
    """``(source, report dict)`` for every request in DDT's store that our panel analysed,
    oldest first (the history panel's stats give the URL and method)."""
    if store is None:
        from debug_toolbar.store import get_store

        store = get_store()
    ids = list(store.request_ids())
    if type(store).__name__ == "DatabaseStore":
        ids.reverse()  # newest first there
    for request_id in ids:
        stats = store.panel(request_id, PANEL_ID) or {}
        if stats.get("proofs") == "pending":  # a lazy panel's proofs, made when a report reads it
            from .lazy import prove_held

            stats = prove_held(str(request_id), stats)
            store.save_panel(request_id, PANEL_ID, stats)
        report = stats.get("report")
        if not report:
            continue
        history = store.panel(request_id, HISTORY_PANEL_ID) or {}
        yield {
            "request_id": str(request_id),
            "url": history.get("request_url"),
            "method": history.get("request_method"),
            "status_code": history.get("status_code"),
        }, report


def session_report(store: Any = None) -> dict:
    return aggregate(stored_reports(store))


# --------------------------------------------------------------------------- exports


def seen_in(entry: dict, limit: int = 3) -> str:
    """``3 requests: /orders/, /menu/ …`` / ``2 tests: tests/test_x.py::test_a, …``."""
    for name, noun in (("tests", "test"), ("pages", "page"), ("requests", "request")):
        values = entry.get(name) or []
        if values:
            shown = ", ".join(f"`{v}`" for v in values[:limit]) + (" …" if len(values) > limit else "")
            plural = noun if len(values) == 1 else noun + "s"
            return f"{len(values)} {plural}: {shown}" if name != "requests" else f"{len(values)} {plural}"
    return ""


def to_markdown(data: dict, title: str = "ddt-prefetch-panel report", root: str | None = None) -> str:
    """Summary table first (with where each problem was seen), one short section per entry, then
    every fix as one patch."""
    from .patch import report_patch

    summary = data.get("summary") or {}
    findings = data.get("findings") or []
    unit = "tests" if summary.get("tests") or any(f.get("tests") for f in findings) else "requests"
    head = [f"## {title}", "",
            f"{summary.get('reports', 0)} {unit}: {summary.get('findings', 0)} problems, "
            f"{summary.get('avoidable', 0)} avoidable queries.", ""]
    if not findings:
        return "\n".join(head + ["No repeated queries."]) + "\n"
    head += markdown_table(findings, seen=True) + [""]
    sections = []
    for number, entry in enumerate(findings, 1):
        item = Finding.from_dict(entry).markdown_item(number)
        seen = seen_in(entry)
        sections.append(item + (f"; seen in {seen}" if seen else ""))
    patch = report_patch(findings, root)
    if patch:
        sections.append(f"\n### Patch\n\nAll the fixes above, for `git apply`:\n\n```diff\n{patch}```")
    return "\n".join(head + sections) + "\n"


def render(data: dict, fmt: str, root: str | None = None) -> str:
    """The session report as ``md``, ``json`` or ``sarif`` text; paths in the patch and the SARIF
    log are relative to ``root`` (default ``BASE_DIR``; the pytest report uses pytest's rootdir)."""
    if fmt == "md":
        return to_markdown(data, root=root)
    if fmt == "json":
        return json.dumps(data, indent=2, sort_keys=True) + "\n"
    if fmt == "sarif":
        from .sarif import to_sarif

        return json.dumps(to_sarif(data.get("findings") or [], root), indent=2) + "\n"
    raise ValueError(f"unknown format {fmt!r}: use md, json or sarif")


def format_for(path: str, default: str = "md") -> str:
    """The format a report path asks for by its extension."""
    lowered = path.lower()
    for suffix, fmt in ((".sarif", "sarif"), (".sarif.json", "sarif"), (".json", "json"), (".md", "md")):
        if lowered.endswith(suffix):
            return fmt
    return default


# --------------------------------------------------------------------------- the "All requests" tab


def session_context(data: dict, request_id: str | None = None, editor_url: str | None = None) -> dict:
    """Template context of the session tab (plain data, links and copyable texts included)."""
    from .editor import editor_pattern, link_finding
    from .patch import finding_patch, report_patch

    pattern = editor_pattern(editor_url)
    findings = data.get("findings") or []
    entries = []
    for number, entry in enumerate(findings, 1):
        snippets = entry.get("snippets") or {}
        entries.append({
            **link_finding(entry, pattern),
            "number": number,
            "kind_label": kind_title(entry.get("kind", "")),
            "in_this_request": bool(request_id) and request_id in (entry.get("requests") or []),
            "patch": snippets.get("patch") or finding_patch(entry),
            "markdown": Finding.from_dict(entry).to_markdown(),
        })
    return {
        "summary": data.get("summary") or {},
        "findings": entries,
        "session_markdown": to_markdown(data),
        "session_json": json.dumps(data, indent=2, sort_keys=True),
        "session_patch": report_patch(findings) or "",
    }


def session_view(request: Any) -> Any:
    """``GET``: the tab's HTML as ``{"content": ...}`` (like DDT's render_panel);
    ``?format=md|json|sarif``: the whole session as a file."""
    from django.http import HttpResponse, JsonResponse
    from django.template.loader import render_to_string

    from .conf import get_config

    data = session_report()
    fmt = request.GET.get("format")
    if fmt:
        try:
            text = render(data, fmt)
        except ValueError as exc:
            return HttpResponse(str(exc), status=400, content_type="text/plain")
        response = HttpResponse(text, content_type="text/markdown" if fmt == "md" else "application/json")
        response["Content-Disposition"] = f'attachment; filename="ddt-prefetch-session.{fmt}"'
        return response
    context = session_context(data, request.GET.get("request_id"), get_config().get("EDITOR_URL"))
    context["session_url"] = request.path
    return JsonResponse({"content": render_to_string("ddt_prefetch_panel/session.html", context)})


def session_urls() -> list:
    """URL patterns for the panel's ``get_urls()`` (served under DDT's ``djdt`` namespace)."""
    from debug_toolbar.decorators import render_with_toolbar_language, require_show_toolbar
    from django.contrib.auth.decorators import login_not_required
    from django.urls import path

    view = login_not_required(require_show_toolbar(render_with_toolbar_language(session_view)))
    return [path("prefetch/session/", view, name="ddtpp_session")]
