"""The analysis pipeline: capture -> group -> relate -> advise -> findings.

``analyze()`` is a short list of named steps over a finished capture; the finding
builders turn each step's result into :class:`~.findings.Finding` data. ``detect()`` is the
public API around it.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from django.db.models import Prefetch

from . import capture as cap
from . import hooks, sqlshape
from .advise import Advice, advise_relation, advise_unused, flatten_select_related
from .conf import get_config, is_allowed
from .findings import Context, Finding, Report, frame_dict, frame_dict_from, where, display_path
from .frames import StackResolver
from .group import Duplicate, Group, exact_duplicates, group_buckets, is_transaction_control, redact_sql
from .indexes import index_findings
from .relate import KIND_LABELS, HopInfo, Relation, definition_site, describe_path, model_for_table, relate

def analyze(capture: cap.Capture, config: dict | None = None) -> Report:
    """Findings of a finished capture.

    Reads the captured data only, except the index advisor, which introspects indexes and
    runs EXPLAIN on the same alias with capture suspended (never recorded, never counted).
    """
    config = config or get_config()
    context = Context.from_config(config)
    buckets = reportable_buckets(capture)
    groups = group_buckets(buckets, context.resolve)
    n_plus_ones = repeated_groups(groups, capture, context)
    findings = n_plus_one_findings(n_plus_ones, context)
    findings += duplicate_findings(buckets, n_plus_ones, context)
    if "unused_prefetch" in context.kinds:
        findings += unused_prefetch_findings(capture, context)
    if "missing_index" in context.kinds:
        findings += index_findings(groups, config, context)
    findings, allowed = apply_allowlist(findings, config.get("ALLOW") or [])
    findings.sort(key=lambda f: (-f.avoidable, -f.duration_ms, f.kind))
    return Report(findings, summarize(capture, findings, allowed))


def reportable_buckets(capture: cap.Capture) -> list[cap.Bucket]:
    """Savepoints and friends are counted in the summary but never reported."""
    return [b for b in capture.buckets.values() if not is_transaction_control(b.sql)]


@dataclass
class NPlusOne:
    """A repeated group with the relation behind it, and the outer levels folded into it."""

    group: Group
    absorbed: list[Group]
    relation: Relation | None

    @property
    def members(self) -> list[Group]:
        return [self.group, *self.absorbed]


def repeated_groups(groups: list[Group], capture: cap.Capture, context: Context) -> list[NPlusOne]:
    """Groups repeated at least THRESHOLD times with varying parameters, related and nested."""
    roots_by_seq = sorted(
        ((root.record.seq, root) for root in capture.roots if root.record is not None), key=lambda item: item[0]
    )
    candidates: list[tuple[Group, Relation | None]] = []
    for group in groups:
        if group.count < context.threshold or group.prefetch_only:
            continue
        if group.distinct_params() == 1:
            continue  # the same statement again and again: reported as a duplicate
        candidates.append((group, relate(group, roots_by_seq)))
    return [NPlusOne(group, absorbed, relation) for group, absorbed, relation in _merge_nested(candidates)]


def n_plus_one_findings(n_plus_ones: list[NPlusOne], context: Context) -> list[Finding]:
    if "n_plus_one" not in context.kinds:
        return []
    return [_n_plus_one(item.group, item.absorbed, item.relation, context) for item in n_plus_ones]


def duplicate_findings(buckets: list[cap.Bucket], n_plus_ones: list[NPlusOne], context: Context) -> list[Finding]:
    if "duplicate" not in context.kinds:
        return []
    owner_of = {id(b): number for number, item in enumerate(n_plus_ones) for g in item.members for b in g.buckets}
    findings = []
    for duplicate in exact_duplicates(buckets):
        owners = {owner_of.get(id(b)) for b in duplicate.buckets}
        if len(owners) == 1 and None not in owners:
            continue  # repeats inside an N+1 the fix removes anyway
        findings.append(_duplicate(duplicate, context))
    return findings


def apply_allowlist(findings: list[Finding], allow: list[dict]) -> tuple[list[Finding], int]:
    if not allow:
        return findings, 0
    kept = [f for f in findings if not is_allowed(f.to_dict(), allow)]
    return kept, len(findings) - len(kept)


def summarize(capture: cap.Capture, findings: list[Finding], allowed: int) -> dict:
    buckets = capture.buckets.values()
    summary = {
        "queries": capture.seq,
        "duration_ms": round(sum(b.duration for b in buckets) * 1000, 3),
        "n_plus_one": sum(1 for f in findings if f.kind == "n_plus_one"),
        "duplicates": sum(1 for f in findings if f.kind == "duplicate"),
        "avoidable": sum(f.avoidable for f in findings),
        "errors": sum(b.errors for b in buckets),
        "dropped": capture.dropped,
        "allowed": allowed,
        "ignored": capture.ignored,
    }
    disabled = hooks.disabled_hooks()
    if disabled:
        summary["disabled_hooks"] = disabled
    return summary


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


def _n_plus_one(group: Group, absorbed: list[Group], relation: Relation | None, context: Context) -> Finding:
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
    shape = sqlshape.shape_on(record.sql, record.alias)
    if shape is None or len(shape.tables) != 1:
        return None
    return _label(model_for_table(shape.tables[0]))


def _duplicate(duplicate: Any, context: Context) -> Finding:
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


def unused_prefetch_findings(capture: cap.Capture, context: Context) -> list[Finding]:
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


@contextmanager
def detect(**options: Any) -> Iterator[Report]:
    """Capture and analyse the queries run inside the block, like the panel does for a request.

    ``options`` override the ``DDT_PREFETCH_PANEL`` settings (e.g. ``THRESHOLD=3``).
    """
    report = Report()
    config = get_config(options)
    hooks.install()  # normally done by AppConfig.ready; detect() also works without the app
    with cap.capturing() as capture:
        yield report
    result = analyze(capture, config)
    report.findings = result.findings
    report.summary = result.summary
