"""Findings as plain data: :class:`Finding`, :class:`Report`, kind labels, frame helpers.

Everything here is JSON-serializable and importable without running an analysis: the
panel renders stored findings (possibly from another process) with these classes, test
mode formats failures with them, and the exports (``report.py``) read them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator

from django.conf import settings

from .capture import Record
from .frames import Frame, StackResolver
from .group import redact_sql

# The one place finding kinds are named: settings validation, the panel, test mode and
# Markdown all read this.
KIND_TITLES = {
    "n_plus_one": "N+1",
    "duplicate": "duplicate",
    "missing_index": "missing index",
    "unused_prefetch": "unused prefetch",
}
KINDS = tuple(KIND_TITLES)


def kind_title(kind: str) -> str:
    return KIND_TITLES.get(kind, kind)


def display_path(filename: str) -> str:
    """A path relative to the project root (``BASE_DIR``) when it lies inside it."""
    base = getattr(settings, "BASE_DIR", None)
    roots = [str(base)] if base else []
    roots.append(os.getcwd())
    absolute = os.path.abspath(filename)
    for root in roots:
        root = os.path.abspath(root)
        if absolute.startswith(root.rstrip(os.sep) + os.sep):
            return os.path.relpath(absolute, root)
    return filename


def frame_dict_from(data: dict) -> dict:
    return {**data, "filename": display_path(data["filename"])}


def frame_dict(frame: Frame | None) -> dict | None:
    if frame is None:
        return None
    data = frame.to_dict()
    if not frame.template:
        data["filename"] = display_path(frame.filename)
    return data


@dataclass
class Finding:
    """One problem in a request, with where it happens and how to fix it."""

    kind: str
    model: str | None
    relation: str | None
    lookup: str | None
    method: str | None
    count: int
    avoidable: int
    duration_ms: float
    sql: str
    callsite: dict | None
    stack: list[dict]
    origin: dict | None
    snippets: dict[str, str] = field(default_factory=dict)
    # Details shown by the panel (plain data as well).
    relation_kind: str | None = None
    related_model: str | None = None
    defined_at: dict | None = None
    evaluated_at: dict | None = None
    callsites: list[dict] = field(default_factory=list)
    alias: str = "default"
    note: str | None = None
    # missing_index: {"database", "plan": [lines], "uses_index", "after": [lines] | None, "error"}
    evidence: dict | None = None
    params: list[str] | None = None  # sample parameter values, only with SHOW_PARAMS

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "model": self.model,
            "relation": self.relation,
            "lookup": self.lookup,
            "method": self.method,
            "count": self.count,
            "avoidable": self.avoidable,
            "duration_ms": self.duration_ms,
            "sql": self.sql,
            "callsite": self.callsite,
            "stack": self.stack,
            "origin": self.origin,
            "snippets": dict(self.snippets),
            "relation_kind": self.relation_kind,
            "related_model": self.related_model,
            "defined_at": self.defined_at,
            "evaluated_at": self.evaluated_at,
            "callsites": self.callsites,
            "alias": self.alias,
            "note": self.note,
            "evidence": self.evidence,
            "params": self.params,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Finding:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def title(self) -> str:
        subject = self.relation or self.model or "query"
        return f"{kind_title(self.kind)}: {subject}"

    def to_markdown(self) -> str:
        return _finding_markdown(self)


def where(frame: dict | None, unknown: str = "unknown") -> str:
    """``file:line in function`` of a frame dict (templates have no function)."""
    if not frame:
        return unknown
    return f"{frame['filename']}:{frame['lineno']}" + (
        f" in {frame['function']}" if frame.get("function") and not frame.get("template") else ""
    )


def _finding_markdown(finding: Finding) -> str:
    lines = [f"### {finding.title}", ""]
    if finding.relation:
        kind = f" ({finding.relation_kind})" if finding.relation_kind else ""
        lines.append(f"- **Relation:** `{finding.relation}`{kind}")
    if finding.model:
        lines.append(f"- **Model:** `{finding.model}`" + (f", lookup `{finding.lookup}`" if finding.lookup else ""))
    lines.append(f"- **Queries:** {finding.count} ({finding.avoidable} avoidable), {finding.duration_ms:.1f} ms")
    lines.append(f"- **Call site:** `{where(finding.callsite)}`" + (
        f" — `{finding.callsite['code']}`" if finding.callsite and finding.callsite.get("code") else ""))
    for other in finding.callsites[1:]:
        lines.append(f"- **Also from:** `{where(other)}`")
    if finding.origin:
        lines.append(f"- **Origin:** `{where(finding.origin)}`" + (
            f" — `{finding.origin['code']}`" if finding.origin.get("code") else ""))
    if finding.note:
        lines.append(f"- **Note:** {finding.note}")
    if finding.snippets.get("fix"):
        lines += ["", "Fix:", "", "```python", finding.snippets["fix"], "```"]
    if finding.snippets.get("line"):
        lines += ["", "At the origin:", "", "```python", finding.snippets["line"], "```"]
    lines += ["", "SQL:", "", "```sql", finding.sql, "```", ""]
    if finding.params is not None:
        lines[-1:-1] = [f"Parameters: `{', '.join(finding.params)}`"]
    evidence = finding.evidence or {}
    if evidence.get("plan"):
        lines += ["Plan (" + str(evidence.get("database")) + "):", "", "```", *evidence["plan"], "```", ""]
    if evidence.get("after"):
        lines += ["Plan with the index:", "", "```", *evidence["after"], "```", ""]
    return "\n".join(lines)


class Report:
    """The findings of one request or one ``detect()`` block, most avoidable first."""

    def __init__(self, findings: list[Finding] | None = None, summary: dict | None = None) -> None:
        self.findings: list[Finding] = findings or []
        self.summary: dict = summary or {"queries": 0, "duration_ms": 0.0}

    def __repr__(self) -> str:
        return f"<Report {len(self.findings)} findings, {self.summary.get('queries', 0)} queries>"

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def by_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def to_dict(self) -> dict:
        return {
            "version": 1,
            "summary": dict(self.summary),
            "findings": [f.to_dict() for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Report:
        return cls([Finding.from_dict(f) for f in data.get("findings", [])], dict(data.get("summary", {})))

    def to_markdown(self) -> str:
        summary = self.summary
        head = [
            "## ddt-prefetch-panel report",
            "",
            f"{summary.get('queries', 0)} queries, {summary.get('duration_ms', 0):.1f} ms; "
            f"{summary.get('n_plus_one', 0)} N+1, {summary.get('avoidable', 0)} avoidable queries.",
            "",
        ]
        if not self.findings:
            head.append("No repeated queries.")
        return "\n".join(head + [f.to_markdown() for f in self.findings])


@dataclass
class Context:
    """What every finding builder needs: the settings in force and the stack resolver."""

    resolve: StackResolver
    show_params: bool
    max_frames: int
    threshold: int = 2
    kinds: frozenset[str] = frozenset(KINDS)

    @classmethod
    def from_config(cls, config: dict) -> Context:
        return cls(
            resolve=StackResolver(),
            show_params=bool(config.get("SHOW_PARAMS", False)),
            max_frames=int(config.get("MAX_FRAMES", 30)),
            threshold=max(2, int(config.get("THRESHOLD", 2))),
            kinds=frozenset(config.get("KINDS", KINDS)),
        )

    def stack(self, raw: tuple | None) -> list[dict]:
        return [frame_dict(f) for f in self.resolve(raw)[: self.max_frames]]

    def first_frame(self, raw: tuple | None) -> dict | None:
        frames = self.resolve(raw)
        return frame_dict(frames[0]) if frames else None

    def sql(self, record: Record) -> str:
        return record.sql if self.show_params else redact_sql(record.sql)

    def params(self, record: Record) -> list[str] | None:
        if not self.show_params or record.params is None:
            return None
        values = record.params if isinstance(record.params, (list, tuple)) else [record.params]
        return [short_repr(v) for v in values]


def short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a parameter whose repr fails must not break the report
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:197] + "..."
