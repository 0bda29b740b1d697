"""The analysis pipeline: capture -> group -> relate -> place -> advise -> prove -> findings.

``analyze()`` is a short list of named steps over a finished capture. The N+1 finding builder
lives here (with the split of nested levels whose deepest one has no fix); the other steps are
stage modules of their own: ``plans.py`` proves the N+1 fixes (one combined fix per root
queryset), ``shared.py`` replays those on the other requests that built a queryset on the same
line, ``writes.py`` and ``bulk.py`` build and prove the fixes of repeated writes and of
``.get()`` loops, ``duplicates.py`` finds exact repeats outside the N+1s, ``unused.py`` eager
loads nothing read and ``indexes.py`` the missing indexes. ``detect()`` is the public API
around it.
"""

from __future__ import annotations

import dataclasses
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from . import capture as cap
from . import hooks, sqlshape
from .advise import (Advice, advise_in_bulk, advise_relation, advise_write, bypassed_prefetch, refetch_access,
                     rewrite_access)
from .bulk import bulk_get, prove_bulk_gets
from .conf import get_config, is_allowed
from .duplicates import duplicate_findings, scoped_allowed, table_model
from .findings import (PASTEABLE, Context, Finding, Report, frame_dict, frame_dict_from, statement_text, where,
                       withdraw_fix)
from .findings import defined_at as _definition  # the name the N+1 builder uses
from .frames import BuildSite, Frame, build_site, is_orm_code, is_project_class, is_site_file
from .frameworks import fix_snippets, overridable, place_note
from .place import Place, climb, place_of, test_code
from .group import Group, group_buckets, is_transaction_control, statement_shape, write_of
from .indexes import index_findings
from .patch import attach_patches
from .plans import FixPlan, number_fixes, pasteable_plans, place_fixes, prove_fixes, withhold_plan
from .prove import Budget, Limits
from .pysource import python_literal
from .relate import KIND_LABELS, Relation, definition_site, find_refetches, locate, model_for_table, relate
from .shared import prove_shared
from .unused import prove_removals, unused_prefetch_findings
from .writes import build_write, prove_writes, public_method


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
    budget = Budget(Limits.from_config(config).budget_s)  # one replay budget for the request's proofs
    plans = prove_fixes(n_plus_ones, config, budget)
    findings, plans = retry_outer_levels(n_plus_ones, findings, plans, context, config, budget)
    plans = tell_siblings_apart(n_plus_ones, plans)
    plans = prove_shared(plans, n_plus_ones, capture, config, budget)
    plans = gains_on_this_page(plans, capture.seq)
    prove_bulk_gets(n_plus_ones, config)
    prove_writes(n_plus_ones, config)
    findings += duplicate_findings(buckets, {id(b) for item in n_plus_ones for g in item.members for b in g.buckets},
                                   context)
    if "unused_prefetch" in context.kinds:
        unused = unused_prefetch_findings(capture, context)
        prove_removals(unused, plans, capture, config, budget)
        findings += unused
    if "missing_index" in context.kinds:
        findings += index_findings(groups, config, context)
    findings, allowed = apply_allowlist(findings, config.get("ALLOW") or [])
    allowed += sum(1 for item in n_plus_ones if item.scoped)
    findings.sort(key=lambda f: (-f.avoidable, -f.duration_ms, f.kind))
    report = Report(findings, summarize(capture, findings, allowed),
                    number_fixes(pasteable_plans(plans, n_plus_ones), findings))
    place_fixes(n_plus_ones, report.fixes)
    attach_patches(report.findings, report.fixes)
    in_page_terms(report)
    return report


def in_page_terms(report: Report) -> None:
    """Each verified fix's proof in this page's terms: ``page_before`` (the queries the page ran)
    and ``page_after`` (the page with the fix: its loops' statements gone, the replay's own
    statements, less those that loaded the root's rows, which the page ran already: the root
    and its own prefetch_related lookups, ``proof["loading"]``, in their place). The replay's
    count is constant in the rows, so it holds at the page's row count. A proven fix's findings
    are then avoidable by what it removes, and the summary's total is the sum, never above the
    page's."""
    queries = report.summary.get("queries", 0)
    for fix in report.fixes:
        proof = fix.get("proof") or {}
        if proof.get("status") != "verified" or not isinstance(proof.get("after"), int):
            continue
        members = [report.findings[i] for i in fix["findings"] if i < len(report.findings)]
        after = page_after(queries, members, proof)
        fix["proof"] = {**proof, "page_before": queries, "page_after": after}
        for finding in members:
            if finding.proof and finding.proof.get("status") == "verified":
                finding.proof = {**finding.proof, "page_before": queries, "page_after": after}
        share_removed(members, queries - after)
    report.summary["avoidable"] = min(queries, sum(f.avoidable for f in report.findings))


def page_after(queries: int, members: list[Finding], proof: dict) -> int:
    """The page's count with a verified fix: its findings' statements gone, the replay's in their
    place, less the statements that loaded the root's rows (the page ran those already)."""
    removed = sum(f.count for f in members if f.kind in ("n_plus_one", "unused_prefetch"))
    return max(0, queries - removed + proof["after"] - proof.get("loading", 1))


def gains_on_this_page(plans: list[FixPlan], queries: int) -> list[FixPlan]:
    """The plans that make this page run fewer queries. A fix proven on the loop's rows can
    still cost the page what it saves (3 queries per row on 3 rows here, a prefetch of 4
    statements): then it is no fix for this page, and says so."""
    kept = []
    for plan in plans:
        proof = plan.proof or {}
        if proof.get("status") != "verified" or not isinstance(proof.get("after"), int):
            kept.append(plan)
            continue
        after = page_after(queries, plan.findings, proof)
        if after < queries:
            kept.append(plan)
            continue
        detail = (f"{plan.fix} removes the loop's repeats ({proof.get('before')} -> {proof['after']} on the replayed "
                  f"rows), but on this page it costs what it saves: {queries} -> {after} queries.")
        withhold_plan(plan, {**proof, "status": "failed", "detail": detail, "fix": plan.fix, "page_before": queries,
                             "page_after": after})
    return kept


def share_removed(members: list[Finding], removed: int) -> None:
    """A proven fix's findings' ``avoidable``: what the fix removes on this page, shared by
    statement count (the advice's estimate before; a combined fix's findings sum to it)."""
    counted = [f for f in members if f.kind in ("n_plus_one", "unused_prefetch")]
    total = sum(f.count for f in counted)
    if not counted or total <= 0:
        return
    given = 0
    for finding in counted:
        finding.avoidable = removed * finding.count // total
        given += finding.avoidable
    # The remainder of the integer shares, one statement each, never above a finding's own count.
    left = removed - given
    for finding in counted:
        if left <= 0:
            break
        if finding.avoidable < finding.count:
            finding.avoidable += 1
            left -= 1
    counted[0].avoidable += left  # a fix that removes more than its findings' statements


def reportable_buckets(capture: cap.Capture) -> list[cap.Bucket]:
    """Savepoints and friends are counted in the summary but never reported."""
    return [b for b in capture.buckets.values() if not is_transaction_control(b.sql)]


@dataclass
class NPlusOne:
    """A repeated group with the relation behind it, and the outer levels folded into it."""

    group: Group
    absorbed: list[Group]
    relation: Relation | None
    finding: Finding | None = None
    advice: Advice | None = None
    scoped: bool = False  # dropped by the patterns of an ignore_n_plus_one() block
    place: Place | None = None  # where to act (place.place_of)
    access: Frame | None = None  # the line that built the per-row queryset, when not the call site
    mirror: Any = None  # the foreign key whose values a hand-written .get() loop looked up
    outer: list = dataclasses.field(default_factory=list)  # (group, relation) of each absorbed outer level

    @property
    def members(self) -> list[Group]:
        return [self.group, *self.absorbed]


def repeated_groups(groups: list[Group], capture: cap.Capture, context: Context) -> list[NPlusOne]:
    """Groups repeated at least THRESHOLD times with varying parameters, related and nested."""
    roots_by_seq = sorted(((root.seq, root) for root in capture.roots if root.seq >= 0), key=lambda item: item[0])
    refetches = find_refetches(roots_by_seq)
    candidates: list[tuple[Group, Relation | None]] = []
    for group in groups:
        # prefetch_related's own statements are not repeats, unless the user's code called
        # prefetch_related_objects() on one instance at a time.
        per_instance = group.prefetch_only and group.per_instance_prefetch is not None
        if group.prefetch_only and not per_instance:
            continue
        write = write_of(group.buckets[0].sql)
        if group.count == 1:
            if context.threshold > 1 or per_instance or write or not lazy_load_on_many(group):
                continue
        elif group.count < context.threshold or group.is_sequence():
            continue
        same_statement = write is None and group.count > 1 and group.distinct_params() == 1
        if same_statement and not group.hops:
            continue  # the same statement again and again: reported as a duplicate
        relation = None if write else relate(group, roots_by_seq, refetches)
        if relation is not None:
            relation = climb(relation)
        if per_instance and relation is None:
            continue  # instances loaded one by one (.get() each): nothing to batch
        if same_statement and (relation is None or relation.root is None or relation.root.rows < 2):
            continue  # one object's relation read again: a duplicate, not rows sharing a parent
        candidates.append((group, relation))
    items = [NPlusOne(group, absorbed, relation, outer=outer)
             for group, absorbed, relation, outer in _merge_nested(candidates)]
    items = _fold_cascades(items)
    earlier = None
    for item in items:
        if item.relation is None and write_of(item.group.buckets[0].sql) is None:
            if earlier is None:
                earlier = sorted(capture.buckets.values(), key=lambda b: b.first_seq)
            item.mirror = mirrored_field(item.group, earlier)
    _share_generic_targets(items)
    roots_by_record = {id(root.record): root for root in capture.roots if root.record is not None}
    for item in items:
        item.access = access_line(item, roots_by_record)
    return items


def tell_siblings_apart(items: list[NPlusOne], plans: list[FixPlan]) -> list[FixPlan]:
    """N+1s on one line that follow one relation of one root, filtered by the same keywords with
    other values (``thread.posts.filter(draft=draft)`` in a helper called with True and False):
    each says its values (``Finding.variant``), so they stay apart in reports and baselines.

    Their fixes would be ``Prefetch`` objects with one ``to_attr`` on one root, read back by one
    line: pasted together they clash, and the line cannot read both lists. None is shown.
    """
    siblings: dict[tuple, list[NPlusOne]] = {}
    for item in items:
        relation, site = item.relation, item.group.callsite
        if item.finding is None or relation is None or relation.call is None or not relation.call.filters:
            continue
        keywords = tuple(keyword for keyword, _source, _value in relation.call.filters)
        key = (id(relation.root), relation.path, site.filename if site else None, site.lineno if site else None, keywords)
        siblings.setdefault(key, []).append(item)
    withdrawn: set[int] = set()
    for members in siblings.values():
        values = [tuple(_shown(value) for _k, _s, value in m.relation.call.filters) for m in members]
        if len(members) < 2 or len(set(values)) < 2:
            continue
        differ = [i for i in range(len(values[0])) if len({v[i] for v in values}) > 1]
        labels = [", ".join(f"{m.relation.call.filters[i][0]}={v[i]}" for i in differ) for m, v in zip(members, values)]
        for member, label in zip(members, labels):
            finding = member.finding
            finding.variant = label
            others = "; ".join(other for other in labels if other != label)
            reason = (f"This line also reads {member.relation.relation} with {others}: one Prefetch per value, each "
                      "with its own to_attr, and the line choosing the list by value, is a change to make by hand; "
                      "the fixes found for each value alone would clash pasted together.")
            finding.proof = {**(finding.proof or {}), "status": "skipped", "after": None, "detail": reason}
            finding.note = None  # the advice's own note speaks of the fix that is withdrawn
            withdraw_fix(finding, finding.proof)
            finding.fix_id = None
            withdrawn.add(id(finding))
    kept = []
    for plan in plans:
        if not any(id(f) in withdrawn for f in plan.findings):
            kept.append(plan)
            continue
        for finding in plan.findings:  # proven together with a withdrawn sibling: not on its own
            if id(finding) not in withdrawn:
                finding.proof = {**(finding.proof or {}), "status": "skipped", "after": None, "detail": (
                    "Its fix was proven together with one withdrawn on the same queryset (see the findings "
                    "that name their filter values): not on its own.")}
                withdraw_fix(finding, finding.proof)
                finding.fix_id = None
    return kept


def _shown(value: Any) -> str:
    text = python_literal(value)
    return text if text is not None else repr(value)


def access_line(item: NPlusOne, roots_by_record: dict[int, cap.Root]) -> Frame | None:
    """The project line that built the per-row queryset (``latest = thread.posts.order_by("-id")[:2]``),
    when the statement ran on another line (``for post in latest:``): where a ``Prefetch(to_attr=...)``
    list is read instead."""
    relation, callsite = item.relation, item.group.callsite
    if relation is None or relation.call is None or not relation.path or callsite is None:
        return None
    accessor = f".{relation.path[-1]}"
    if accessor in callsite.code:
        return None
    for record in item.group.records:
        root = roots_by_record.get(id(record))
        if root is None:
            continue
        frame = build_site(root.origin).frame
        if frame is not None and not frame.template and accessor in frame.code and frame != callsite:
            return frame
    return None


def _fold_cascades(items: list[NPlusOne]) -> list[NPlusOne]:
    """A ``delete()`` per row also collects and deletes its cascades from the same line: those
    statements belong to the delete finding (one ``queryset.delete()`` removes them all)."""
    deletes: dict[tuple, NPlusOne] = {}
    for item in items:
        write = write_of(item.group.buckets[0].sql)
        site = item.group.callsite
        if write and write[0] == "DELETE" and site is not None:
            key = (site.filename, site.lineno)
            current = deletes.get(key)
            # The row's own table is deleted last in each iteration (after its cascades).
            if current is None or item.group.first_seq > current.group.first_seq:
                deletes[key] = item
    if not deletes:
        return items
    kept = []
    for item in items:
        site = item.group.callsite
        host = deletes.get((site.filename, site.lineno)) if site is not None else None
        if host is not None and host is not item:
            host.absorbed.extend(item.members)
            continue
        kept.append(item)
    return kept


def lazy_load_on_many(group: Group) -> bool:
    """``THRESHOLD=1`` (nplusone's mode): one lazy relation load on a row of a result that could
    hold several rows, i.e. a queryset evaluated without a slice, or one that returned several
    rows. ``.first()``, ``[0]`` and ``.get()`` load one object on purpose: never reported."""
    for hop in group.hops:
        root = hop.source.root if hop.source is not None else None
        if root is None:
            continue
        if root.rows > 1 or root.marks == (0, None):
            return True
    return False


def _share_generic_targets(items: list[NPlusOne]) -> None:
    """Each relation through a generic FK learns the models that key pointed to in this request.

    One loop reading ``end.termination.device`` gives a finding per target type
    (``Interface.device``, ``ConsolePort.device``); the generic loads themselves are folded into
    one of them. All findings through the same generic lookup of the same root share every type
    seen, so they advise one ``GenericPrefetch`` (the same text, combined into one fix).
    """
    seen: dict[tuple[int, tuple[str, ...]], set[type]] = {}
    through: list[tuple[NPlusOne, tuple[int, tuple[str, ...]]]] = []
    for item in items:
        relation = item.relation
        if relation is None or not any(h.kind == "generic_fk" for h in relation.hops[:-1]):
            continue
        index = next(i for i, h in enumerate(relation.hops) if h.kind == "generic_fk")
        key = (id(relation.root), relation.path[: index + 1])
        seen.setdefault(key, set()).update(_generic_targets(item.members), {relation.hops[index + 1].model},
                                           _read_after(item.members, relation.root, relation.path[: index + 1]))
        through.append((item, key))
    for item, key in through:
        item.relation.generic_models = tuple(sorted(seen[key], key=lambda m: m._meta.label))


def _read_after(groups: list[Group], root: cap.Root | None, generic_path: tuple[str, ...]) -> set[type]:
    """Classes of the objects at the end of ``generic_path`` that a relation was read on: the
    generic FK's targets, also when its own loads were prefetched and never seen."""
    return {h.model for g in groups for h in g.hops
            if h.source is not None and locate(h.source) == (root, generic_path)}


def _generic_targets(groups: list[Group]) -> tuple[type, ...]:
    """Models the generic FK loads pointed to: each statement it issued queried one of them."""
    types = hooks.generic_fk_types()
    seen = {r.model for g in groups for r in g.records
            if r.model is not None and r.hop is not None and isinstance(r.hop.descriptor, types)}
    return tuple(sorted(seen, key=lambda m: m._meta.label))


def n_plus_one_findings(n_plus_ones: list[NPlusOne], context: Context) -> list[Finding]:
    if "n_plus_one" not in context.kinds:
        return []
    index = 0
    while index < len(n_plus_ones):
        item = n_plus_ones[index]
        _build_finding(item, context)
        if item.outer and item.advice is not None and not item.advice.method:
            n_plus_ones[index + 1:index + 1] = split_outer(item)
            _build_finding(item, context)  # the inner level alone, its statements only
        index += 1
    return [item.finding for item in n_plus_ones if item.finding is not None]


def _build_finding(item: NPlusOne, context: Context) -> None:
    item.place = place_of(item.relation, item.group.callsite)
    item.finding, item.advice = _n_plus_one(item.group, item.absorbed, item.relation, context, item.place,
                                            item.access)
    item.finding.test_code = test_code(item.place, item.group.callsite,
                                       write_of(item.group.buckets[0].sql) is not None)
    item.finding.identical = sum(group.identical() for group in item.members)
    if item.mirror is not None:
        _name_mirror(item.finding, item.mirror)
    if item.group.callsite is None and any(item.finding.snippets.get(key) for key in PASTEABLE) \
            and installed_only(item.group):
        _inside_a_package(item)
    if scoped_allowed([b for g in item.members for b in g.buckets], item.finding):
        item.finding, item.scoped = None, True  # inside ignore_n_plus_one(*patterns) that match it


def installed_only(group: Group) -> bool:
    """Every frame of the group's stacks is an installed package's (or the ORM's): code typed in
    a shell or run with ``python -c`` has no project file either, but it is the user's."""
    return all(is_site_file(entry[0].co_filename) or is_orm_code(entry[0])
               for bucket in group.buckets for entry in bucket.stack)


def _inside_a_package(item: NPlusOne) -> None:
    """No frame of the project (or of its templates) is on the loop's stack: an installed
    package loops on its own (a sitemap, a middleware). A line written for the loop, with
    names only that code has, cannot be pasted anywhere in the project."""
    finding = item.finding
    finding.library = True
    finding.proof = {"status": "skipped", "before": None, "after": None, "rows": 0, "detail": (
        "no line of your project or its templates is on this loop's stack: it runs inside an installed "
        "package, where nothing can be pasted.")}
    withdraw_fix(finding, finding.proof)
    item.advice = Advice(None, note=finding.note)


def retry_outer_levels(items: list[NPlusOne], findings: list[Finding], plans: list[FixPlan], context: Context,
                       config: dict, budget: Budget) -> tuple[list[Finding], list[FixPlan]]:
    """A nested N+1 whose fix failed on replay keeps its deepest level alone (with that proof);
    its outer levels become findings of their own and the root's fixes are proven again with
    them. Whether the deeper level runs at all may depend on a cache (an image's renditions on
    a cold cache): the outer levels' fix is then the same cold or warm."""
    failed = [item for item in items if item.outer and item.finding is not None
              and (item.finding.proof or {}).get("status") == "failed"]
    if not failed:
        return findings, plans
    roots: set[int] = set()
    replaced: dict[int, Finding] = {}
    added: list[NPlusOne] = []
    for item in failed:
        old = item.finding
        split = split_outer(item)
        at = items.index(item) + 1
        items[at:at] = split
        added += split
        roots.update(id(s.relation.root) for s in split if s.relation is not None and s.relation.root is not None)
        _build_finding(item, context)
        if item.finding is not None:
            item.finding.proof = old.proof
            withdraw_fix(item.finding, old.proof)
            replaced[id(old)] = item.finding
    retry = [item for item in items if item not in failed and item.relation is not None
             and item.relation.root is not None and id(item.relation.root) in roots]
    for item in retry:
        if item in added:
            _build_finding(item, context)
        elif item.finding is not None:  # proven before with the root's other fixes: again, with the new ones
            old = item.finding
            _build_finding(item, context)
            replaced[id(old)] = item.finding
    findings = [replaced.get(id(f), f) for f in findings]
    findings += [item.finding for item in added if item.finding is not None]
    kept = [plan for plan in plans if plan.root is None or id(plan.root) not in roots]
    return findings, kept + prove_fixes(retry, config, budget)


def split_outer(item: NPlusOne) -> list[NPlusOne]:
    """A nested N+1 whose deepest level has no fix (filtered with values that change per row, a
    hand-written query) keeps that level alone; its outer levels (``order.customer`` above
    ``customer.review_set.filter(rating=order.rating)``) become findings of their own with their
    own fix, as they would be on a page where the deeper level does not run (a warm cache)."""
    outer, item.absorbed, item.outer = item.outer, [], []
    split = [NPlusOne(group, absorbed, relation, outer=deeper) for group, absorbed, relation, deeper in _merge_nested(outer)]
    _share_generic_targets(split)
    return split


_SELECTED = re.compile(r"^\s*SELECT\s+(?P<columns>.*?)\s+FROM\s+(?P<table>\S+)", re.I | re.S)


def mirrored_field(group: Group, earlier: list[cap.Bucket]) -> Any:
    """The foreign key a per-value ``get()`` loop mirrors: the last SELECT before the loop that read
    a column pointing at the fetched model (``values_list("publisher_id")`` -> ``Book.publisher``)."""
    bulk = bulk_get(group)
    if bulk is None:
        return None
    for bucket in reversed([b for b in earlier if b.first_seq < group.first_seq]):
        match = _SELECTED.match(bucket.sql)
        model = model_for_table(match.group("table")) if match else None
        if model is None or model is bulk.model:
            continue
        columns = match.group("columns")
        for field in model._meta.concrete_fields:
            if (field.many_to_one or field.one_to_one) and field.remote_field.model is bulk.model and (
                    f'"{field.column}"' in columns or f"`{field.column}`" in columns):
                target = field.target_field
                if bulk.field == ("pk" if target.primary_key else target.name):
                    return field
    return None


def _name_mirror(finding: Finding, field: Any) -> None:
    """Name the relation a hand-written loop mirrors, and the fix that follows it instead."""
    label = f"{field.model._meta.label}.{field.name}"
    finding.relation = label
    finding.relation_kind = KIND_LABELS["forward_o2o" if field.one_to_one else "forward_fk"]
    finding.related_model = _label(field.remote_field.model)
    site = definition_site(field)
    finding.defined_at = frame_dict_from(site) if site else None
    finding.note = (f"{finding.note} " if finding.note else "") + (
        f"It mirrors {label}: the loop reads {field.attname} values and fetches each "
        f"{field.remote_field.model.__name__} by it; select_related(\"{field.name}\") on the "
        f"{field.model.__name__} queryset (reading .{field.name}) serves the same objects.")


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
        # Each finding counts only its own statements (a duplicate's repeats inside an N+1 are the
        # N+1's), so the sum never exceeds the statements run.
        "avoidable": min(capture.seq, sum(f.avoidable for f in findings)),
        "errors": sum(b.errors for b in buckets),
        "dropped": capture.dropped,
        "allowed": allowed,
        "ignored": capture.ignored,
        # Query budgets (baseline.py): the shapes of the statements run, by statement_shape id.
        "statements": statement_shapes(reportable_buckets(capture)),
    }
    disabled = hooks.disabled_hooks()
    if disabled:
        summary["disabled_hooks"] = disabled
    failures = hooks.hook_failures()
    if failures:
        summary["hook_failures"] = failures
    return summary


def statement_shapes(buckets: Iterable[cap.Bucket]) -> dict[str, str]:
    """``{statement_shape id: statement_text}`` of every distinct statement shape, sorted by id
    (savepoints aside: their names differ on every run)."""
    shapes = {}
    for bucket in buckets:
        shape = statement_shape(bucket.sql)
        if shape not in shapes:
            shapes[shape] = statement_text(bucket.sql)
    return dict(sorted(shapes.items()))


def _merge_nested(candidates: list[tuple[Group, Relation | None]]):
    """Fold an outer level (``pizzas``) into the deeper finding (``pizzas__category``)."""
    ordered = sorted(
        candidates, key=lambda c: -(len(c[1].path) if c[1] is not None and c[1].root is not None else 0)
    )
    kept: list[tuple[Group, list[Group], Relation | None, list]] = []
    for group, relation in ordered:
        # A hand-written query that mirrors a level (Author.objects.get(pk=post.author_id)) keeps its own
        # finding: its fix rewrites its loop line, which the deeper level's fix needs as well.
        if relation is not None and relation.root is not None and relation.path and not relation.via_sql:
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
                host[3].append((group, relation))
                continue
        kept.append((group, [], relation, []))
    first_seen = {id(group): i for i, (group, _) in enumerate(candidates)}
    kept.sort(key=lambda item: first_seen[id(item[0])])
    return kept


def _label(model: type | None) -> str | None:
    return model._meta.label if model is not None else None


def _n_plus_one(group: Group, absorbed: list[Group], relation: Relation | None,
                context: Context, place: Place | None = None, access: Frame | None = None) -> tuple[Finding, Advice]:
    members = [group, *absorbed]
    count = sum(g.count for g in members)
    duration = sum(g.duration for g in members)
    record = group.records[0]
    origin = evaluated = None
    site = BuildSite(None, False)
    if relation is not None and relation.root is not None:
        site = build_site(relation.root.origin)
        origin = _site_dict(site)
        evaluated = _site_dict(build_site(relation.root.evaluated))  # never the test's client.get line
        if evaluated == origin:
            evaluated = None
    callsite = group.callsite
    # Only a project line that builds the queryset is rewritten: not a library's line, not a
    # framework declaration (whose fix has its own place, see frameworks.fix_snippets).
    rewritable = place.frame.code if place is not None and place.rewritable else None
    written = write_of(group.buckets[0].sql) if relation is None else None
    write = build_write(members, *written) if written else None
    bulk = bulk_get(group) if relation is None and written is None else None
    if relation is not None:
        read_at = access or callsite  # the line that reads the relation
        advice = advise_relation(relation, rewritable, read_at.code if read_at else None)
        if relation.via_sql and "access" not in advice.snippets and written is None:
            # Mapped from the SQL only, and the loop line is not a plain read of that relation
            # (e.g. .get(pk=...) over values): the bulk rewrite of the loop is what holds.
            bulk = bulk_get(group)
            if bulk is not None:
                advice = advise_in_bulk(bulk, callsite)
    elif write is not None:
        advice = advise_write(write)
    elif bulk is not None:
        advice = advise_in_bulk(bulk, callsite)
    else:
        advice = Advice(None)
    advice.snippets.update(fix_snippets(site.frame, advice.snippets.get("fix")))
    if advice.origin is not None:
        origin = frame_dict_from(advice.origin)
    if relation is not None and (access or callsite) is not None and origin is not None:
        _one_edit_per_line(advice, relation, origin, frame_dict(access or callsite))
    model = _label(relation.model) if relation else _label(write.model) if write else (
        _label(record.model) or table_model(record))
    last = relation.last if relation else None
    avoidable = count - advice.after_queries if advice.method else count - 1
    finding = Finding(
        kind="n_plus_one",
        model=model,
        relation=relation.relation if relation else None,
        lookup=relation.lookup if relation and relation.hops else None,
        method=public_method(advice.method),
        count=count,
        avoidable=max(0, avoidable),
        duration_ms=round(duration * 1000, 3),
        sql=context.sql(record),
        params=context.params(record),
        callsite=frame_dict(group.callsite),
        stack=[frame_dict(f) for f in group.stack[: context.max_frames]],
        origin=origin,
        snippets=advice.snippets,
        relation_kind=last.kind_label if last else None,
        related_model=_label(last.target) if last else None,
        defined_at=_definition(last),
        evaluated_at=evaluated,
        callsites=_distinct_lines(frame_dict(g.callsite) for g in members if g.callsite is not None),
        alias=group.alias,
        note=advice.note or (relation.note if relation else None),
        library=_library_only(site, relation),
        access_at=frame_dict(access) if access is not None and advice.snippets.get("access") else None,
    )
    bypass = bypassed_prefetch(relation) if relation is not None else None
    if bypass:
        finding.note = (finding.note + " " if finding.note else "") + bypass
    which = place_note(site)
    if which and advice.snippets.get("line"):
        finding.note = (finding.note + " " if finding.note else "") + which
    if site.library and not finding.library and (place is None or place.kind not in ("class_attr", "override")):
        finding.note = (finding.note + " " if finding.note else "") + (
            f"The queryset is built in library code ({site.frame.function}): override it in your project."
        )
    if relation is None and write is None and not advice.method and not finding.note:
        finding.note = hand_written_note(record, finding.callsite)
    if relation is not None and relation.via_sql:
        finding.note = (finding.note + " " if finding.note else "") + (
            "Mapped from the SQL: these statements mirror this relation but did not go through it."
        )
    if relation is not None and relation.refetch is not None:
        _name_refetch(finding, relation, group.callsite)
    downcasts = [h for h in (relation.hops[:-1] if relation is not None else []) if h.downcast]
    if downcasts and absorbed:
        named = ", ".join(f"{h.label} (downcast)" for h in downcasts)
        finding.note = (finding.note + " " if finding.note else "") + (
            f"The loop also loads each row's child row through {named}, one query per row: those queries are "
            "counted here, and the same fix loads them.")
    if relation is None and bulk is not None and advice.method == "in_bulk":
        # Rows loaded one by one by key from a list of keys (search hits): named as the load it is.
        finding.relation_kind = f"loaded by {bulk.field} per {bulk.per or 'row'}"
        finding.related_model = finding.model
    if relation is not None and relation.climbed_from and place is not None and place.pasteable:
        finding.note = (finding.note + " " if finding.note else "") + (
            f"The loop's own queryset (.{relation.climbed_from.replace('__', '.')}) is built in a template or "
            f"a library, where nothing can be pasted: the fix goes on the queryset the "
            f"{relation.model.__name__} came from, as {relation.lookup!r}.")
    return finding, advice


def _name_refetch(finding: Finding, relation: Relation, callsite: Frame | None) -> None:
    """A finding on rows the loop re-fetched one by one: the loop iterated the outer model, and the
    lookup runs from it through the downcast (``articlepage__authors``); the re-fetch itself is
    named as the downcast it is (``proofs.Page.articlepage``, kind ``downcast``). When the loop
    itself re-fetches (``ArticlePage.objects.get(id=page.id)`` in its body), that line becomes the
    row itself (``snippets["access"]``): with the child query, the row already is the child."""
    refetch = relation.refetch
    finding.model = _label(refetch.outer.model)
    finding.lookup = "__".join((refetch.link if refetch.rebased is not None else ()) + relation.path)
    site = build_site(refetch.evaluated).frame
    loaded_at = f" at {where(frame_dict(site))}" if site is not None else ""
    parent, child = refetch.outer.model.__name__, refetch.model.__name__
    if refetch.rebased is None:
        said = (f"Read off the {child} rows the loop loads one by one by key{loaded_at} (the {refetch.label} it "
                f"mirrors): the fix loads them through {refetch.label} where the {parent} queryset is built, and the "
                f"loop reads .{refetch.link[-1]} instead of loading each {child} by its key.")
        finding.note = f"{said} {finding.note}" if finding.note else said
        return
    loop = build_site(refetch.outer.evaluated).frame
    # The loop's own body loads the row again (not a method it calls, such as page.specific).
    in_loop = (site is not None and loop is not None and not site.template
               and (site.filename, site.function) == (loop.filename, loop.function))
    if not relation.path:
        finding.relation_kind = KIND_LABELS["downcast"]
        finding.related_model = _label(refetch.model)
        finding.defined_at = None
        access = refetch_access(callsite.code, refetch.model) if in_loop and callsite is not None else None
        if access and finding.snippets.get("fix"):
            finding.snippets["access"] = access
        said = (f"Each {parent} row is loaded again as {child} by its key{loaded_at}: one query per row, "
                f"not through the relation, so a select_related on the {parent} queryset cannot serve it.")
    else:
        said = f"Read off the {child} rows the loop loads again one by one{loaded_at} ({refetch.label} (downcast))."
    said += f" The fix queries {child} with the same calls where the {parent} queryset is built"
    if in_loop:
        said += f"; the loop then reads each row itself instead of loading it again ({site.code.strip()})."
    else:
        said += (f"; the code that loads the row again ({site.function if site else 'unknown'}) must then return "
                 f"the row itself when it already is an instance of {child}.")
    finding.note = f"{said} {finding.note}" if finding.note else said


def hand_written_note(record: cap.Record, callsite: dict | None) -> str:
    """What is known of a per-row query that follows no relation of the looped rows."""
    shape = sqlshape.shape_on(record.sql, record.alias)
    table = shape.tables[0] if shape is not None and len(shape.tables) == 1 else None
    columns = sorted({c.column for c in shape.conditions}) if shape is not None else []
    on = f"on `{table}`" if table else "on its own"
    filtered = f", filtered on {', '.join(f'`{c}`' for c in columns)}" if columns else ""
    return (f"Hand-written query per row {on} at {where(callsite, unknown='an unknown line')}{filtered}: it follows "
            "no relation of the rows the loop reads, so no eager load can serve it. Compute it for every row in "
            "one query before the loop (grouped by the value that changes per row), or cache it.")


def _site_dict(site: BuildSite) -> dict | None:
    data = frame_dict(site.frame)
    if data is not None and site.library:
        data["library"] = True
    return data


def _library_only(site: BuildSite, relation: Relation | None) -> bool:
    """Both the queryset and the loop are library code (the project only called into it).

    A ModelAdmin of the project is the project's code even though Django's changelist
    builds and loops: its ``list_select_related`` is the fix.
    """
    if not site.library or relation is None or relation.root is None:
        return False
    if relation.model_admin is not None and is_project_class(type(relation.model_admin)):
        return False
    if overridable(site):
        return False  # a project subclass's method: overriding it is the fix
    return build_site(relation.root.evaluated).library


def _one_edit_per_line(advice: Advice, relation: Relation, origin: dict, callsite: dict) -> None:
    """A comprehension builds the queryset and reads the relation on one line: the origin
    rewrite and the loop rewrite become one line (two separate edits of it cannot both hold)."""
    snippets = advice.snippets
    line, access = snippets.get("line"), snippets.get("access")
    same = (origin.get("filename"), origin.get("lineno")) == (callsite.get("filename"), callsite.get("lineno"))
    if not (line and access and same and relation.path):
        return
    name = advice.to_attr or advice.annotation
    merged = rewrite_access(line, relation.path[-1], name, as_list=bool(advice.to_attr)) if name else None
    snippets.pop("access")
    if merged:
        snippets["line"] = merged
    else:
        snippets.pop("line")  # neither edit holds alone: the panel shows the call, not a line


def _distinct_lines(frames: Any) -> list[dict]:
    """Call sites, once per file and line (a loop and its generator expression share one)."""
    seen: set[tuple] = set()
    out = []
    for frame in frames:
        key = (frame.get("filename"), frame.get("lineno"))
        if key not in seen:
            seen.add(key)
            out.append(frame)
    return out


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
    report.fixes = result.fixes
