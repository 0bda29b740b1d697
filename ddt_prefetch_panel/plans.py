"""Proofs per root queryset: every N+1 fix replayed, one combined fix per root.

The N+1 findings of one request are proven here, on top of the low-level replay of
``prove.py``. Findings that share a root queryset are proven together first: one replay of
the combined fix (``.select_related("a", "b")``) proves each of them. What that does not
prove is replayed finding by finding, each advice with its fallbacks in order; a fix that
fails or cannot be replayed loses its paste-able snippets (:func:`~.findings.withdraw_fix`).
Each proven fix becomes a :class:`FixPlan`, and :func:`number_fixes` turns the plans into
``Report.fixes``. :func:`place_fixes` then writes each proven fix out at its place (place.py):
``queryset = ...`` beside a view's ``model =``, an override, or nothing paste-able upstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import capture as cap
from .advise import BYPASSED, Advice, combine_fixes, fix_line, nested_prefetch, place_line
from .findings import PASTEABLE, Finding, frame_dict, where, withdraw_fix
from .frames import build_site
from .frameworks import override_snippets
from .place import Place, installed, upstream_where
from .advise import queryset_expression, swap_model
from .prove import Budget, Limits, Step, imports_for, namespace, prove, refetch_step, steps_for
from .relate import Relation
from .writes import public_method

if TYPE_CHECKING:
    from .analyze import NPlusOne


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
    paths: list = field(default_factory=list)  # the access paths the proof walked (with the fix)
    names: dict = field(default_factory=dict)  # the proof's namespace
    # On a rebased root, ``fix`` is the child model's whole queryset; this is the call the replay
    # applied to the rebased root (``.prefetch_related("authors")``, ``.all()``).
    call: str | None = None

    @property
    def access(self) -> list[dict]:
        """Loop lines the fix also changes (a to_attr list or an annotation is read there):
        the proof covers the origin line and these together."""
        out = []
        for finding in self.findings:
            line = finding.snippets.get("access")
            where_read = finding.access_at or finding.callsite
            if line and where_read and not any(a["line"] == line for a in out):
                out.append({"callsite": where_read, "line": line})
        return out


def _walks(relation: Relation, advice: Advice) -> tuple[list[list[Step]], list[list[Step]]]:
    """(access paths with the fix, access paths as the loop read them)."""
    refetch = relation.refetch
    if refetch is not None and refetch.key is not None:
        # Loaded by a foreign key's value: the loop loaded each object by its key, the fix reads
        # it through the foreign key (and the loop line reads it so, snippets["access"]).
        as_read = [refetch_step(refetch.model, refetch.key)] + steps_for(
            relation.hops[len(refetch.link):], relation.call, relation.aggregate)
        return _fixed_walks(relation.hops, relation, advice, []), [as_read]
    # A downcast: the walk loads each row again as the loop did (the rows of the rebased root
    # already are the child: read as themselves).
    head = [refetch_step(refetch.model)] if refetch is not None else []
    as_read = head + steps_for(relation.hops, relation.call, relation.aggregate)
    return _fixed_walks(relation.hops, relation, advice, head), [as_read]


def _fixed_walks(hops: list, relation: Relation, advice: Advice, head: list[Step]) -> list[list[Step]]:
    """How the loop reads once fixed: the manager, a to_attr list or an annotation."""
    if advice.to_attr:
        return [head + steps_for(hops, to_attr=advice.to_attr)]
    if advice.annotation:
        return [head + steps_for(hops[:-1]) + [Step(advice.annotation, many=False)]]
    return [head + steps_for(hops, relation.call, relation.aggregate)]


def _generic(relation: Relation) -> bool:
    """A path through a generic FK: a fix may add one query per content type met."""
    return any(hop.kind == "generic_fk" for hop in relation.hops)


def _proof_names(relation: Relation) -> dict[str, Any]:
    models = [relation.model] + [h.target for h in relation.hops] + [h.model for h in relation.hops] + list(
        relation.generic_models)
    return namespace(*models)


def prove_fixes(items: list[NPlusOne], config: dict, budget: Budget) -> list[FixPlan]:
    """Replay every N+1 fix on the request's own data; one combined fix per root queryset.

    Findings that share a root are proven together first: one replay of the combined fix
    proves each of them (and costs one replay, not one per finding). What that does not
    prove is replayed finding by finding, with each advice's fallbacks. A fix that fails or
    cannot be replayed loses its paste-able snippets: the finding keeps its relation and says
    what was tried and why nothing is shown.
    """
    limits = Limits.from_config(config)
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
                show_plan(item.finding, plan)
    proven: list[tuple[NPlusOne, list, list]] = []
    for item in candidates:
        if id(item) in together:
            continue
        proof, after, as_read = _first_proven(item, limits, budget)
        item.finding.proof = proof
        if proof["status"] == "verified" and item.relation.root is not None:
            proven.append((item, after, as_read))
        elif not (proof["status"] == "skipped" and not limits.enabled):
            withdraw_fix(item.finding, proof)
        finding = item.finding
        if finding.snippets.get("fix", "").startswith("."):
            needed = imports_for(finding.snippets["fix"], {**_proof_names(item.relation), **item.advice.bindings})
            if needed:
                finding.snippets["import"] = "\n".join(needed)
    for entries in _by_root(proven):
        plans += _plans_for_root(entries, limits, budget)
    return show_rebased(plans)


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
        proof = prove(relation.root, fix, after, limits, budget, {**names, **candidate.bindings}, as_read,
                      generic=_generic(relation))
        proof["fix"] = _tried(relation, candidate, fix)
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
    after = _distinct(path for _item, paths, _read in entries for path in paths)
    as_read = _distinct(path for _item, _paths, read in entries for path in read)
    proof = prove(plan.root, nested, after, limits, budget, names, as_read,
                  generic=any(_generic(item.relation) for item, _a, _r in entries))
    if proof["status"] != "verified" or proof["after"] >= plan.proof["after"]:
        return
    proof["fix"] = nested
    plan.fix, plan.proof = nested, proof
    plan.imports = imports_for(nested, names)
    plan.line = _plan_line(plan.root, plan.origin, nested)
    for finding in plan.findings:  # each finding shows the fix its card shows, and that proof
        finding.proof = proof
        plain, queryset = finding.snippets.get("fix") or "", finding.snippets.get("queryset")
        show_plan(finding, plan, queryset.replace(plain, nested) if queryset and plain and plain in queryset else None)


def show_plan(finding: Finding, plan: FixPlan, queryset: str | None = None) -> None:
    """The finding shows its plan's call, line and imports: what its fix card shows (and the
    whole queryset with that call, when one is known)."""
    snippets = finding.snippets
    for key in ("line", "import", "queryset"):
        snippets.pop(key, None)
    snippets["fix"] = plan.fix
    if queryset:
        snippets["queryset"] = queryset
    if plan.line:
        snippets["line"] = plan.line
    if plan.imports:
        snippets["import"] = "\n".join(plan.imports)


def _combined_plans(entries: list[tuple[NPlusOne, list, list]], limits: Limits, budget: Budget) -> list[FixPlan]:
    single = [_single_plan(item, after) for item, after, _read in entries]
    if len(entries) == 1:
        return single
    plan = _prove_combined(entries, limits, budget)
    return [plan] if plan is not None else single


def _prove_combined(entries: list[tuple[NPlusOne, list, list]], limits: Limits, budget: Budget) -> FixPlan | None:
    """The findings' fixes merged into one call on their root, if the replay verifies it."""
    first = entries[0][0]
    root = first.relation.root
    # A re-fetch's own fix is the rebased root itself (its line queries the child model): it adds no call.
    calls = [item for item, _a, _r in entries if not _rebase_only(item)]
    fixes = [item.advice.proof_call or item.advice.snippets.get("fix") or "" for item in calls]
    proof_calls = {item.advice.proof_call for item in calls}
    shown = {item.advice.snippets.get("fix") for item in calls}
    if not calls:
        combined = replayed = ".all()"
    elif proof_calls != {None}:
        # A fix proven through its own call (one that replaces a lookup of the root) combines only
        # with findings that advise the very same one (one loop through a generic FK, per type).
        if len(proof_calls) != 1 or len(shown) != 1:
            return None
        combined, replayed = shown.pop(), proof_calls.pop()
    else:
        combined = replayed = combine_fixes(fixes)
    if combined is None:
        return None
    names = _plan_names(entries)
    after = _distinct(path for _item, paths, _read in entries for path in paths)
    as_read = _distinct(path for _item, _paths, read in entries for path in read)
    proof = prove(root, replayed, after, limits, budget, names, as_read,
                  generic=any(_generic(item.relation) for item, _a, _r in entries))
    if proof["status"] != "verified":
        return None
    proof["fix"] = combined
    origin = first.finding.origin
    if replayed != combined:
        line = first.advice.snippets.get("line")
    else:
        line = _plan_line(root, origin, combined)
    return FixPlan(root, combined, line, imports_for(combined, names),
                   [item.relation.lookup for item, _a, _r in entries if item.relation.lookup],
                   [item.finding for item, _a, _r in entries], proof, origin, after, names)


def _tried(relation: Relation, advice: Advice, fix: str) -> str:
    """The fix as the user would see it: on a rebased root, the child model's queryset."""
    line = advice.snippets.get("line")
    if relation.refetch is None:
        return fix
    expression = queryset_expression(line, relation.refetch.model.__name__) if line else None
    return expression or f"a {relation.refetch.model.__name__} query"


def _rebase_only(item: NPlusOne) -> bool:
    """The per-row re-fetch itself (no relation read off it): its fix is the rebased root."""
    return item.relation.refetch is not None and not item.relation.path


def _plan_line(root: cap.Root, origin: dict | None, fix: str) -> str | None:
    """The origin line with ``fix`` applied; on a rebased root, the line queries its model."""
    code = origin.get("code") if origin else None
    if not code:
        return None
    if root.base is not None:
        code = swap_model(code, root.base.model.__name__, root.model.__name__)
        if code is None:
            return None
        if fix == ".all()":
            return code.strip()
    return fix_line(code, root.model.__name__, fix)


def show_rebased(plans: list[FixPlan]) -> list[FixPlan]:
    """A proven fix on a rebased root is a query of the child model at the looped queryset's line:
    shown as that whole queryset (``ArticlePage.objects.filter(live=True).prefetch_related("authors")``),
    with the child model's import. Without a line to rewrite there is nothing to show as is: that
    plan is dropped (its findings say why)."""
    kept = []
    for plan in plans:
        if plan.root is None or plan.root.base is None:
            kept.append(plan)
            continue
        model = plan.root.model
        expression = queryset_expression(plan.line, model.__name__) if plan.line else None
        if expression is None:
            proof = {**plan.proof, "status": "skipped", "detail": (
                f"The fix queries {model.__name__} instead of {plan.root.base.model.__name__}, which only the "
                f"line that builds the queryset can say, and that line could not be rewritten.")}
            plan.proof = proof
            for finding in plan.findings:
                finding.proof = proof
                withdraw_fix(finding, proof)
            continue
        kept.append(plan)
        plan.call, plan.fix = plan.fix, expression
        plan.imports = sorted({*plan.imports, f"from {model.__module__} import {model.__name__}"})
        for finding in plan.findings:
            finding.snippets["fix"] = expression
            finding.snippets["line"] = plan.line
            finding.snippets["queryset"] = expression
            finding.snippets["import"] = "\n".join(plan.imports)
            if finding.proof:
                finding.proof = {**finding.proof, "fix": expression}
        plan.proof = {**plan.proof, "fix": expression}
    return kept


def _distinct(paths) -> list[list[Step]]:
    """Access paths without repeats: findings of one loop through a generic FK (one per target
    type) walk the same path, and walking it twice would count the unfixed loop twice."""
    out: list[list[Step]] = []
    for path in paths:
        if path not in out:
            out.append(path)
    return out


def _plan_names(entries: list) -> dict[str, Any]:
    """The proof namespace of several findings' fixes: their models and filter bindings."""
    names = namespace(*(m for item, _a, _r in entries for m in _proof_names(item.relation).values()
                        if isinstance(m, type) and hasattr(m, "_meta")))
    for item, _a, _r in entries:
        names.update(item.advice.bindings)
    return names


def _single_plan(item: NPlusOne, paths: list) -> FixPlan:
    advice, finding = item.advice, item.finding
    imports = [line for line in finding.snippets.get("import", "").splitlines() if line]
    return FixPlan(item.relation.root, advice.snippets["fix"], advice.snippets.get("line"), imports,
                   [item.relation.lookup] if item.relation.lookup else [], [finding], finding.proof, finding.origin, paths,
                   {**_proof_names(item.relation), **advice.bindings})


def withhold_plan(plan: FixPlan, proof: dict) -> None:
    """A proven plan not shown after all (it costs another request or this page more): its
    findings carry ``proof`` (``status`` "failed"), say why, and lose their paste-able lines."""
    for finding in plan.findings:
        finding.proof = proof
        withdraw_fix(finding, {"status": "skipped", "detail": proof["detail"]})
        finding.fix_id = None


def pasteable_plans(plans: list[FixPlan], items: list[NPlusOne]) -> list[FixPlan]:
    """The plans a project line can take: a fix whose place is upstream (built and looped inside
    an installed package) is no ``Report.fixes`` entry, so no card, export or patch offers its
    call or its loop rewrite (which, pasted in the project's own method alone, would read a
    list nothing loads)."""
    upstream = {id(item.finding) for item in items
                if item.finding is not None and item.place is not None and item.place.kind == "upstream"}
    return [plan for plan in plans if not any(id(f) in upstream for f in plan.findings)]


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
        elif place.kind == "override" and place.owner is not None and place.params and proven and fix.startswith("."):
            finding.snippets.update(override_snippets(("override", place.owner, place.attr, place.params), fix))
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


# Everything a finding offers to paste, framework places included: withdrawn where no line of the
# project can take the fix.
_OFFERED = (*PASTEABLE, "override", "get_queryset", "hints", "patch")


def _unplaced(finding: Finding, relation: Relation | None) -> None:
    """The loop's queryset was built in a template or by a library while the page iterated
    (a per-child query of a polymorphic queryset), and no queryset of the project leads to it:
    a proof on that queryset says nothing about a line the user can change."""
    root = relation.root if relation is not None else None
    if root is None or not any(finding.snippets.get(key) for key in PASTEABLE):
        return
    site = build_site(root.origin)
    if site.frame is None or not (site.frame.template or installed(site.frame)):
        return  # code typed in a shell or run with python -c: its own line is shown as before
    where_built = where(frame_dict(site.frame))
    for key in _OFFERED:
        finding.snippets.pop(key, None)
    finding.method = None
    reason = (f"No fix is shown: the loop's queryset was built at {where_built}, where nothing can be pasted, "
              "and no queryset of your project leads to it (it was loaded while iterating, not through a "
              "relation). A select_related/prefetch_related on your own queryset would not reach it.")
    if finding.proof:
        finding.proof = {**finding.proof, "status": "skipped", "detail": reason}
    finding.note = f"{finding.note} {reason}" if finding.note else reason


def _unplaceable(finding: Finding, place: Place) -> None:
    """Upstream: the package's line is named, nothing is offered to paste. When the loop's own
    read is the project's and bypasses the package's prefetch (advise.bypassed_prefetch), that
    read is the cause: the note does not send the user upstream."""
    for key in _OFFERED:
        finding.snippets.pop(key, None)
    finding.library = True
    note = place.note
    if finding.note and BYPASSED in finding.note and place.frame is not None:
        note = f"{upstream_where(place.frame)}: the change is the read above, in your code, not the package's queryset."
    finding.note = f"{finding.note} {note}" if finding.note else note
