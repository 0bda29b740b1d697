"""Stage 5b, duplicates: the same statement run again and again outside every N+1.

Exact repeats (same SQL, same parameters) that no N+1 owns become ``duplicate`` findings, each
with advice on where the repeat comes from (advise.py writes each change): a template tag or
filter in a loop, admin forms rendering one choice list each, a cached content-type lookup, a
query that reads nothing of its project loop, a lookup kept in a variable and made again by
helpers, the admin changelist's second count. A read after a write to its table is no
duplicate; a repeat only library code drove is ``library``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from . import capture as cap
from . import sqlshape
from .advise import (advise_admin_choices, advise_content_type, advise_full_count, advise_loop_invariant,
                     advise_pass_it_in, advise_template_repeat)
from .conf import is_allowed
from .editor import frame_path
from .findings import Context, Finding, frame_dict, model_label, where
from .frames import build_site, is_project_class, is_test_file, library_loops
from .frameworks import changelist_counting, registration_line
from .group import Duplicate, exact_duplicates, write_of
from .place import class_line
from .relate import model_for_table


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


def duplicate_findings(buckets: list[cap.Bucket], n_plus_one_buckets: set[int], context: Context) -> list[Finding]:
    """Exact repeats outside every N+1 (``n_plus_one_buckets``: ids of the N+1s' buckets), with
    advice on where the repeat comes from."""
    if "duplicate" not in context.kinds:
        return []
    writes = [(w[1].lower(), b.first_seq, b.last_seq) for b in buckets if (w := write_of(b.sql))]
    findings = []
    for duplicate in exact_duplicates(buckets):
        if write_of(duplicate.sql) or _written_between(duplicate, writes):
            continue  # a write is never "reused"; a read after a write to its table may differ
        # A statement of an N+1 group is that N+1's (its `identical` count says how many repeated
        # exactly): only the repeats outside every N+1 can make a duplicate finding of their own.
        outside_buckets = [b for b in duplicate.buckets if id(b) not in n_plus_one_buckets]
        outside = duplicate.count_in(outside_buckets)
        if outside < 2:
            continue
        if len(outside_buckets) < len(duplicate.buckets):
            duplicate = replace(duplicate, count=outside, buckets=outside_buckets,
                                            duration=duplicate.duration * outside / duplicate.count)
        finding = _duplicate(duplicate, context)
        if finding.avoidable < 1:
            continue  # nothing to save (e.g. the repeats are needed): not a finding
        if not scoped_allowed(duplicate.buckets, finding):
            findings.append(finding)
    return findings


def table_model(record: cap.Record) -> str | None:
    shape = sqlshape.shape_on(record.sql, record.alias)
    if shape is None or len(shape.tables) != 1:
        return None
    return model_label(model_for_table(shape.tables[0]))


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
    stack = context.stack(record.stack)
    advice, frames, owned = duplicate_advice(duplicate, frames, stack, context)
    first = frames[0] if frames else None
    if advice is None:
        advice = ({"fix": f"# {duplicate.count} identical queries: keep the result of the first one "
                          f"({where(first, unknown='the first call')}) and reuse it"}, None)
    snippets, note = advice
    return Finding(
        kind="duplicate",
        model=model_label(record.model) or table_model(record),
        relation=None,
        lookup=None,
        method=None,
        count=duplicate.count,
        avoidable=duplicate.count - 1,
        duration_ms=round(duplicate.duration * 1000, 3),
        sql=context.sql(record),
        params=context.params(record),
        callsite=first,
        stack=stack,
        origin=None,
        snippets=snippets,
        note=note,
        callsites=frames,
        alias=record.alias,
        library=not owned and _library_duplicate(duplicate, first),
    )


def duplicate_advice(duplicate: Any, frames: list[dict], stack: list[dict],
                     context: Context) -> tuple[tuple[dict, str] | None, list[dict], bool]:
    """(snippets and note, the call sites with the one to act on first, whether the project owns
    the fix) for where a repeat comes from (advise.py says how to change each):

    a template tag or filter in a loop; admin forms rendering one choice list each; a cached
    content-type lookup; a query that reads nothing of its project loop; a lookup kept in a
    variable and made again by helpers; the admin changelist's second count.
    """
    record = duplicate.sample
    first = frames[0] if frames else None
    model = record.model
    if len(frames) == 1 and (advice := advise_template_repeat(stack)):
        return advice, frames, False
    forms = _admin_forms(duplicate, context)
    if forms and (advice := advise_admin_choices(forms)):
        # The call site is the admin class whose forms repeat most.
        frames = sorted(frames, key=lambda frame: not frame["function"].startswith(f"{forms[0][0].__name__}."))
        return advice, frames, False
    if first and model is not None and model._meta.label == "contenttypes.ContentType" and \
            (advice := advise_content_type(first.get("code"))):  # cached by Django: better than hoisting it
        return advice, frames, False
    if first and len(frames) == 1 and model is not None and not first.get("template") and len(duplicate.buckets) == 1 \
            and (advice := advise_loop_invariant(frame_path(first, libraries=False), first["lineno"], model.__name__)):
        return advice, frames, False
    if advice := advise_pass_it_in(frames):
        return advice, frames, False
    counting = changelist_counting(model, record.stack)
    if counting is not None:
        project = is_project_class(type(counting))
        registered = None if project else registration_line(model)  # the project's register(...) line
        declared = class_line(type(counting)) if project else registered
        return (advise_full_count(counting, project, registered is not None),
                [frame_dict(declared)] if declared is not None else frames, project or registered is not None)
    return None, frames, False


def _admin_forms(duplicate: Any, context: Context) -> list[tuple[type, str, int]]:
    """(project admin class, field, statements) of the admin forms that issued a duplicate, most first."""
    counts: dict[tuple, int] = {}
    for bucket in duplicate.buckets:
        frames = context.resolve(bucket.stack)
        detail = frames[0].detail if frames else None
        if isinstance(detail, tuple) and detail[0] == "admin_form":
            counts[detail[1:]] = counts.get(detail[1:], 0) + duplicate.count_in([bucket])
    return sorted(((admin, name, n) for (admin, name), n in counts.items()), key=lambda item: -item[2])


def _library_duplicate(duplicate: Any, callsite: dict | None) -> bool:
    """Every repeat issued by library code that no project frame drove, and none of them a
    relation read on a queryset the project built (that one the project's fix covers).

    A repeat called from a project line (a helper calling ``get_object_or_404`` per row) is the
    project's: that line is where to keep the first result; unless a library frame on the way
    loops (the project called it once). A test's line (``client.get``) is not: the request it
    made is decided by what it requested.
    """
    if callsite is not None and not callsite.get("template") and not is_test_file(callsite["filename"]) \
            and not any(library_loops(bucket.stack) for bucket in duplicate.buckets):
        return False
    if not all(build_site(bucket.stack).library for bucket in duplicate.buckets):
        return False
    for bucket in duplicate.buckets:
        for record in bucket.samples:
            source = record.hop.source if record.hop is not None else None
            if source is not None and not build_site(source.root.origin).library:
                return False
    return True
