"""Baselines: adopt the report on an existing project, fail on new problems only.

Any JSON report the product writes is a baseline: the pytest report (``--n-plus-one-report=x.json``),
``prefetch_report --format json``, the session tab's Download JSON, one request's
``Report.to_dict()``, or a SARIF log. A finding is known when its ``fingerprint``
(``findings.finding_fingerprint``: no line numbers, no directories) is in the baseline.

A run compared with a baseline has four lists: **new** findings, **known** ones (still there),
**fixed** ones (in the baseline, not seen, and every test or page that had them ran), and
**unchecked** ones (not seen, but not every test or page that had them ran: nothing is claimed).
Query budgets: a test or page whose query count grew by more than ``BUDGET_TOLERANCE`` over
the baseline's is listed with the statement shapes the baseline did not record for it.

``update`` rewrites a baseline with what is left: fixed findings go, budgets that shrank take
the new count; nothing is ever added (record a new baseline for that).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .findings import Finding, fence, finding_fingerprint, kind_title, place_where, proof_text, where
from .patch import report_patch
from .sarif import FINGERPRINT_KEY
from .session import render as render_report
from .session import seen_in

SOURCES = ("tests", "pages")
# Short lists (known, fixed) in Markdown and the terminal stop after this many lines.
SHORT_LIST = 15
# A pull-request comment against a baseline leaves the patch out rather than grow past this.
COMMENT_BYTES = 4000


@dataclass
class Baseline:
    """What a baseline file holds: its findings by fingerprint, and budgets by test or page."""

    findings: dict[str, dict] = field(default_factory=dict)
    budgets: dict[str, dict] = field(default_factory=dict)  # {"queries": int, "statements": [shape ids]}
    document: dict = field(default_factory=dict)  # the file as read, for update()


@dataclass
class Comparison:
    """A run against a baseline (lists of finding dicts; ``budgets`` of grown tests or pages)."""

    new: list[dict] = field(default_factory=list)
    known: list[dict] = field(default_factory=list)
    fixed: list[dict] = field(default_factory=list)
    unchecked: list[dict] = field(default_factory=list)
    # {"key": test id or page, "before": int, "after": int, "statements": [text of new shapes]}
    budgets: list[dict] = field(default_factory=list)

    def headline(self) -> str:
        """``2 new N+1 problems, 5 fixed, 47 known`` (and grown budgets, unchecked findings)."""
        everything = self.new + self.known + self.fixed + self.unchecked
        noun = "N+1 problem" if all(f.get("kind") == "n_plus_one" for f in everything) else "problem"
        text = f"{len(self.new)} new {noun}{'' if len(self.new) == 1 else 's'}, {len(self.fixed)} fixed, " \
               f"{len(self.known)} known"
        if self.budgets:
            text += f", {len(self.budgets)} query budget{'s' if len(self.budgets) != 1 else ''} exceeded"
        if self.unchecked:
            text += f" ({len(self.unchecked)} not checked: not every test or page that had them ran)"
        return text

    def to_dict(self) -> dict:
        """What a report says about the comparison (JSON)."""
        return {
            "headline": self.headline(),
            "new": [f.get("fingerprint") for f in self.new],
            "known": [f.get("fingerprint") for f in self.known],
            "fixed": [short_entry(f) for f in self.fixed],
            "unchecked": [short_entry(f) for f in self.unchecked],
            "budgets": self.budgets,
        }


def fingerprint_of(entry: dict) -> str:
    return entry.get("fingerprint") or finding_fingerprint(entry)


def from_document(data: Any) -> Baseline:
    """A baseline from any JSON report the product writes (see the module docstring)."""
    if not isinstance(data, dict):
        raise ValueError("a baseline is a JSON object (a report written by ddt-prefetch-panel)")
    if isinstance(data.get("runs"), list):
        entries = [_sarif_entry(result) for run in data["runs"] for result in run.get("results") or []]
    elif isinstance(data.get("findings"), list):
        entries = [dict(entry) for entry in data["findings"]]
    else:
        raise ValueError("no findings in this file: give a JSON or SARIF report written by ddt-prefetch-panel")
    findings: dict[str, dict] = {}
    for entry in entries:
        key = fingerprint_of(entry)
        findings.setdefault(key, {**entry, "fingerprint": key})
    budgets = {str(key): {"queries": int(value.get("queries") or 0), "statements": list(value.get("statements") or [])}
               for key, value in (data.get("budgets") or {}).items() if isinstance(value, dict)}
    return Baseline(findings, budgets, data)


def load(path: str) -> Baseline:
    with open(path, encoding="utf-8") as handle:
        try:
            data = json.load(handle)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not JSON ({exc})") from None
    return from_document(data)


def _sarif_entry(result: dict) -> dict:
    """A SARIF result as a finding dict: its fingerprint and the properties the log kept."""
    entry = dict(result.get("properties") or {})
    entry["kind"] = result.get("ruleId")
    entry["fingerprint"] = (result.get("partialFingerprints") or {}).get(FINGERPRINT_KEY)
    location = ((result.get("locations") or [{}])[0]).get("physicalLocation") or {}
    if location:
        entry["callsite"] = {"filename": (location.get("artifactLocation") or {}).get("uri"),
                             "lineno": (location.get("region") or {}).get("startLine")}
    return entry


def compare(data: dict, baseline: Baseline, tolerance: int = 0) -> Comparison:
    """The run ``data`` (a session report: ``session.aggregate``) against ``baseline``.

    The tests or pages the run covered are the keys of its ``budgets`` (those that ran to the end:
    passed, or answered without a server error): a baseline finding not seen is fixed only when
    every test (or page) it was recorded in is one of them.
    """
    ran = set(data.get("budgets") or {})
    seen: set[str] = set()
    result = Comparison()
    for entry in data.get("findings") or []:
        key = fingerprint_of(entry)
        seen.add(key)
        (result.known if key in baseline.findings else result.new).append(entry)
    for key, entry in baseline.findings.items():
        if key in seen:
            continue
        sources = next((entry[name] for name in SOURCES if entry.get(name)), [])
        (result.fixed if sources and set(sources) <= ran else result.unchecked).append(entry)
    result.budgets = grown_budgets(data.get("budgets") or {}, data.get("statements") or {}, baseline.budgets,
                                   tolerance)
    return result


def grown_budgets(current: dict, statements: dict, recorded: dict, tolerance: int) -> list[dict]:
    """Tests or pages of both runs whose query count grew by more than ``tolerance``, with the
    statements (their shapes' text) the baseline did not record for them."""
    grown = []
    for key, budget in current.items():
        before = recorded.get(key)
        if before is None or budget["queries"] - before["queries"] <= tolerance:
            continue
        recorded_shapes = set(before["statements"])
        added = [shape for shape in budget.get("statements") or [] if shape not in recorded_shapes]
        grown.append({"key": key, "before": before["queries"], "after": budget["queries"],
                      "statements": [statements.get(shape, shape) for shape in added]})
    return grown


def mark(data: dict, comparison: Comparison) -> dict:
    """``data`` with the comparison: ``baseline`` at the top, ``baseline_state`` on each finding
    (``"new"`` or ``"known"``, as SARIF's ``baselineState`` says ``"new"`` / ``"unchanged"``)."""
    new = {fingerprint_of(entry) for entry in comparison.new}
    findings = [{**entry, "baseline_state": "new" if fingerprint_of(entry) in new else "known"}
                for entry in data.get("findings") or []]
    return {**data, "findings": findings, "baseline": comparison.to_dict()}


def update(baseline: Baseline, comparison: Comparison, current: dict) -> dict:
    """The baseline's document with what is left: fixed findings dropped, budgets of tests or pages
    that ran with fewer queries lowered to the new count. Never adds a finding nor a budget."""
    fixed = {fingerprint_of(entry) for entry in comparison.fixed}
    document = json.loads(json.dumps(baseline.document))
    if isinstance(document.get("runs"), list):
        for run in document["runs"]:
            run["results"] = [r for r in run.get("results") or []
                              if (r.get("partialFingerprints") or {}).get(FINGERPRINT_KEY) not in fixed]
    else:
        document["findings"] = [f for f in document.get("findings") or [] if fingerprint_of(f) not in fixed]
        _recount(document)
    budgets = document.get("budgets")
    if isinstance(budgets, dict):
        for key, budget in (current.get("budgets") or {}).items():
            if key in budgets and budget["queries"] <= int(budgets[key].get("queries") or 0):
                budgets[key] = {"queries": budget["queries"], "statements": list(budget.get("statements") or [])}
        texts = {**(document.get("statements") or {}), **(current.get("statements") or {})}
        used = {shape for budget in budgets.values() for shape in budget.get("statements") or []}
        document["statements"] = {shape: texts[shape] for shape in sorted(used) if shape in texts}
    document.pop("baseline", None)
    for entry in document.get("findings") or []:
        entry.pop("baseline_state", None)
    return document


def _recount(document: dict) -> None:
    summary = document.get("summary")
    if not isinstance(summary, dict):
        return
    findings = document["findings"]
    for key, value in (("findings", len(findings)),
                       ("n_plus_one", sum(1 for f in findings if f.get("kind") == "n_plus_one")),
                       ("avoidable", sum(int(f.get("avoidable") or 0) for f in findings))):
        if key in summary:
            summary[key] = value


def write(path: str, document: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(document, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- reports


def short_entry(entry: dict) -> dict:
    """A finding in a short list: enough to recognise it."""
    return {key: entry[key] for key in ("fingerprint", "kind", "relation", "model", "callsite", *SOURCES)
            if entry.get(key) is not None}


def short_line(entry: dict) -> str:
    """``N+1 `shop.Order.customer` at `demo/shop/views.py:42 in orders``` (one line of a short list)."""
    subject = entry.get("relation") or entry.get("model") or "a query"
    return f"{kind_title(entry.get('kind') or '')} `{subject}` at `{where(entry.get('callsite'))}`"


def render(data: dict, fmt: str, root: str | None = None) -> str:
    """The report as ``session.render`` writes it; Markdown against a baseline (``data`` went
    through :func:`mark`) is the pull-request comment of :func:`comparison_markdown`."""
    if fmt == "md" and data.get("baseline"):
        return comparison_markdown(data, root)
    return render_report(data, fmt, root)


def comparison_markdown(data: dict, root: str | None = None) -> str:
    """Short enough to paste in a code review (under :data:`COMMENT_BYTES` for ten new findings):
    the headline, every new finding with its proven fix, their patch when it still fits, and the
    fixed and known ones as short lists."""
    comparison = data["baseline"]
    new = [entry for entry in data.get("findings") or [] if entry.get("baseline_state") == "new"]
    known = [entry for entry in data.get("findings") or [] if entry.get("baseline_state") != "new"]
    lines = [f"## ddt-prefetch-panel: {comparison['headline']}"]
    if new:
        lines += ["", f"### New ({len(new)})"]
        lines += [line for number, entry in enumerate(new, 1) for line in ["", *new_item(entry, number)]]
    rest = []
    for title, entries in (("Fixed", comparison.get("fixed") or []), ("Known, still there", known)):
        if entries:
            rest += ["", f"### {title} ({len(entries)})", ""]
            rest += [f"- {short_line(entry)}" for entry in entries[:SHORT_LIST]]
            if len(entries) > SHORT_LIST:
                rest.append(f"- … and {len(entries) - SHORT_LIST} more")
    budgets = comparison.get("budgets") or []
    if budgets:
        rest += ["", f"### Query budgets exceeded ({len(budgets)})", ""]
        for budget in budgets:
            rest.append(f"- `{budget['key']}`: {budget['before']} → {budget['after']} queries")
            rest += [f"  - new: `{text}`" for text in budget["statements"][:5]]
    patch = report_patch(new, root) if new else None
    if patch:
        block = ["", "Patch of the new findings, for `git apply`:", "", "```diff", patch.rstrip("\n"), "```"]
        if len("\n".join(lines + block + rest).encode()) > COMMENT_BYTES:
            block = ["", "Their patch is in the full report (the same run without a baseline)."]
        lines += block
    return "\n".join(lines + rest) + "\n"


def new_item(entry: dict, number: int) -> list[str]:
    """A new finding in a comment: what and where in one line, then its proven fix as code."""
    finding = Finding.from_dict(entry)
    snippets, proof, act = finding.snippets or {}, finding.proof or {}, finding.place or {}
    seen = seen_in(entry, limit=2)
    lines = [f"**{number}. {kind_title(finding.kind)} `{finding.relation or finding.model or 'a query'}`** at "
             f"`{where(finding.callsite, with_function=False)}` · {finding.count} queries, {finding.avoidable} "
             f"avoidable" + (f" · seen in {seen}" if seen else "")]
    fix = snippets.get("line") or snippets.get("fix")
    if act.get("kind") == "upstream":
        lines.append(f"Upstream, in {act.get('package')} {act.get('version') or ''}".rstrip()
                     + f" at `{place_where(act)}`: nothing in your project to paste.")
    elif fix and proof.get("status") != "failed":
        shown = place_where(act) if act.get("file") else where(finding.origin, with_function=False) \
            if finding.origin else ""
        at = f" at `{shown}`" if snippets.get("line") and shown else ""
        imports = [line for line in (snippets.get("import") or "").splitlines() if line]
        lines += [f"Fix{at}{proof_text(proof)}:", fence(fix), *imports, fix, "```"]
        if snippets.get("access"):
            lines += ["and in the loop:", fence(snippets["access"]), snippets["access"], "```"]
    elif finding.kind == "duplicate":
        lines.append("Reuse the first result.")
    elif finding.note:
        lines.append(finding.note)
    return lines
