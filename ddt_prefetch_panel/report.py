"""Stage 5, report: findings as plain data, and the public ``detect()`` API.

``analyze()`` runs group -> relate -> advise over a capture and returns a
:class:`Report`; ``Report.to_dict()`` is exactly what the panel stores in DDT's store,
so it is JSON-serializable and survives a round trip unchanged.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from django.conf import settings

from . import capture as cap
from django.db.models import Prefetch

from .advise import Advice, advise_relation, advise_unused, flatten_select_related
from .conf import get_config, is_allowed
from .group import (
    Frame,
    Group,
    StackResolver,
    exact_duplicates,
    group_buckets,
    is_transaction_control,
    redact_sql,
)
from .relate import KIND_LABELS, Relation, definition_site, describe_path, model_for_table, relate
from . import sqlshape

KIND_TITLES = {
    "n_plus_one": "N+1",
    "duplicate": "duplicate",
    "missing_index": "missing index",
    "unused_prefetch": "unused prefetch",
}


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
        return f"{KIND_TITLES.get(self.kind, self.kind)}: {subject}"

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


# --------------------------------------------------------------------------- analysis


def analyze(capture: cap.Capture, config: dict | None = None) -> Report:
    """Findings of a finished capture.

    Reads the captured data only, except the index advisor, which introspects indexes and
    runs EXPLAIN on the same alias with capture suspended (never recorded, never counted).
    """
    config = config or get_config()
    threshold = max(2, int(config.get("THRESHOLD", 2)))
    kinds = set(config["KINDS"])
    show_params = bool(config.get("SHOW_PARAMS", False))
    max_frames = int(config.get("MAX_FRAMES", 30))
    resolve = StackResolver()
    all_buckets = list(capture.buckets.values())
    # Savepoints and friends are counted in the summary but never reported.
    buckets = [b for b in all_buckets if not is_transaction_control(b.sql)]
    roots_by_seq = sorted(
        ((root.record.seq, root) for root in capture.roots if root.record is not None), key=lambda item: item[0]
    )
    groups = group_buckets(buckets, resolve)

    candidates: list[tuple[Group, Relation | None]] = []
    for group in groups:
        if group.count < threshold or group.prefetch_only:
            continue
        if group.distinct_params() == 1:
            continue  # the same statement again and again: reported as a duplicate
        candidates.append((group, relate(group, roots_by_seq)))

    context = _Context(resolve, show_params, max_frames)
    findings: list[Finding] = []
    n_plus_one_members: dict[int, int] = {}
    for number, (group, absorbed, relation) in enumerate(_merge_nested(candidates)):
        for member in [group, *absorbed]:
            for bucket in member.buckets:
                n_plus_one_members[id(bucket)] = number
        if "n_plus_one" in kinds:
            findings.append(_n_plus_one(group, absorbed, relation, context))

    if "duplicate" in kinds:
        for duplicate in exact_duplicates(buckets):
            owners = {n_plus_one_members.get(id(b)) for b in duplicate.buckets}
            if len(owners) == 1 and None not in owners:
                continue  # repeats inside an N+1 the fix removes anyway
            findings.append(_duplicate(duplicate, context))

    if "unused_prefetch" in kinds:
        findings.extend(_unused_prefetches(capture, context))

    if "missing_index" in kinds:
        from .indexes import index_findings

        findings.extend(index_findings(groups, config, context))

    allow = config.get("ALLOW") or []
    allowed = 0
    if allow:
        kept = [f for f in findings if not is_allowed(f.to_dict(), allow)]
        allowed = len(findings) - len(kept)
        findings = kept
    findings.sort(key=lambda f: (-f.avoidable, -f.duration_ms, f.kind))
    summary = {
        "queries": capture.seq,
        "duration_ms": round(sum(b.duration for b in all_buckets) * 1000, 3),
        "n_plus_one": sum(1 for f in findings if f.kind == "n_plus_one"),
        "duplicates": sum(1 for f in findings if f.kind == "duplicate"),
        "avoidable": sum(f.avoidable for f in findings),
        "errors": sum(b.errors for b in all_buckets),
        "dropped": capture.dropped,
        "allowed": allowed,
        "ignored": capture.ignored,
    }
    return Report(findings, summary)


@dataclass
class _Context:
    resolve: StackResolver
    show_params: bool
    max_frames: int

    def stack(self, raw: tuple | None) -> list[dict]:
        return [frame_dict(f) for f in self.resolve(raw)[: self.max_frames]]

    def first_frame(self, raw: tuple | None) -> dict | None:
        frames = self.resolve(raw)
        return frame_dict(frames[0]) if frames else None

    def sql(self, record: cap.Record) -> str:
        return record.sql if self.show_params else redact_sql(record.sql)

    def params(self, record: cap.Record) -> list[str] | None:
        if not self.show_params or record.params is None:
            return None
        values = record.params if isinstance(record.params, (list, tuple)) else [record.params]
        return [_short_repr(v) for v in values]


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # a parameter whose repr fails must not break the report
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:197] + "..."


def _merge_nested(candidates: list[tuple[Group, Relation | None]]):
    """Fold an outer level (``pizzas``) into the deeper finding (``pizzas__category``)."""
    ordered = sorted(
        candidates, key=lambda c: -(len(c[1].path) if c[1] is not None and c[1].root is not None else 0)
    )
    kept: list[tuple[Group, list[Group], Relation | None]] = []
    for group, relation in ordered:
        if relation is not None and relation.root is not None and relation.path:
            host = next(
                (
                    item for item in kept
                    if item[2] is not None and item[2].root is relation.root
                    and len(item[2].path) > len(relation.path)
                    and item[2].path[: len(relation.path)] == relation.path
                ),
                None,
            )
            if host is not None:
                host[1].append(group)
                continue
        kept.append((group, [], relation))
    first_seen = {id(group): i for i, (group, _) in enumerate(candidates)}
    kept.sort(key=lambda item: first_seen[id(item[0])])
    return kept


def _label(model: type | None) -> str | None:
    return model._meta.label if model is not None else None


def _n_plus_one(group: Group, absorbed: list[Group], relation: Relation | None, context: _Context) -> Finding:
    members = [group, *absorbed]
    count = sum(g.count for g in members)
    duration = sum(g.duration for g in members)
    record = group.records[0]
    origin = evaluated = None
    if relation is not None and relation.root is not None:
        origin = context.first_frame(relation.root.origin)
        evaluated = context.first_frame(relation.root.evaluated)
        if evaluated == origin:
            evaluated = None
    callsite = group.callsite
    advice = (
        advise_relation(relation, origin["code"] if origin else None, callsite.code if callsite else None)
        if relation else Advice(None)
    )
    if advice.origin is not None:
        origin = frame_dict_from(advice.origin)
    model = _label(relation.model) if relation else _label(record.model) or _table_model(record)
    last = relation.last if relation else None
    avoidable = count - advice.after_queries if advice.method else count - 1
    finding = Finding(
        kind="n_plus_one",
        model=model,
        relation=relation.relation if relation else None,
        lookup=relation.lookup if relation and relation.hops else None,
        method=advice.method,
        count=count,
        avoidable=max(0, avoidable),
        duration_ms=round(duration * 1000, 3),
        sql=context.sql(record),
        params=context.params(record),
        callsite=frame_dict(group.callsite),
        stack=[frame_dict(f) for f in group.stack[: context.max_frames]],
        origin=origin,
        snippets=advice.snippets,
        relation_kind=KIND_LABELS.get(last.kind) if last else None,
        related_model=_label(last.target) if last else None,
        defined_at=_definition(last),
        evaluated_at=evaluated,
        callsites=[frame_dict(g.callsite) for g in members if g.callsite is not None],
        alias=group.alias,
        note=advice.note or (relation.note if relation else None),
    )
    if relation is not None and relation.via_sql:
        finding.note = (finding.note + " " if finding.note else "") + (
            "Mapped from the SQL: these statements mirror this relation but did not go through it."
        )
    return finding


def _definition(hop: Any) -> dict | None:
    if hop is None:
        return None
    site = definition_site(hop.field)
    if site is None:
        return None
    return {**site, "filename": display_path(site["filename"])}


def _table_model(record: cap.Record) -> str | None:
    shape = sqlshape.select_shape(record.sql, sqlshape.vendor_of(record.alias) or "sqlite")
    if shape is None or len(shape.tables) != 1:
        return None
    return _label(model_for_table(shape.tables[0]))


def _duplicate(duplicate: Any, context: _Context) -> Finding:
    record = duplicate.sample
    frames: list[dict] = []
    seen = set()
    for bucket in sorted(duplicate.buckets, key=lambda b: b.first_seq):
        frame = context.first_frame(bucket.stack)
        key = (frame or {}).get("filename"), (frame or {}).get("lineno")
        if frame is not None and key not in seen:
            seen.add(key)
            frames.append(frame)
    first = frames[0] if frames else None
    first_place = where(first, unknown="the first call")
    fix = f"# {duplicate.count} identical queries: keep the result of the first one ({first_place}) and reuse it"
    return Finding(
        kind="duplicate",
        model=_label(record.model) or _table_model(record),
        relation=None,
        lookup=None,
        method=None,
        count=duplicate.count,
        avoidable=duplicate.count - 1,
        duration_ms=round(duplicate.duration * 1000, 3),
        sql=context.sql(record),
        params=context.params(record),
        callsite=first,
        stack=context.stack(record.stack),
        origin=None,
        snippets={"fix": fix},
        callsites=frames,
        alias=record.alias,
    )


def _eager_lookups(root: cap.Root) -> list[tuple[str, tuple[str, ...]]]:
    lookups: list[tuple[str, tuple[str, ...]]] = []
    for item in root.prefetch_lookups:
        if isinstance(item, Prefetch):
            if item.to_attr:
                continue  # read back as a plain list attribute: reads cannot be observed
            lookup = item.prefetch_through
        else:
            lookup = str(item)
        lookups.append(("prefetch_related", tuple(lookup.split("__"))))
    if isinstance(root.select_related, dict):
        lookups += [("select_related", tuple(p.split("__"))) for p in flatten_select_related(root.select_related)]
    return lookups


def _unused_prefetches(capture: cap.Capture, context: _Context) -> list[Finding]:
    """Eager loads whose related objects were never read during the capture."""
    accessed: dict[int, list[tuple[str, ...]]] = {}
    for root_id, path in capture.accessed:
        accessed.setdefault(root_id, []).append(path)
    prefetch_time: dict[tuple, list[cap.Bucket]] = {}
    for bucket in capture.buckets.values():
        if bucket.prefetch is not None:
            prefetch_time.setdefault(bucket.prefetch, []).append(bucket)
    findings = []
    for root in capture.roots:
        if root.rows == 0:
            continue
        lookups = _eager_lookups(root)
        if not lookups:
            continue
        origin = context.first_frame(root.origin)
        if origin is None:
            continue  # built by library code (admin internals, ...): nothing the user can edit
        reads = accessed.get(id(root), [])
        for method, path in lookups:
            used = 0
            for depth in range(len(path), 0, -1):
                if any(read[:depth] == path[:depth] for read in reads):
                    used = depth
                    break
            if used == len(path):
                continue
            hops = describe_path(root.model, path)
            batches = [b for key, batch in prefetch_time.items()
                       if key[0] == id(root) and len(key[1]) > used and key[1] == path[: len(key[1])]
                       for b in batch]
            lookup = "__".join(path)
            findings.append(Finding(
                kind="unused_prefetch",
                model=_label(root.model),
                relation=hops[-1].label if hops else None,
                lookup=lookup,
                method=method,
                count=sum(b.count for b in batches),
                avoidable=sum(b.count for b in batches),
                duration_ms=round(sum(b.duration for b in batches) * 1000, 3),
                sql=context.sql(batches[0].samples[0]) if batches else (
                    context.sql(root.record) if root.record else ""),
                callsite=context.first_frame(root.evaluated),
                stack=context.stack(root.evaluated),
                origin=origin,
                snippets=advise_unused(root.model, method, lookup, path[:used], origin.get("code")),
                relation_kind=KIND_LABELS.get(hops[-1].kind) if hops else None,
                related_model=_label(hops[-1].target) if hops else None,
                defined_at=_definition(hops[-1]) if hops else None,
                alias=root.record.alias if root.record else "default",
                note=(f"Only {'__'.join(path[:used])!r} was read; the deeper levels were loaded for nothing."
                      if used else f"{lookup!r} was loaded for {root.rows} rows and never read."),
            ))
    return findings


# --------------------------------------------------------------------------- public API


@contextmanager
def detect(**options: Any) -> Iterator[Report]:
    """Capture and analyse the queries run inside the block, like the panel does for a request.

    ``options`` override the ``DDT_PREFETCH_PANEL`` settings (e.g. ``THRESHOLD=3``).
    """
    report = Report()
    config = get_config(options)
    with cap.capturing() as capture:
        yield report
    result = analyze(capture, config)
    report.findings = result.findings
    report.summary = result.summary
