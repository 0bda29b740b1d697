"""The analysis pipeline: capture -> group -> relate -> advise -> findings.

``analyze()`` is a short list of named steps over a finished capture; the finding
builders turn each step's result into :class:`~.findings.Finding` data. ``detect()`` is the
public API around it.
"""

from __future__ import annotations

import dataclasses
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from django.db.models import Prefetch

from . import capture as cap
from . import hooks, sqlshape
from .advise import (
    place_line, Advice, BulkGet, Write, advise_in_bulk, advise_relation, advise_write, advise_unused, combine_fixes, fix_line, flatten_select_related,
    nested_prefetch, rewrite_access,
)
from .conf import get_config, is_allowed
from .findings import Context, Finding, Report, frame_dict, frame_dict_from, where
from .frames import BuildSite, build_site, is_project_class
from .frameworks import fix_snippets, overridable, place_note, unused_snippets
from .place import Place, climb, installed, place_of, test_code
from .group import (
    Duplicate, Group, exact_duplicates, group_buckets, is_transaction_control, write_of,
)
from .indexes import index_findings
from .patch import attach_patches
from .prove import Budget, Limits, Step, apply_fix, imports_for, isolated, namespace, prove, steps_for
from .relate import KIND_LABELS, Relation, definition_site, describe_path, model_for_table, relate


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
    plans = prove_fixes(n_plus_ones, config)
    prove_bulk_gets(n_plus_ones, config)
    prove_writes(n_plus_ones, config)
    findings += duplicate_findings(buckets, n_plus_ones, context)
    if "unused_prefetch" in context.kinds:
        findings += unused_prefetch_findings(capture, context)
    if "missing_index" in context.kinds:
        findings += index_findings(groups, config, context)
    findings, allowed = apply_allowlist(findings, config.get("ALLOW") or [])
    allowed += sum(1 for item in n_plus_ones if item.scoped)
    findings.sort(key=lambda f: (-f.avoidable, -f.duration_ms, f.kind))
    report = Report(findings, summarize(capture, findings, allowed), number_fixes(plans, findings))
    place_fixes(n_plus_ones, report.fixes)
    attach_patches(report.findings, report.fixes)
    return report


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
    mirror: Any = None  # the foreign key whose values a hand-written .get() loop looked up

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
        # prefetch_related's own statements are not repeats, unless the user's code called
        # prefetch_related_objects() on one instance at a time.
        per_instance = group.prefetch_only and group.per_instance_prefetch is not None
        if group.prefetch_only and not per_instance:
            continue
        write = write_of(group.buckets[0].sql)
        if group.count == 1:
            if context.threshold > 1 or per_instance or write or not lazy_load_on_many(group):
                continue
        elif group.count < context.threshold:
            continue
        same_statement = write is None and group.count > 1 and group.distinct_params() == 1
        if same_statement and not group.hops:
            continue  # the same statement again and again: reported as a duplicate
        relation = None if write else relate(group, roots_by_seq)
        if relation is not None:
            relation = climb(relation)
        if per_instance and relation is None:
            continue  # instances loaded one by one (.get() each): nothing to batch
        if same_statement and (relation is None or relation.root is None or relation.root.rows < 2):
            continue  # one object's relation read again: a duplicate, not rows sharing a parent
        candidates.append((group, relation))
    items = [NPlusOne(group, absorbed, relation) for group, absorbed, relation in _merge_nested(candidates)]
    items = _fold_cascades(items)
    earlier = None
    for item in items:
        if item.relation is None and write_of(item.group.buckets[0].sql) is None:
            if earlier is None:
                earlier = sorted(capture.buckets.values(), key=lambda b: b.first_seq)
            item.mirror = mirrored_field(item.group, earlier)
    for item in items:
        if item.relation is not None and any(h.kind == "generic_fk" for h in item.relation.hops[:-1]):
            item.relation.generic_models = _generic_targets(item.members)
    return items


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


def _generic_targets(groups: list[Group]) -> tuple[type, ...]:
    """Models the generic FK loads pointed to: each statement it issued queried one of them."""
    types = hooks.generic_fk_types()
    seen = {r.model for g in groups for r in g.records
            if r.model is not None and r.hop is not None and isinstance(r.hop.descriptor, types)}
    return tuple(sorted(seen, key=lambda m: m._meta.label))


def n_plus_one_findings(n_plus_ones: list[NPlusOne], context: Context) -> list[Finding]:
    if "n_plus_one" not in context.kinds:
        return []
    for item in n_plus_ones:
        item.place = place_of(item.relation, item.group.callsite)
        item.finding, item.advice = _n_plus_one(item.group, item.absorbed, item.relation, context, item.place)
        item.finding.test_code = test_code(item.place, item.group.callsite)
        if item.mirror is not None:
            _name_mirror(item.finding, item.mirror)
        if scoped_allowed([b for g in item.members for b in g.buckets], item.finding):
            item.finding, item.scoped = None, True  # inside ignore_n_plus_one(*patterns) that match it
    return [item.finding for item in n_plus_ones if item.finding is not None]


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


def _written_between(duplicate: Duplicate, writes: list[tuple[str, int, int]]) -> bool:
    """A table the statement reads was written while it repeated (``user.following.set(...)``
    between two identical SELECTs): the second read may see other rows, so it is no duplicate."""
    if not writes:
        return False
    shape = sqlshape.shape_on(duplicate.sql, duplicate.alias)
    if shape is None:
        return True  # when in doubt, say nothing
    tables = {t.strip('"`[]').lower() for t in shape.tables}
    first = min(b.first_seq for b in duplicate.buckets)
    last = max(b.last_seq for b in duplicate.buckets)
    return any(table in tables and start < last and end > first for table, start, end in writes)


def scoped_allowed(buckets: list[cap.Bucket], finding: Finding) -> bool:
    """Every statement ran inside an ``ignore_n_plus_one(*patterns)`` block whose patterns match."""
    if not buckets or any(b.allow is None for b in buckets):
        return False
    data = finding.to_dict()
    return all(is_allowed(data, list(b.allow)) for b in buckets)


def duplicate_findings(buckets: list[cap.Bucket], n_plus_ones: list[NPlusOne], context: Context) -> list[Finding]:
    if "duplicate" not in context.kinds:
        return []
    owner_of = {id(b): number for number, item in enumerate(n_plus_ones) for g in item.members for b in g.buckets}
    writes = [(w[1].lower(), b.first_seq, b.last_seq) for b in buckets if (w := write_of(b.sql))]
    findings = []
    for duplicate in exact_duplicates(buckets):
        if write_of(duplicate.sql) or _written_between(duplicate, writes):
            continue  # a write is never "reused"; a read after a write to its table may differ
        owners = {owner_of.get(id(b)) for b in duplicate.buckets}
        if len(owners) == 1 and None not in owners:
            continue  # repeats inside an N+1 the fix removes anyway
        finding = _duplicate(duplicate, context)
        if owners != {None}:
            # Some of them belong to an N+1 whose fix removes them (counted there): only the
            # repeats outside it are this finding's to save.
            outside = duplicate.count_in([b for b in duplicate.buckets if owner_of.get(id(b)) is None])
            finding.avoidable = max(0, outside - 1)
        if not scoped_allowed(duplicate.buckets, finding):
            findings.append(finding)
    return findings


@dataclass
class FixPlan:
    """One proven fix for one root queryset, and the findings it serves."""

    root: cap.Root
    fix: str
    line: str | None
    imports: list[str]
    lookups: list[str]
    findings: list[Finding]
    proof: dict
    origin: dict | None

    @property
    def access(self) -> list[dict]:
        """Loop lines the fix also changes (a to_attr list or an annotation is read there):
        the proof covers the origin line and these together."""
        out = []
        for finding in self.findings:
            line = finding.snippets.get("access")
            if line and finding.callsite and not any(a["line"] == line for a in out):
                out.append({"callsite": finding.callsite, "line": line})
        return out


_PASTEABLE = ("fix", "line", "queryset", "access", "import", "bulk")


def _walks(relation: Relation, advice: Advice) -> tuple[list[list[Step]], list[list[Step]]]:
    """(access paths with the fix, access paths as the loop read them)."""
    as_read = steps_for(relation.hops, relation.call, relation.aggregate)
    if advice.to_attr:
        return [steps_for(relation.hops, to_attr=advice.to_attr)], [as_read]
    if advice.annotation:
        return [steps_for(relation.hops[:-1]) + [Step(advice.annotation, many=False)]], [as_read]
    return [as_read], [as_read]


def _proof_names(relation: Relation) -> dict[str, Any]:
    models = [relation.model] + [h.target for h in relation.hops] + [h.model for h in relation.hops]
    return namespace(*models)


def prove_fixes(items: list[NPlusOne], config: dict) -> list[FixPlan]:
    """Replay every N+1 fix on the request's own data; one combined fix per root queryset.

    Findings that share a root are proven together first: one replay of the combined fix
    proves each of them (and costs one replay, not one per finding). What that does not
    prove is replayed finding by finding, with each advice's fallbacks. A fix that fails or
    cannot be replayed loses its paste-able snippets: the finding keeps its relation and says
    what was tried and why nothing is shown.
    """
    limits = Limits.from_config(config)
    budget = Budget(limits.budget_s)
    candidates = [item for item in items
                  if item.finding is not None and item.advice is not None and item.relation is not None
                  and item.advice.method and item.advice.method != "in_bulk"]  # in_bulk: prove_bulk_gets
    plans: list[FixPlan] = []
    together: set[int] = set()
    if limits.enabled:
        for entries in _by_root([(item, *_walks(item.relation, item.advice)) for item in candidates]):
            plan = _prove_combined(entries, limits, budget) if len(entries) > 1 else None
            if plan is None:
                continue
            _nest_if_better(plan, entries, limits, budget)
            plans.append(plan)
            for item, _after, _read in entries:
                together.add(id(item))
                # Proven as one call: each finding shows that call (its own part alone was not
                # replayed on its own, so it is not offered as a paste-able line).
                item.finding.proof = {**plan.proof, "detail": f"Verified together with the other fixes on this "
                                                              f"queryset: {plan.proof['detail']}"}
                snippets = item.finding.snippets
                for key in ("line", "import", "queryset"):
                    snippets.pop(key, None)
                snippets["fix"] = plan.fix
                if plan.line:
                    snippets["line"] = plan.line
                if plan.imports:
                    snippets["import"] = "\n".join(plan.imports)
    proven: list[tuple[NPlusOne, list, list]] = []
    for item in candidates:
        if id(item) in together:
            continue
        proof, after, as_read = _first_proven(item, limits, budget)
        item.finding.proof = proof
        if proof["status"] == "verified" and item.relation.root is not None:
            proven.append((item, after, as_read))
        elif not (proof["status"] == "skipped" and not limits.enabled):
            _withdraw(item.finding, proof)
        finding = item.finding
        if finding.snippets.get("fix", "").startswith("."):
            needed = imports_for(finding.snippets["fix"], {**_proof_names(item.relation), **item.advice.bindings})
            if needed:
                finding.snippets["import"] = "\n".join(needed)
    for entries in _by_root(proven):
        plans += _plans_for_root(entries, limits, budget)
    return plans


def _by_root(entries: list[tuple[NPlusOne, list, list]]) -> list[list[tuple[NPlusOne, list, list]]]:
    groups: dict[int, list] = {}
    for entry in entries:
        root = entry[0].relation.root
        if root is not None:
            groups.setdefault(id(root), []).append(entry)
    return list(groups.values())


def _first_proven(item: NPlusOne, limits: Limits, budget: Budget) -> tuple[dict, list, list]:
    """Try the advice and its fallbacks in order; adopt the first that the replay verifies."""
    relation, finding = item.relation, item.finding
    if relation.via_sql and limits.enabled and not item.advice.snippets.get("access"):
        # The loop runs its own query (Model.objects.filter(fk_id=...)), not the relation: a
        # replay that reads the relation would prove a loop the user did not write.
        accessor = relation.path[-1] if relation.path else "the relation"
        read = f"obj.{accessor}" + ("" if relation.last is not None and relation.last.single else ".all()")
        return {"status": "skipped", "before": None, "after": None, "rows": 0, "fix": None, "detail": (
            f"The loop runs its own query instead of reading {relation.relation or accessor}: a prefetch "
            f"cannot serve it until the loop reads the relation (e.g. `{read}`), and that "
            "rewrite of your loop cannot be replayed here.")}, [], []
    names = _proof_names(relation)
    failures: list[str] = []
    for candidate in [item.advice, *item.advice.fallbacks]:
        fix = candidate.proof_call or candidate.snippets.get("fix")
        after, as_read = _walks(relation, candidate)
        proof = prove(relation.root, fix, after, limits, budget, {**names, **candidate.bindings}, as_read)
        proof["fix"] = fix
        if proof["status"] != "failed":
            break
        failures.append(f"{fix} failed: {proof['detail']}")
    if failures and proof["status"] == "failed" and len(failures) > 1:
        proof["detail"] = "Replayed on this request's data: " + " Then ".join(failures)
    elif failures and candidate is not item.advice:
        # A later candidate is the fix: the finding shows it, and says what failed first.
        item.advice = candidate
        finding.method = public_method(candidate.method)
        finding.snippets = dict(candidate.snippets)
        finding.avoidable = max(0, finding.count - candidate.after_queries)
        tried = " ".join(failures)
        finding.note = f"{candidate.note} Tried first: {tried}" if candidate.note else f"Tried first: {tried}"
    return proof, after, as_read


def _withdraw(finding: Finding, proof: dict) -> None:
    """No paste-able line for a fix that is not proven; say what was tried and why."""
    tried = proof.get("fix") or finding.snippets.get("fix")
    for key in _PASTEABLE:
        finding.snippets.pop(key, None)
    finding.method = None
    if proof["status"] == "failed" and " Then " not in proof["detail"] and tried:
        reason = f"No fix is shown: {tried} was replayed on this request's data and failed: {proof['detail']}"
    else:
        reason = f"No fix is shown: {proof['detail']}"
    finding.note = f"{finding.note} {reason}" if finding.note else reason


def _plans_for_root(entries: list[tuple[NPlusOne, list, list]], limits: Limits, budget: Budget) -> list[FixPlan]:
    plans = _combined_plans(entries, limits, budget)
    if len(plans) == 1:
        _nest_if_better(plans[0], entries, limits, budget)
    return plans


def _nest_if_better(plan: FixPlan, entries: list, limits: Limits, budget: Budget) -> None:
    """Adopt nested ``Prefetch(..., queryset=X.objects.select_related(...))`` when the replay
    proves it saves queries over the plain lookups (the expert's version of the same fix)."""
    if plan.root is None or not plan.fix.startswith("."):
        return
    nested = nested_prefetch(plan.root.model, plan.fix)
    if nested is None:
        return
    names = _plan_names(entries)
    after = [path for _item, paths, _read in entries for path in paths]
    as_read = [path for _item, _paths, read in entries for path in read]
    proof = prove(plan.root, nested, after, limits, budget, names, as_read)
    if proof["status"] != "verified" or proof["after"] >= plan.proof["after"]:
        return
    proof["fix"] = nested
    plan.fix, plan.proof = nested, proof
    plan.imports = imports_for(nested, names)
    origin = plan.origin
    plan.line = fix_line(origin["code"], plan.root.model.__name__, nested) if origin and origin.get("code") else None


def _combined_plans(entries: list[tuple[NPlusOne, list, list]], limits: Limits, budget: Budget) -> list[FixPlan]:
    single = [_single_plan(item) for item, _after, _read in entries]
    if len(entries) == 1:
        return single
    plan = _prove_combined(entries, limits, budget)
    return [plan] if plan is not None else single


def _prove_combined(entries: list[tuple[NPlusOne, list, list]], limits: Limits, budget: Budget) -> FixPlan | None:
    """The findings' fixes merged into one call on their root, if the replay verifies it."""
    first = entries[0][0]
    root = first.relation.root
    fixes = [item.advice.proof_call or item.advice.snippets.get("fix") or "" for item, _a, _r in entries]
    combined = combine_fixes(fixes)
    if combined is None or any(item.advice.proof_call for item, _a, _r in entries):
        return None
    names = _plan_names(entries)
    after = [path for _item, paths, _read in entries for path in paths]
    as_read = [path for _item, _paths, read in entries for path in read]
    proof = prove(root, combined, after, limits, budget, names, as_read)
    if proof["status"] != "verified":
        return None
    proof["fix"] = combined
    origin = first.finding.origin
    line = fix_line(origin["code"], root.model.__name__, combined) if origin and origin.get("code") else None
    return FixPlan(root, combined, line, imports_for(combined, names),
                   [item.relation.lookup for item, _a, _r in entries],
                   [item.finding for item, _a, _r in entries], proof, origin)


def _plan_names(entries: list) -> dict[str, Any]:
    """The proof namespace of several findings' fixes: their models and filter bindings."""
    names = namespace(*(m for item, _a, _r in entries for m in _proof_names(item.relation).values()
                        if isinstance(m, type) and hasattr(m, "_meta")))
    for item, _a, _r in entries:
        names.update(item.advice.bindings)
    return names


def _single_plan(item: NPlusOne) -> FixPlan:
    advice, finding = item.advice, item.finding
    imports = [line for line in finding.snippets.get("import", "").splitlines() if line]
    return FixPlan(item.relation.root, advice.snippets["fix"], advice.snippets.get("line"), imports,
                   [item.relation.lookup], [finding], finding.proof, finding.origin)


def number_fixes(plans: list[FixPlan], findings: list[Finding]) -> list[dict]:
    """``Report.fixes`` as plain data, and each finding's ``fix_id``."""
    position = {id(f): i for i, f in enumerate(findings)}
    fixes: list[dict] = []
    for plan in plans:
        members = [position[id(f)] for f in plan.findings if id(f) in position]
        if not members:
            continue  # allowlisted away
        for finding in plan.findings:
            finding.fix_id = len(fixes)
        fixes.append({
            "origin": plan.origin,
            "fix": plan.fix,
            "line": plan.line,
            "import": "\n".join(plan.imports),
            "lookups": plan.lookups,
            "findings": sorted(members),
            "access": plan.access,
            "proof": plan.proof,
        })
    return fixes


def place_fixes(items: list[NPlusOne], fixes: list[dict]) -> None:
    """Each N+1's place, and its proven fix written out there: ``queryset = ...`` beside a
    view's ``model =``, the ``queryset =`` line itself, nothing paste-able upstream."""
    for item in items:
        finding, place = item.finding, item.place
        if finding is None:
            continue
        if place is None:
            _unplaced(finding, item.relation)
            continue
        finding.place = place.to_dict()
        proven = (finding.proof or {}).get("status") == "verified"
        fix = finding.snippets.get("fix") or ""
        if place.kind == "upstream":
            _unplaceable(finding, place)
        elif place.kind == "class_attr" and place.attr in ("model", "queryset") and proven and fix.startswith("."):
            line = place_line(place, item.relation.model, fix) if item.relation is not None else None
            _set_line(finding.snippets, line)
        elif place.attr == "list_select_related" and proven and fix.startswith("list_select_related") \
                and place.frame is not None and place.frame.code.startswith("list_select_related"):
            finding.snippets["line"] = fix  # the ModelAdmin's own list_select_related line, extended
        if place.note and finding.snippets.get("fix") and place.note not in (finding.note or ""):
            finding.note = f"{finding.note} {place.note}" if finding.note else place.note
    by_fix = {item.finding.fix_id: item for item in items if item.finding is not None and item.finding.fix_id is not None}
    for index, fix in enumerate(fixes):
        item = by_fix.get(index)
        if item is None or item.place is None:
            continue
        fix["place"] = item.place.to_dict()
        if item.place.kind == "class_attr" and item.place.attr in ("model", "queryset") and item.relation is not None:
            fix["line"] = place_line(item.place, item.relation.model, fix["fix"])
        elif item.place.kind in ("override", "upstream"):
            fix["line"] = None


def _set_line(snippets: dict, line: str | None) -> None:
    if line:
        snippets["line"] = line
    else:
        snippets.pop("line", None)


def _unplaced(finding: Finding, relation: Relation | None) -> None:
    """The loop's queryset was built in a template or by a library while the page iterated
    (a per-child query of a polymorphic queryset), and no queryset of the project leads to it:
    a proof on that queryset says nothing about a line the user can change."""
    root = relation.root if relation is not None else None
    if root is None or not any(finding.snippets.get(key) for key in _PASTEABLE):
        return
    site = build_site(root.origin)
    if site.frame is None or not (site.frame.template or installed(site.frame)):
        return  # code typed in a shell or run with python -c: its own line is shown as before
    where_built = where(frame_dict(site.frame)) if site.frame is not None else "code that was not seen"
    for key in (*_PASTEABLE, "override", "get_queryset", "hints", "patch"):
        finding.snippets.pop(key, None)
    finding.method = None
    reason = (f"No fix is shown: the loop's queryset was built at {where_built}, where nothing can be pasted, "
              "and no queryset of your project leads to it (it was loaded while iterating, not through a "
              "relation). A select_related/prefetch_related on your own queryset would not reach it.")
    if finding.proof:
        finding.proof = {**finding.proof, "status": "skipped", "detail": reason}
    finding.note = f"{finding.note} {reason}" if finding.note else reason


def _unplaceable(finding: Finding, place: Place) -> None:
    """Upstream: the package's line is named, nothing is offered to paste."""
    for key in (*_PASTEABLE, "override", "get_queryset", "hints", "patch"):
        finding.snippets.pop(key, None)
    finding.library = True
    finding.note = f"{finding.note} {place.note}" if finding.note else place.note


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
    }
    disabled = hooks.disabled_hooks()
    if disabled:
        summary["disabled_hooks"] = disabled
    failures = hooks.hook_failures()
    if failures:
        summary["hook_failures"] = failures
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


def _n_plus_one(group: Group, absorbed: list[Group], relation: Relation | None,
                context: Context, place: Place | None = None) -> tuple[Finding, Advice]:
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
        advice = advise_relation(relation, rewritable, callsite.code if callsite else None)
        if relation.via_sql and "access" not in advice.snippets and written is None:
            # Mapped from the SQL only, and the loop line is not a plain read of that relation
            # (e.g. .get(pk=...) over values): the bulk rewrite of the loop is what holds.
            bulk = bulk_get(group)
            if bulk is not None:
                advice = advise_in_bulk(bulk, callsite.code if callsite else None)
    elif write is not None:
        advice = advise_write(write)
    elif bulk is not None:
        advice = advise_in_bulk(bulk, callsite.code if callsite else None)
    else:
        advice = Advice(None)
    advice.snippets.update(fix_snippets(site.frame, advice.snippets.get("fix")))
    if advice.origin is not None:
        origin = frame_dict_from(advice.origin)
    if relation is not None and callsite is not None and origin is not None:
        _one_edit_per_line(advice, relation, origin, frame_dict(callsite))
    model = _label(relation.model) if relation else _label(write.model) if write else (
        _label(record.model) or _table_model(record))
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
        relation_kind=KIND_LABELS.get(last.kind) if last else None,
        related_model=_label(last.target) if last else None,
        defined_at=_definition(last),
        evaluated_at=evaluated,
        callsites=_distinct_lines(frame_dict(g.callsite) for g in members if g.callsite is not None),
        alias=group.alias,
        note=advice.note or (relation.note if relation else None),
        library=_library_only(site, relation),
    )
    which = place_note(site)
    if which and advice.snippets.get("line"):
        finding.note = (finding.note + " " if finding.note else "") + which
    if site.library and not finding.library and (place is None or place.kind not in ("class_attr", "override")):
        finding.note = (finding.note + " " if finding.note else "") + (
            f"The queryset is built in library code ({site.frame.function}): override it in your project."
        )
    if relation is not None and relation.via_sql:
        finding.note = (finding.note + " " if finding.note else "") + (
            "Mapped from the SQL: these statements mirror this relation but did not go through it."
        )
    if relation is not None and relation.climbed_from and place is not None and place.pasteable:
        finding.note = (finding.note + " " if finding.note else "") + (
            f"The loop's own queryset (.{relation.climbed_from.replace('__', '.')}) is built in a template or "
            f"a library, where nothing can be pasted: the fix goes on the queryset the "
            f"{relation.model.__name__} came from, as {relation.lookup!r}.")
    return finding, advice


def build_write(groups: list[Group], verb: str, table: str) -> Write | None:
    """What a repeated write does: its model and, for save()'s UPDATEs, the fields its saves changed
    and whether every save wrote one value or one increment (``capture.SaveSummary``)."""
    model = model_for_table(table)
    if model is None:
        return None
    write = Write(verb, model)
    if verb != "UPDATE":
        return write
    summaries = list({id(r.changes): r.changes for g in groups[:1] for r in g.records if r.changes is not None}.values())
    if not summaries:
        write.unread = True
        return write
    for summary in summaries:
        write.unread = write.unread or summary.unread
        write.fields += [name for name in summary.changed if name not in write.fields]
    write.unchanged = not write.fields and not write.unread and all(s.diffed == s.saves for s in summaries)
    if len(summaries) != 1 or summaries[0].saves < 2:
        return write  # one value or one increment needs every save of one call site behind it
    summary = summaries[0]
    for name in write.fields:
        value = summary.saved.get(name, cap.MIXED)
        delta = summary.deltas.get(name, cap.MIXED)
        if value is not cap.MIXED:
            write.same[name] = value  # every save of the loop wrote this value
        elif delta is not cap.MIXED and delta != 0 and summary.diffed == summary.saves:
            write.deltas[name] = delta  # every save was read before it wrote: one increment
        elif summary.factors.get(name, cap.MIXED) not in (cap.MIXED, 1) and summary.diffed == summary.saves:
            write.factors[name] = summary.factors[name]  # ... or one exact factor
    return write


# Finding.method takes the values DESIGN.md lists; a queryset.delete() is the closest of them,
# "update" (one statement on the queryset), and its snippet says delete().
_PUBLIC_METHODS = {"delete": "update"}


def public_method(method: str | None) -> str | None:
    return _PUBLIC_METHODS.get(method, method) if method else method


WRITE_METHODS = ("update", "bulk_update", "bulk_create", "delete")
_PK_WHERE = re.compile(r'WHERE\s+(?:\S+\.)?["`]?(\w+)["`]?\s*(=\s*%s|IN\s*\(\s*%s(?:\s*,\s*%s)*\s*\))\s*$', re.I)
_INSERT_COLUMNS = re.compile(r"INTO\s+\S+\s*\(([^)]*)\)\s*VALUES", re.I)


def prove_writes(items: list[NPlusOne], config: dict) -> None:
    """Replay each write fix on rows of this request, in a savepoint that is rolled back: the
    sampled rows' primary keys (UPDATE/DELETE) or values (INSERT), through the very fix text."""
    limits = Limits.from_config(config)
    for item in items:
        finding, advice = item.finding, item.advice
        if finding is None or advice is None or advice.method not in WRITE_METHODS or item.relation is not None:
            continue
        fix = finding.snippets.get("fix")
        proof: dict[str, Any] = {"status": "skipped", "before": finding.count, "after": None, "rows": 0,
                                 "detail": "", "fix": fix}
        if not limits.enabled:
            proof["detail"] = "Proofs are turned off (PROOFS=False)."
        else:
            proof.update(_replay_write(item.group, advice.method, fix, model_for_table(write_of(item.group.buckets[0].sql)[1])))
        finding.proof = proof
        if proof["status"] != "verified":
            _withdraw(finding, proof)


def _replay_write(group: Group, method: str, fix: str, model: type | None) -> dict:
    if model is None:
        return {"detail": "Not replayed: the table's model is unknown."}
    records = group.records
    alias = group.alias
    # The fix text names Model.<manager>: bound to the writes' own alias, so a replay can only
    # ever write inside the savepoint that isolated() opens there (never on the default alias).
    names = {**namespace(model), model.__name__: _on_alias(model, alias)}
    try:
        if method == "bulk_create":
            objs = [obj for obj in (_unsaved(model, r) for r in records) if obj is not None]
            if not objs:
                return {"detail": "Not replayed: the INSERTs' values could not be mapped to fields."}
            with isolated(alias) as statements:
                eval(fix, {"__builtins__": {}}, {**names, "objs": objs})  # noqa: S307 (our own snippet)
            rows = len(objs)
        else:
            pks = list(dict.fromkeys(pk for r in records for pk in _pk_values(r, model)))
            if not pks:
                return {"detail": "Not replayed: the rows' primary keys could not be read from the statements."}
            counts = []
            for sample in ([pks[:1], pks] if method == "delete" and len(pks) > 1 else [pks]):
                with isolated(alias) as statements:
                    queryset = model._base_manager.db_manager(alias).filter(pk__in=sample)
                    if method == "bulk_update":
                        eval(fix, {"__builtins__": {}}, {**names, "objs": list(queryset)})  # noqa: S307
                        statements[:] = statements[1:]  # the SELECT that loaded objs is the loop's own
                    else:
                        apply_fix(queryset, fix, names)
                counts.append(len([s for s in statements if not is_transaction_control(s)]))
            if len(set(counts)) > 1:
                return {"status": "failed", "after": counts[-1], "rows": len(pks), "detail": (
                    f"The count still grows with the rows ({counts[0]} at 1 row, {counts[-1]} at {len(pks)}).")}
            rows = len(pks)
    except Exception as exc:  # a constraint, a custom manager: the fix is not shown
        return {"status": "failed", "detail": f"{fix} raised {type(exc).__name__}: {str(exc)[:200]}"}
    after = len([s for s in statements if not is_transaction_control(s)])
    if after >= group.count or (method != "delete" and after != 1):
        return {"status": "failed", "after": after, "rows": rows,
                "detail": f"The fix ran {after} statements for {rows} rows."}
    return {"status": "verified", "after": after, "rows": rows, "detail": (
        f"Replayed on {rows} rows of this request (rolled back): {after} statement"
        f"{'s' if after != 1 else ''} instead of one per row.")}


def _on_alias(model: type, alias: str) -> Any:
    """A stand-in for ``model`` whose managers all use ``alias``."""
    from types import SimpleNamespace

    managers = {manager.name: manager.db_manager(alias) for manager in model._meta.managers}
    return SimpleNamespace(**managers)


def _pk_values(record: cap.Record, model: type) -> list:
    """Primary keys an ORM ``UPDATE ... WHERE pk = %s`` / ``DELETE ... WHERE pk IN (...)`` wrote."""
    match = _PK_WHERE.search(record.sql)
    params = record.params
    if match is None or match.group(1) != model._meta.pk.column or not isinstance(params, (list, tuple)):
        return []
    count = match.group(2).count("%s")
    return list(params[-count:]) if count <= len(params) else []


def _unsaved(model: type, record: cap.Record) -> Any:
    """An unsaved instance with the values one INSERT wrote (primary key left out)."""
    match = _INSERT_COLUMNS.search(record.sql)
    params = record.params
    if match is None or not isinstance(params, (list, tuple)):
        return None
    columns = [c.strip().strip('"`[]') for c in match.group(1).split(",")]
    if len(columns) != len(params):
        return None  # a multi-row INSERT: already batched
    by_column = {f.column: f for f in model._meta.concrete_fields}
    values = {}
    for column, value in zip(columns, params):
        field = by_column.get(column)
        if field is None:
            return None
        if not field.primary_key:
            values[field.attname] = value
    return model(**values)


def bulk_get(group: Group) -> BulkGet | None:
    """A loop of ``Model.objects.get(field=value)`` (or ``filter(...).first()``) on the primary key
    or a unique field, with no relation behind it (``for pid in ids: Publisher.objects.get(pk=pid)``)."""
    record = group.records[0]
    model = record.model
    if model is None or group.hops:
        return None
    shape = sqlshape.shape_on(record.sql, record.alias)
    if shape is None or shape.has_or or shape.aggregate or shape.tables != [model._meta.db_table]:
        return None
    if len(shape.conditions) != 1 or shape.conditions[0].op != "eq" or shape.conditions[0].param is None:
        return None
    condition = shape.conditions[0]
    field = next((f for f in model._meta.concrete_fields if f.column == condition.column), None)
    if field is None or not (field.primary_key or field.unique):
        return None
    values = []
    for sample in group.records:
        params = sample.params
        if isinstance(params, (list, tuple)) and condition.param < len(params):
            values.append(params[condition.param])
    return BulkGet(model, "pk" if field.primary_key else field.name, values) if values else None


def prove_bulk_gets(items: list[NPlusOne], config: dict) -> None:
    """Replay ``in_bulk()`` on the values this request looked up one by one: one statement that
    returns every object the loop's own statements found."""
    limits = Limits.from_config(config)
    for item in items:
        finding, advice = item.finding, item.advice
        if finding is None or advice is None or advice.method != "in_bulk":
            continue
        bulk = bulk_get(item.group)
        proof: dict[str, Any] = {"status": "skipped", "before": finding.count, "after": None,
                                 "rows": 0, "detail": "", "fix": finding.snippets.get("fix")}
        if not limits.enabled:
            proof["detail"] = "Proofs are turned off (PROOFS=False)."
            finding.proof = proof
            continue
        alias = item.group.alias
        field = None if bulk.field == "pk" else bulk.field
        try:
            with isolated(alias) as statements:
                manager = bulk.model._default_manager.db_manager(alias)
                found = manager.in_bulk(bulk.values, **({"field_name": field} if field else {}))
                singles = sum(1 for value in bulk.values if value in found)
            after = len(statements)
        except Exception as exc:  # a broken transaction, a custom manager that refuses
            proof.update(status="failed", detail=f"in_bulk() raised {type(exc).__name__}: {exc}")
            _withdraw(finding, proof)
            finding.proof = proof
            continue
        errors = sum(b.errors for b in item.group.buckets)
        if after == 1 and (singles == len(bulk.values) or errors):
            proof.update(status="verified", after=after, rows=len(found), detail=(
                f"in_bulk() on {len(bulk.values)} of this request's values ran 1 query and returned "
                f"the {len(found)} objects the loop fetched one by one."))
        else:
            proof.update(status="failed", after=after, detail=(
                f"in_bulk() on this request's values ran {after} queries and found {singles} of "
                f"{len(bulk.values)} objects."))
            _withdraw(finding, proof)
        finding.proof = proof


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


def _definition(hop: Any) -> dict | None:
    if hop is None:
        return None
    site = definition_site(hop.field)
    if site is None:
        return None
    return frame_dict_from(site)


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
        library=_library_duplicate(duplicate),
    )


def _library_duplicate(duplicate: Any) -> bool:
    """Every repeat issued by library code that no project frame drove, and none of them a
    relation read on a queryset the project built (that one the project's fix covers)."""
    if not all(build_site(bucket.stack).library for bucket in duplicate.buckets):
        return False
    for bucket in duplicate.buckets:
        for record in bucket.samples:
            source = record.hop.source if record.hop is not None else None
            if source is not None and not build_site(source.root.origin).library:
                return False
    return True


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
    rows: dict[int, int] = {}  # id(finding) -> rows of its queryset
    named: set[tuple[int, str]] = set()  # (id(root), lookup) already reported
    for root in capture.roots:
        if root.rows == 0:
            continue
        lookups = _eager_lookups(root)
        if not lookups:
            continue
        site = build_site(root.origin)
        origin = _site_dict(site)
        if origin is None or site.library:
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
            levels = unused_levels(capture, root, path, used)
            if not levels:
                continue  # the unread levels hang under levels that loaded nothing: say nothing
            if site.frame.declares and path[0] not in (origin.get("code") or ""):
                continue  # a framework added it to a declared field (an optimizer), not the project
            hops = describe_path(root.model, path)
            batches = [b for key, batch in prefetch_time.items()
                       if key[0] == id(root) and len(key[1]) > used and key[1] == path[: len(key[1])]
                       for b in batch]
            lookup = "__".join(path)
            framework = unused_snippets(site.frame, method, lookup)  # e.g. a DRF viewset's modes
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
                snippets=framework[0] if framework else advise_unused(
                    root.model, method, lookup, path[:used], origin.get("code")),
                relation_kind=KIND_LABELS.get(hops[-1].kind) if hops else None,
                related_model=_label(hops[-1].target) if hops else None,
                defined_at=_definition(hops[-1]) if hops else None,
                alias=root.record.alias if root.record else "default",
                note=(f"Only {'__'.join(path[:used])!r} was read; the deeper levels were loaded for nothing."
                      if used else f"{lookup!r} was loaded for {root.rows} rows and never read.")
                + (" " + framework[1] if framework else ""),
            ))
            produced = per_level(findings[-1], capture, root, path, used, levels, prefetch_time, context)
            # An outer level two lookups share ("pizzas" of "pizzas__toppings" and "pizzas__category") once.
            produced = [f for f in produced if (id(root), f.lookup) not in named]
            named.update((id(root), f.lookup) for f in produced)
            findings[-1:] = produced
            rows.update((id(f), root.rows) for f in produced)
    return merge_unused(findings, rows)


def unused_levels(capture: cap.Capture, root: cap.Root, path: tuple[str, ...], used: int) -> list[int]:
    """Depths of ``path`` (1 = first level) to report as unused: every unread level whose parent
    level had objects (a nested level under a relation that was empty everywhere is never flagged)."""
    levels = []
    for depth in range(used + 1, len(path) + 1):
        if depth > 1 and not capture.loaded.get((id(root), path[: depth - 1])):
            break
        levels.append(depth)
    return levels


def per_level(main: Finding, capture: cap.Capture, root: cap.Root, path: tuple[str, ...], used: int,
              levels: list[int], prefetch_time: dict, context: Context) -> list[Finding]:
    """One finding per unused level of a nested eager load (``user`` and ``user__occupation``),
    each with its own relation and statements; the fix (drop or shorten the lookup) is shared."""
    hops = describe_path(root.model, path)
    if not hops:
        return [main] if len(path) in levels else []
    lookup = "__".join(path)
    said = (f"Only {'__'.join(path[:used])!r} was read; the deeper levels were loaded for nothing."
            if used else f"{lookup!r} was loaded for {root.rows} rows and never read.")
    extra = main.note[len(said):].strip() if main.note and main.note.startswith(said) else ""
    snippets = dict(main.snippets)
    code = (main.origin or {}).get("code") or ""
    if path[0] not in code and "conditional" not in snippets:
        # Added where the queryset is shared (a manager, a get_queryset(), a queryset built
        # once and reused): removing it there would bring the N+1 back on the paths that read it.
        snippets = {
            "fix": f'# .{main.method}("{lookup}") is added where this queryset is shared: keep it only on the code '
                   "paths that read it",
            "conditional": (
                f"def with_{path[0]}(self):  # on the QuerySet (or manager) that adds it today\n"
                f'    return self.{main.method}("{lookup}")\n'
                f"# ...and call .with_{path[0]}() where {lookup!r} is read, not for this page"),
        }
        extra = (extra + " " if extra else "") + (
            f"{lookup!r} is not added on the line that built this queryset but where it is shared (a manager or "
            "get_queryset()): make it conditional rather than removing it.")
    out = []
    for depth in levels:
        hop = hops[depth - 1]
        key = (id(root), path[:depth])
        batches = prefetch_time.get(key, [])
        objects = capture.loaded.get(key, 0)
        level = "__".join(path[:depth])
        if objects:
            note = (f"{level!r} loaded {objects} related object{'s' if objects != 1 else ''} for {root.rows} "
                    f"row{'s' if root.rows != 1 else ''} and none was read.")
        else:
            note = f"{level!r} is not used on this page (it loaded nothing for these {root.rows} rows)."
        if depth < len(path):
            note += f" Dropping {lookup!r} removes this level too."
        out.append(dataclasses.replace(
            main, relation=hop.label, lookup=level, relation_kind=KIND_LABELS.get(hop.kind),
            related_model=_label(hop.target), defined_at=_definition(hop),
            count=sum(b.count for b in batches), avoidable=sum(b.count for b in batches),
            duration_ms=round(sum(b.duration for b in batches) * 1000, 3),
            sql=context.sql(batches[0].samples[0]) if batches else main.sql,
            snippets=dict(snippets), note=note + (" " + extra if extra else ""),
        ))
    return out


def merge_unused(findings: list[Finding], rows: dict[int, int] | None = None) -> list[Finding]:
    """One unused-prefetch finding per (origin, lookup, method): a queryset built once per search
    hit or per template include is one problem, with its querysets and rows counted."""
    rows = rows or {}
    merged: dict[tuple, Finding] = {}
    times: dict[tuple, int] = {}
    total: dict[tuple, int] = {}
    out: list[Finding] = []
    for finding in findings:
        origin = finding.origin or {}
        key = (origin.get("filename"), origin.get("lineno"), finding.lookup, finding.method)
        first = merged.get(key)
        total[key] = total.get(key, 0) + rows.get(id(finding), 0)
        if first is None:
            merged[key] = finding
            times[key] = 1
            out.append(finding)
            continue
        times[key] += 1
        first.count += finding.count
        first.avoidable += finding.avoidable
        first.duration_ms = round(first.duration_ms + finding.duration_ms, 3)
    for key, finding in merged.items():
        if times[key] > 1:
            finding.note = (f"{finding.note} (Built {times[key]} times on this page, {total[key]} rows in all; "
                            "counts are totals.)")
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
