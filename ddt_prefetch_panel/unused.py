"""Unused eager loads: ``prefetch_related`` / ``select_related`` lookups nothing read.

Capture records which relation paths of each root queryset were read and how many objects
each eager level loaded. A lookup whose deepest levels were never read is reported once per
unused level (``pizzas`` and ``pizzas__toppings``), with that level's own statements; levels
under a level that loaded nothing are never flagged, and a queryset built many times at one
place is one finding.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db.models import Prefetch

from . import capture as cap
from .advise import advise_unused, flatten_select_related, remove_lookup
from .findings import Context, Finding, defined_at, frame_dict, model_label, withdraw_fix
from .frames import build_site
from .frameworks import unused_snippets
from .plans import FixPlan
from .prove import PROOF_ERRORS, Budget, Limits, namespace, run, steps_for
from .relate import KIND_LABELS, describe_path


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
        origin = frame_dict(site.frame)  # no library flag needed: library-built querysets are skipped
        if origin is None or site.library:
            continue  # built by library code (admin internals, ...): nothing the user can edit
        reads = accessed.get(id(root), [])
        for method, path in lookups:
            used = used_depth(path, reads)
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
                model=model_label(root.model),
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
                related_model=model_label(hops[-1].target) if hops else None,
                defined_at=defined_at(hops[-1]) if hops else None,
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


def used_depth(path: tuple[str, ...], reads: list[tuple[str, ...]]) -> int:
    """How many levels of an eager lookup were read (0: none)."""
    for depth in range(len(path), 0, -1):
        if any(read[:depth] == path[:depth] for read in reads):
            return depth
    return 0


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
            related_model=model_label(hop.target), defined_at=defined_at(hop),
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


# --------------------------------------------------------------------------- "remove this", proven


def prove_removals(findings: list[Finding], plans: list[FixPlan], capture: cap.Capture, config: dict,
                   budget: Budget) -> None:
    """Replay each "drop this lookup" on the request's own rows before it is shown.

    The root is re-run with and without the lookup, walking every path the request read from
    its rows (other loops, templates, library code: every read the hooks saw); the line without
    it is shown only when that runs no more statements and reads the same objects.

    On the line of a root's proven fix, the removal joins that fix instead of contradicting it:
    the fix's line is written without the lookup ("keep ``pizzas``, drop ``customer``"), proven
    with the fix applied; if that is not proven, the unused finding shows no line of its own.
    """
    limits = Limits.from_config(config)
    if not limits.enabled:
        return
    by_line = {_line_key(plan.origin): plan for plan in plans if plan.root is not None and plan.origin}
    for finding in findings:
        if finding.kind != "unused_prefetch" or "conditional" in finding.snippets:
            continue  # conditional advice (added in a shared manager): nothing to drop here
        plan = by_line.get(_line_key(finding.origin))
        if plan is not None:
            _join_fix(finding, plan, capture, limits, budget)
            continue
        root = _root_at(capture, finding)
        proof, _line = (_without_lookup(root, "", finding.origin.get("code"), [], namespace(root.model), finding,
                                        capture, limits, budget)
                        if root is not None else ({"detail": "the queryset could not be found again."}, None))
        if proof.get("status") != "verified":
            withdraw_fix(finding, {"status": "skipped", "detail": f"Dropping {finding.lookup!r} was not proven: "
                                                                  f"{proof['detail']}"})
        else:
            finding.proof = {**proof, "fix": finding.snippets.get("fix")}


def _join_fix(finding: Finding, plan: FixPlan, capture: cap.Capture, limits: Limits, budget: Budget) -> None:
    proof, merged = _without_lookup(plan.root, plan.fix, plan.line, plan.paths, plan.names, finding, capture,
                                    limits, budget)
    if proof.get("status") != "verified" or merged is None:
        if proof.get("status") == "verified":
            proof = {"detail": "the fix's line could not be rewritten without it."}
        withdraw_fix(finding, {"status": "skipped", "detail": (
            f"This line also carries a proven fix ({plan.fix}); dropping {finding.lookup!r} with it "
            f"was not proven: {proof['detail']}")})
        return
    level = finding.lookup
    for member in plan.findings:  # the fix's own findings show the same line
        if member.snippets.get("line") == plan.line:
            member.snippets["line"] = merged
    plan.line = merged
    plan.findings.append(finding)
    plan.proof = {**plan.proof, "detail": f"{plan.proof['detail']} Without {level!r}: {proof['detail'][0].lower()}{proof['detail'][1:]}"}
    finding.snippets = {"fix": merged, "line": merged}
    finding.proof = {**proof, "fix": merged}
    finding.note = f"{finding.note} Merged into this queryset's fix: drop {level!r} there."


def _line_key(frame: dict | None) -> tuple | None:
    return (frame.get("filename"), frame.get("lineno")) if frame else None


def _root_at(capture: cap.Capture, finding: Finding) -> cap.Root | None:
    """The largest root built on the finding's line that loads its lookup."""
    key = _line_key(finding.origin)
    roots = [root for root in capture.roots
             if root.rows and _line_key(frame_dict(build_site(root.origin).frame)) == key
             and any(m == finding.method and "__".join(p).startswith(finding.lookup) for m, p in _eager_lookups(root))]
    return max(roots, key=lambda root: root.rows) if roots else None


def _without_lookup(root: cap.Root, fix: str, code: str | None, paths: list, names: dict, finding: Finding,
                    capture: cap.Capture, limits: Limits, budget: Budget) -> tuple[dict, str | None]:
    """(the replay's proof, ``code`` without the unread lookup if it can be rewritten). ``fix`` is
    applied in both replays (a proven fix on the same line), ``paths`` walked besides the reads."""
    model = root.model
    reads = [path for root_id, path in capture.accessed if root_id == id(root)]
    declared = [(method, path) for method, path in _eager_lookups(root)
                if method == finding.method and "__".join(path[: len(finding.lookup.split("__"))]) == finding.lookup]
    if len(declared) != 1:
        return {"detail": "the lookup could not be found on the queryset again."}, None
    method, path = declared[0]
    used = used_depth(path, reads)
    keep = "__".join(path[:used]) or None
    line = remove_lookup(code, model.__name__, method, "__".join(path), keep) if code else None
    drop, kept_objects = _drop_call(root, method, path, keep)
    names = {**names, **kept_objects}
    if budget.exhausted():
        return {"detail": f"the replay budget of {limits.budget_s * 1000:.0f} ms for this request is spent."}, None
    walks = paths + [steps_for(hops) for hops in (describe_path(model, read) for read in reads) if hops]
    rows = min(max(root.rows, 1), limits.max_rows)
    try:
        with budget.timed():
            kept, read_kept, loaded = run(root, fix, walks, names, rows)
            dropped, read_dropped, _ = run(root, drop + fix, walks, names, rows)
    except PROOF_ERRORS as exc:
        return {"detail": f"the replay raised {type(exc).__name__}: {exc}"}, None
    if read_dropped != read_kept or dropped > kept:
        return {"detail": f"replayed on {loaded} rows, the page would run {dropped} statements instead of {kept}."}, None
    return {"status": "verified", "before": kept, "after": dropped, "rows": loaded,
                  "detail": f"Replayed on {loaded} rows with every path this request read from them: "
                            f"{kept} -> {dropped} queries, same objects read."}, line


def _drop_call(root: cap.Root, method: str, path: tuple[str, ...], keep: str | None) -> tuple[str, dict]:
    """A call that rebuilds the root's eager loads of ``method`` without ``path`` (``keep`` in its
    place), and the names it uses: the root's own ``Prefetch`` objects are passed as they are."""
    lookup = "__".join(path)
    if method == "select_related":
        current: list = ["__".join(p) for m, p in _eager_lookups(root) if m == method]
    else:
        current = list(root.prefetch_lookups)
    names: dict[str, Any] = {}
    args: list[str] = []
    for item in current + ([keep] if keep else []):
        if isinstance(item, Prefetch):
            if item.prefetch_to == lookup:
                continue
            names[f"_ddtpp_kept_{len(names)}"] = item
            args.append(f"_ddtpp_kept_{len(names) - 1}")
        elif item != lookup and f'"{item}"' not in args:
            args.append(f'"{item}"')
    return f".{method}(None)" + (f".{method}({', '.join(args)})" if args else ""), names
