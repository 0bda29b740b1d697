"""Bulk gets: a loop of ``Model.objects.get(field=value)`` on a unique field, and its proof.

:func:`bulk_get` recognises the loop from its SQL (one equality on the primary key or a
unique column, no relation behind it); ``advise.advise_in_bulk`` turns it into an
``in_bulk()`` fix, and :func:`prove_bulk_gets` replays ``in_bulk()`` on the values this
request looked up one by one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import sqlshape
from .advise import BulkGet
from .findings import withdraw_fix
from .group import Group
from .prove import Limits, isolated

if TYPE_CHECKING:
    from .analyze import NPlusOne


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
            withdraw_fix(finding, proof)
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
            withdraw_fix(finding, proof)
        finding.proof = proof
