"""Repeated writes: what a ``save()`` / ``create()`` / ``delete()`` per row does, and its proof.

:func:`build_write` reads a group of repeated INSERTs, UPDATEs or DELETEs as a
:class:`~.advise.Write` (its model and, for ``save()``'s UPDATEs, the fields the saves changed,
and whether every save wrote one value or one increment); ``advise.advise_write`` turns it into
a fix. :func:`prove_writes` replays each fix on rows of this request, on the writes' own
alias, inside a savepoint that is rolled back.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django.db import connections

from . import capture as cap
from .advise import Write
from .findings import withdraw_fix
from .group import Group, is_transaction_control, write_of
from .prove import Limits, apply_fix, isolated, namespace
from .relate import model_for_table

if TYPE_CHECKING:
    from .analyze import NPlusOne


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
            withdraw_fix(finding, proof)


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
            connection = connections[alias]
            objs = [obj for obj in (_unsaved(model, r, connection) for r in records) if obj is not None]
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


def _unsaved(model: type, record: cap.Record, connection: Any) -> Any:
    """An unsaved instance with the values one INSERT wrote (primary key left out), read back
    as the fields hold them."""
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
            values[field.attname] = from_db(field, value, connection)
    return model(**values)


def from_db(field: Any, value: Any, connection: Any) -> Any:
    """A parameter as the field reads it back from the database: the backend's and the field's
    converters, as a query's rows get them. An INSERT's parameters are adapted for the database
    (SQLite gets a datetime as a naive UTC string): saved again as they are, they would differ
    from what the user's code wrote, and Django would warn of a naive datetime. A converter that
    does not take the adapted form leaves the value as it was."""
    column = field.get_col(field.model._meta.db_table)
    converted = value
    try:
        for converter in connection.ops.get_db_converters(column) + field.get_db_converters(connection):
            converted = converter(converted, column, connection)
    except Exception:  # noqa: BLE001 (a backend's converter that expects another input type)
        return value
    return converted
