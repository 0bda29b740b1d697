"""Index advisor: WHERE / ORDER BY columns of captured SELECTs that no index serves.

The decision comes from the parsed SQL, the models' ``_meta`` and the live database's
introspection; the database's own plan (EXPLAIN) is shown as evidence, never used to
decide (PostgreSQL seq-scans small tables even when a good index exists).

For each repeated (or slow) SELECT and each table in it:

1. collect what an index could serve: equality / ``IN`` / ``IS NULL`` columns, one range
   column, and the ORDER BY columns of that table; leave out what it cannot (``LIKE``
   with a leading wildcard, functions, casts, negations, ``OR``) and remember why;
2. look for an existing index whose leading columns are exactly the equality columns
   (or, without equalities, whose first column is the range / order column); FK, PK and
   unique lookups are never flagged;
3. advise ``db_index=True`` (one column) or ``models.Index(fields=[...])`` with Django's
   own index name: equalities first, then one range column, then ORDER BY columns only
   when no range column precedes them, at most three fields;
4. attach the plan of one representative statement (and, when asked, the plan with the
   suggested index created inside a rolled-back transaction).

Every query this module runs (introspection, EXPLAIN) goes through the raw backend
cursor inside ``capture.suspend()`` and a savepoint (or transaction) that is always
rolled back (see ``sandbox``), so it is neither recorded by the panel nor counted by
``assertNumQueries``, and it cannot leave anything behind in the user's transaction.
"""

from __future__ import annotations

import itertools
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from django.core.exceptions import FieldDoesNotExist
from django.db import connections
from django.db.models import BooleanField, ForeignKey, Index, UniqueConstraint

from . import capture as cap
from .frames import is_library_file
from .group import Group, redact_sql
from .relate import definition_site, model_for_table
from .findings import Context, Finding, frame_dict, frame_dict_from
from .pysource import python_literal
from .sqlshape import LikeUse, Shape, is_select, like_uses, select_shape, vendor_of

MAX_FIELDS = 3  # longer composite indexes rarely pay for their writes
TRY_INDEX_MAX_ROWS = 10_000  # EXPLAIN_TRY_INDEX builds a real index: only on small dev tables
STATEMENT_TIMEOUT = "2s"  # PostgreSQL: bound for our EXPLAIN statements
EXPLAIN_VENDORS = ("sqlite", "postgresql")  # plan formats this module reads

# Why a column was left out of the advice (shown in the finding's note).
WHY_LEADING_WILDCARD = "LIKE with a leading wildcard cannot use a B-tree index"
WHY_UNKNOWN_PATTERN = "LIKE pattern unknown"
WHY_SQLITE_LIKE = "SQLite's case-insensitive LIKE cannot use an ordinary index"
WHY_PG_LIKE = "PostgreSQL's LIKE needs a pattern_ops index"
WHY_FUNCTION = "wrapped in a function or cast"
WHY_OTHER = "negated or not comparable by an index"
WHY_SECOND_RANGE = "only one range column can use an index"
WHY_NOT_FIELD = "not a model field"


# --------------------------------------------------------------------------- what a query asks


@dataclass
class Wanted:
    """What one SELECT asks of one table, in column names."""

    equality: list[str] = field(default_factory=list)  # "=", IN, IS NULL, in WHERE order
    range: str | None = None
    order: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (column, why)
    has_or: bool = False

    def lead(self) -> str | None:
        """The first column a no-equality query needs an index to start with."""
        if self.range is not None:
            return self.range
        return self.order[0][0] if self.order else None


def like_pattern(use: LikeUse, params: Any) -> str | None:
    """The pattern a LIKE ran with: the positional parameter, or the literal in the SQL."""
    if use.literal is not None:
        return use.literal
    if use.param is None or not isinstance(params, (list, tuple)) or use.param >= len(params):
        return None
    value = params[use.param]
    return value if isinstance(value, str) else None


def like_why(pattern: str | None, wrapped: bool, vendor: str) -> str | None:
    """Why a LIKE cannot use an index (``None``: it is a usable prefix match)."""
    if pattern is None:
        return WHY_UNKNOWN_PATTERN
    if pattern[:1] in ("%", "_"):
        return WHY_LEADING_WILDCARD
    if vendor == "postgresql":
        # Outside the C locale a prefix LIKE needs a *_pattern_ops index, which
        # Index(fields=...) does not create: do not advise one that would not be used.
        return WHY_PG_LIKE
    if wrapped:
        return WHY_FUNCTION
    if vendor == "sqlite":
        # SQLite uses an index for LIKE only with case_sensitive_like or NOCASE columns.
        return WHY_SQLITE_LIKE
    return None


def wanted_columns(shape: Shape, table: str, params: Any, likes: tuple[LikeUse, ...], vendor: str) -> Wanted:
    """Split a table's WHERE / ORDER BY columns into what an index serves and what it cannot."""
    wanted = Wanted(has_or=shape.has_or)
    like_by_column = {use.column: use for use in likes if use.table == table}
    for condition in shape.conditions:
        if condition.table != table:
            continue
        column = condition.column
        op = condition.op
        use = like_by_column.get(column)
        if use is not None and op in ("like", "function"):
            # PostgreSQL's "col"::text LIKE reads as a function: it is still a LIKE.
            why = like_why(like_pattern(use, params), use.wrapped, vendor)
            if why is not None:
                wanted.skipped.append((column, why))
                continue
            op = "range"  # a prefix match reads a contiguous slice of the index
        elif op == "like":
            wanted.skipped.append((column, WHY_UNKNOWN_PATTERN))
            continue
        if op in ("eq", "in", "isnull"):
            if column not in wanted.equality:
                wanted.equality.append(column)
        elif op == "range":
            if wanted.range is None or wanted.range == column:
                wanted.range = column
            else:
                wanted.skipped.append((column, WHY_SECOND_RANGE))
        elif op == "function":
            wanted.skipped.append((column, WHY_FUNCTION))
        else:
            wanted.skipped.append((column, WHY_OTHER))
    # ORDER BY helps only as a continuation of the index: stop at another table's column.
    for order_table, column, descending in shape.order_by:
        if order_table != table:
            break
        if column in wanted.equality:
            continue  # sorting on a column fixed by "=" is free
        wanted.order.append((column, descending))
    # A range column equal to an equality column adds nothing.
    if wanted.range in wanted.equality:
        wanted.range = None
    return wanted


# --------------------------------------------------------------------------- existing indexes


@dataclass(frozen=True)
class ExistingIndex:
    columns: tuple[str, ...]
    unique: bool = False
    name: str | None = None


def _column(model: type, name: str) -> str | None:
    try:
        field_ = model._meta.get_field(name.lstrip("-"))
    except FieldDoesNotExist:
        return None
    return getattr(field_, "column", None)


def _columns(model: type, names: Any) -> tuple[str, ...] | None:
    columns = tuple(_column(model, n) for n in names)
    return columns if columns and all(columns) else None


def meta_indexes(model: type) -> list[ExistingIndex]:
    """Indexes the model declares: pk, unique / db_index fields (FKs by default), Meta options."""
    meta = model._meta
    found: list[ExistingIndex] = []
    for field_ in meta.local_concrete_fields:
        if field_.primary_key or field_.unique:
            found.append(ExistingIndex((field_.column,), unique=True))
        elif field_.db_index:
            found.append(ExistingIndex((field_.column,)))
    for index in meta.indexes:
        columns = _columns(model, index.fields) if index.fields else None
        if columns:  # expression indexes cannot be matched to plain columns
            found.append(ExistingIndex(columns, name=index.name))
    for names in meta.unique_together or ():
        columns = _columns(model, names)
        if columns:
            found.append(ExistingIndex(columns, unique=True))
    for constraint in meta.constraints:
        if isinstance(constraint, UniqueConstraint) and constraint.fields:
            columns = _columns(model, constraint.fields)
            if columns:
                # A conditional unique constraint is a partial index: it still exists
                # but does not make every lookup single-row.
                found.append(ExistingIndex(columns, unique=constraint.condition is None, name=constraint.name))
    return found


def indexes_from_constraints(constraints: dict) -> list[ExistingIndex]:
    """Indexes in ``introspection.get_constraints()`` output (checks and bare FKs are not indexes)."""
    found = []
    for name, info in constraints.items():
        if not (info.get("index") or info.get("unique") or info.get("primary_key")):
            continue
        columns: list[str] = []
        for column in info.get("columns") or ():
            if not column:
                break  # an expression: only the plain-column prefix is usable
            columns.append(column)
        if columns:
            found.append(ExistingIndex(tuple(columns), bool(info.get("unique") or info.get("primary_key")), name))
    return found


def is_covered(wanted: Wanted, indexes: list[ExistingIndex], fk_columns: set[str]) -> bool:
    """True when an existing index serves the query (see the module docstring)."""
    equality = set(wanted.equality)
    leading = {index.columns[0] for index in indexes}
    if equality:
        if equality & fk_columns & leading:
            return True  # FK lookups are indexed already and never flagged
        k = len(equality)
        for index in indexes:
            if index.unique and set(index.columns) <= equality:
                return True  # PK / unique lookup: at most one row
            if len(index.columns) >= k and set(index.columns[:k]) == equality:
                return True
        return False
    lead = wanted.lead()
    return lead is None or lead in leading


# --------------------------------------------------------------------------- advice


def advised_fields(model: type, wanted: Wanted) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    """Index fields (``"-name"`` for descending) in the documented order, and extra skips."""
    by_column = {f.column: f for f in model._meta.local_concrete_fields}
    skipped: list[tuple[str, str]] = []

    def name(column: str) -> str | None:
        field_ = by_column.get(column)
        if field_ is None:
            skipped.append((column, WHY_NOT_FIELD))
        return field_.name if field_ is not None else None

    fields: list[str] = [n for n in (name(c) for c in wanted.equality) if n]
    if wanted.range is not None:
        range_name = name(wanted.range)
        if range_name:
            # Reading the range in the ORDER BY direction also serves the sort.
            descending = bool(wanted.order) and wanted.order[0] == (wanted.range, True)
            fields.append(("-" if descending else "") + range_name)
    else:
        for column, descending in wanted.order:
            order_name = name(column)
            if not order_name:
                break  # an index cannot continue the sort past an unknown column
            fields.append(("-" if descending else "") + order_name)
    unique: list[str] = []
    for item in fields:
        if item.lstrip("-") not in {u.lstrip("-") for u in unique}:
            unique.append(item)
    return tuple(unique[:MAX_FIELDS]), skipped


def validated(model: type, fields: tuple[str, ...]) -> bool:
    try:
        return all(model._meta.get_field(f.lstrip("-")).concrete for f in fields)
    except FieldDoesNotExist:
        return False


def only_booleans(model: type, fields: tuple[str, ...]) -> bool:
    """An index on two-valued columns alone rarely beats a scan: not worth advising."""
    return all(isinstance(model._meta.get_field(f.lstrip("-")), BooleanField) for f in fields)


def build_index(model: type, fields: tuple[str, ...]) -> Index:
    """A ``models.Index`` named exactly as Django would name it (<= 30 characters)."""
    index = Index(fields=list(fields))
    index.set_name_with_model(model)
    return index


def field_declaration(model: type, field_name: str) -> str | None:
    """``name = models.X(..., db_index=True)`` rebuilt from the field, when it is plain."""
    field_ = model._meta.get_field(field_name)
    try:
        name, path, args, kwargs = field_.deconstruct()
    except Exception:  # custom fields may fail to deconstruct outside migrations
        return None
    if args:
        return None
    module, _, class_name = path.rpartition(".")
    prefix = "models." if module.startswith("django.db.models") else ""
    parts = []
    for key, value in {**kwargs, "db_index": True}.items():
        text = python_literal(value)
        if text is None:
            return None
        parts.append(f"{key}={text}")
    line = f"{name} = {prefix}{class_name}({', '.join(parts)})"
    return line if len(line) <= 120 else None


def advice_snippets(model: type, fields: tuple[str, ...], index: Index) -> dict[str, str]:
    label = model._meta.label
    names = ", ".join(f'"{f}"' for f in fields)
    index_line = f'models.Index(fields=[{names}], name="{index.name}")'
    snippets: dict[str, str] = {}
    if len(fields) == 1:
        field_name = fields[0].lstrip("-")
        declaration = field_declaration(model, field_name)
        snippets["fix"] = (f"# {label}.{field_name}\n{declaration}" if declaration
                           else f"db_index=True  # on {label}.{field_name}")
        snippets["index"] = index_line
    else:
        snippets["fix"] = index_line
    snippets["migrate"] = f"python manage.py makemigrations {model._meta.app_label}"
    return snippets


def describe(wanted: Wanted) -> str:
    """The filter and sort an index should serve, in the words of the SQL."""
    where = [f"{c} = ?" for c in wanted.equality]
    if wanted.range:
        where.append(f"{wanted.range} in a range")
    text = ("WHERE " + " AND ".join(where)) if where else ""
    if wanted.order:
        order = "ORDER BY " + ", ".join(c + (" DESC" if d else "") for c, d in wanted.order)
        text = f"{text}, {order}" if text else order
    return text


def already_exists(model: type, fields: tuple[str, ...], indexes: list[ExistingIndex]) -> bool:
    """An index already starts with the advised columns (the advice may be cut to 3 fields)."""
    columns = {_column(model, f) for f in fields}
    return any(set(index.columns[: len(fields)]) == columns for index in indexes)


# --------------------------------------------------------------------------- database access


_savepoints = itertools.count(1)


@contextmanager
def sandbox(alias: str) -> Iterator[Any]:
    """The raw backend cursor inside a transaction or savepoint that is always rolled back.

    The raw cursor and hand-written savepoint statements skip Django's query log and
    every execute wrapper (ours and the toolbar's), so the analysis stays invisible to
    ``connection.queries`` and ``assertNumQueries`` around a ``detect()`` block (Django's
    ``atomic()`` would log its SAVEPOINT statements). The rollback undoes ``SET LOCAL``
    and any index we created, and an error stays inside the savepoint instead of
    poisoning the user's transaction. The connection ends in the state it started in,
    so Django's transaction bookkeeping needs no update.
    """
    connection = connections[alias]
    if connection.needs_rollback:
        raise RuntimeError("the current transaction is broken; not querying the database")
    with cap.suspend():
        with connection.cursor() as wrapper:
            cursor = raw_cursor(wrapper)
            if connection.in_atomic_block or not connection.get_autocommit():
                name = connection.ops.quote_name(f"ddtpp_{next(_savepoints)}")
                cursor.execute(f"SAVEPOINT {name}")
                undo = [f"ROLLBACK TO SAVEPOINT {name}", f"RELEASE SAVEPOINT {name}"]
            else:
                cursor.execute("BEGIN")
                undo = ["ROLLBACK"]
            try:
                yield cursor
            finally:
                for statement in undo:
                    cursor.execute(statement)


def raw_cursor(cursor: Any) -> Any:
    """The backend's own cursor under every wrapper layer: Django's debug wrapper, and the
    ones tools leave on the connection (graphene-django's debug middleware, on by default
    with DEBUG, wraps ``connection.cursor()`` and never unwraps it)."""
    while hasattr(cursor, "cursor") and hasattr(cursor, "db"):
        cursor = cursor.cursor
    return cursor


class Introspection:
    """Database indexes per (alias, table), read at most once per analysis."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], list[ExistingIndex]] = {}
        self.errors: dict[tuple[str, str], str] = {}

    def __call__(self, alias: str, table: str) -> list[ExistingIndex]:
        key = (alias, table)
        if key not in self._cache:
            try:
                with sandbox(alias) as cursor:
                    constraints = connections[alias].introspection.get_constraints(cursor, table)
                self._cache[key] = indexes_from_constraints(constraints)
            except Exception as exc:  # analysis never breaks the page; fall back to _meta
                self._cache[key] = []
                self.errors[key] = f"{type(exc).__name__}: {exc}"
        return self._cache[key]


def explainable(sql: str) -> bool:
    # One SELECT only: the prefix applies to the first statement of a batch.
    return is_select(sql) and ";" not in sql


def _plan_lines(vendor: str, rows: list[tuple]) -> list[str]:
    if vendor == "sqlite":
        # (id, parent, notused, detail): indent by depth in the plan tree.
        depth: dict[int, int] = {0: -1}
        lines = []
        for row in rows:
            node, parent, detail = row[0], row[1], row[-1]
            depth[node] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node] + str(detail))
        return lines
    return [str(row[0]) for row in rows]


def redact_plan(lines: list[str]) -> list[str]:
    """Plan lines without parameter values (PostgreSQL prints them in Filter / Index Cond)."""
    out = []
    for line in lines:
        head, sep, cost = line.partition("  (cost=")
        out.append(redact_sql(head) + sep + cost)
    return out


def uses_index(vendor: str, lines: list[str], table: str) -> bool | None:
    """Whether the plan reads ``table`` through an index."""
    if vendor == "sqlite":
        pattern = re.compile(r"\b(SCAN|SEARCH) %s\b" % re.escape(table))
        mine = [line for line in lines if pattern.search(line)] or \
            [line for line in lines if re.search(r"\b(SCAN|SEARCH)\b", line)]
        return any(("INDEX" in line or "PRIMARY KEY" in line) and "AUTOMATIC" not in line for line in mine)
    if vendor == "postgresql":
        pattern = re.compile(r"\bon %s\b" % re.escape(table))
        mine = [line for line in lines if pattern.search(line)]
        if mine:
            return any("Index" in line or "Bitmap Heap Scan" in line for line in mine)
        return any("Index Scan" in line or "Index Only Scan" in line for line in lines)
    return None


def run_explain(cursor: Any, connection: Any, sql: str, params: Any) -> list[str]:
    prefix = "EXPLAIN QUERY PLAN" if connection.vendor == "sqlite" else "EXPLAIN"
    if connection.vendor == "postgresql":
        cursor.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
    cursor.execute(f"{prefix} {sql}", params)
    return _plan_lines(connection.vendor, list(cursor.fetchall()))


def explain(alias: str, sql: str, params: Any, table: str, *, show_params: bool = False) -> dict:
    """The database's plan for one statement, as evidence; never raises."""
    connection = connections[alias]
    vendor = connection.vendor
    evidence: dict[str, Any] = {
        "database": vendor, "plan": [], "uses_index": None, "after": None, "error": None, "note": None,
    }
    if vendor not in EXPLAIN_VENDORS:
        evidence["note"] = f"EXPLAIN not supported on {vendor}"
        return evidence
    if not explainable(sql):
        evidence["note"] = "Not explained: not a single SELECT statement."
        return evidence
    try:
        with sandbox(alias) as cursor:
            lines = run_explain(cursor, connection, sql, params)
    except Exception as exc:  # the finding stands without its evidence
        evidence["error"] = _error_text(exc, show_params)
        return evidence
    evidence["plan"] = lines if show_params else redact_plan(lines)
    evidence["uses_index"] = uses_index(vendor, lines, table)
    return evidence


def create_index_sql(connection: Any, model: type, index: Index) -> list[str]:
    """The statements ``schema_editor.add_index`` would run, without entering the editor.

    Entering SQLite's schema editor inside ``atomic()`` is refused (it must toggle
    foreign-key checks); collecting the SQL works on every backend.
    """
    editor = connection.schema_editor(collect_sql=True)
    editor.add_index(model, index)
    return list(editor.collected_sql)


def explain_with_index(alias: str, model: type, index: Index, sql: str, params: Any, table: str,
                       *, show_params: bool = False) -> tuple[list[str] | None, str | None]:
    """The plan with ``index`` created in a rolled-back transaction: (plan lines, note)."""
    connection = connections[alias]
    with sandbox(alias) as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
        rows = cursor.fetchone()[0]
        if rows >= TRY_INDEX_MAX_ROWS:
            return None, f"Not tried with the index: {table} has {rows} rows (limit {TRY_INDEX_MAX_ROWS})."
        if connection.vendor == "postgresql":
            # Rows written earlier in this transaction leave deferred FK checks pending,
            # and PostgreSQL refuses CREATE INDEX then. Run them now; the rollback to our
            # savepoint restores the deferred mode (and contains a failing check).
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for statement in create_index_sql(connection, model, index):
            cursor.execute(statement)
        note = None
        if connection.vendor == "postgresql":
            # The planner seq-scans small tables whatever indexes exist; forbid that
            # so the plan shows whether the new index can serve the query at all.
            cursor.execute("SET LOCAL enable_seqscan = off")
            note = "The 'after' plan was made with enable_seqscan off (PostgreSQL scans small tables anyway)."
        lines = run_explain(cursor, connection, sql, params)
    return (lines if show_params else redact_plan(lines)), note


def _error_text(exc: Exception, show_params: bool) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message if show_params else redact_sql(message)}"


# --------------------------------------------------------------------------- findings


@dataclass
class _Candidate:
    alias: str
    model: type
    table: str
    fields: tuple[str, ...]
    wanted: Wanted
    groups: list[Group] = field(default_factory=list)
    wanted_by_group: dict[int, Wanted] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    has_or: bool = False


def _considered(groups: list[Group], config: dict) -> list[Group]:
    """Repeated SELECT groups, and any group holding a slow statement."""
    threshold = max(2, int(config.get("THRESHOLD", 2)))
    slow = float(config.get("SLOW_QUERY_MS", 50)) / 1000
    chosen = []
    for group in groups:
        record = group.records[0]
        if record.many or not is_select(record.sql):
            continue
        if group.count >= threshold or any(r.duration >= slow for r in group.records):
            chosen.append(group)
    return chosen


def _representative(group: Group) -> cap.Record:
    """The slowest statement that succeeded (its plan is the interesting one)."""
    ok = [r for r in group.records if r.error is None] or group.records
    return max(ok, key=lambda r: r.duration)


def _candidates(groups: list[Group], introspect: Introspection) -> list[_Candidate]:
    merged: dict[tuple, _Candidate] = {}
    for group in groups:
        vendor = vendor_of(group.alias)
        if vendor is None:
            continue
        record = _representative(group)
        shape = select_shape(record.sql, vendor)
        if shape is None:
            continue
        likes = like_uses(record.sql, vendor)
        for table in dict.fromkeys(shape.tables):
            model = model_for_table(table)
            if model is None:
                continue
            model = model._meta.concrete_model
            if model._meta.auto_created or not model._meta.managed:
                continue  # M2M through tables and unmanaged tables: no Meta.indexes to edit
            if not is_project_model(model):
                continue  # a third-party app's model: its migrations are not the project's to edit
            wanted = wanted_columns(shape, table, record.params, likes, vendor)
            if not wanted.equality and wanted.range is None and not (wanted.order and shape.limit):
                # Nothing an index can narrow. ORDER BY alone matters only with a LIMIT:
                # without one every row is read anyway.
                continue
            fk_columns = {f.column for f in model._meta.local_concrete_fields
                          if isinstance(f, ForeignKey) or f.one_to_one}
            declared = meta_indexes(model)
            if is_covered(wanted, declared, fk_columns):
                continue  # decided without touching the database
            live = introspect(group.alias, table)
            if is_covered(wanted, live, fk_columns):
                continue
            fields, not_fields = advised_fields(model, wanted)
            if not fields or not validated(model, fields) or only_booleans(model, fields):
                continue
            if already_exists(model, fields, declared + live):
                continue  # the advice, cut to MAX_FIELDS, names an index that exists
            key = (group.alias, model._meta.label, fields)
            candidate = merged.get(key)
            if candidate is None:
                candidate = merged[key] = _Candidate(group.alias, model, table, fields, wanted)
            candidate.groups.append(group)
            candidate.wanted_by_group[id(group)] = wanted
            candidate.has_or = candidate.has_or or wanted.has_or
            for column, why in wanted.skipped + not_fields:
                candidate.skipped.setdefault(column, why)
    return list(merged.values())


def _note(candidate: _Candidate, main: Group, introspection_error: str | None) -> str:
    model = candidate.model
    fields = candidate.fields
    where = describe(candidate.wanted_by_group.get(id(main), candidate.wanted))
    if len(fields) == 1:
        how = f"Add db_index=True to {model._meta.label}.{fields[0].lstrip('-')}"
    else:
        how = f"Add the index to {model.__name__}.Meta.indexes"
    note = (f"No index on {candidate.table} starts with the columns this query filters or sorts on "
            f"({where}). {how}, then run makemigrations and migrate. "
            "An index does not remove queries; it makes each one cheaper.")
    if candidate.skipped:
        note += " Left out: " + "; ".join(f"{c} ({why})" for c, why in candidate.skipped.items()) + "."
    if candidate.has_or:
        note += " Conditions joined by OR were left out."
    if introspection_error:
        note += f" The database's indexes could not be read ({introspection_error}); only the model's were checked."
    return note


def _finding(candidate: _Candidate, config: dict, context: Context, introspect: Introspection) -> Finding:
    groups = sorted(candidate.groups, key=lambda g: -g.duration)
    main = groups[0]
    record = _representative(main)
    model = candidate.model
    index = build_index(model, candidate.fields)
    show_params = context.show_params
    evidence = None
    if config.get("EXPLAIN", True):
        evidence = explain(candidate.alias, record.sql, record.params, candidate.table, show_params=show_params)
        if config.get("EXPLAIN_TRY_INDEX", False) and not evidence["error"] and evidence["plan"]:
            try:
                after, note = explain_with_index(candidate.alias, model, index, record.sql, record.params,
                                                 candidate.table, show_params=show_params)
                evidence["after"] = after
                if note:
                    evidence["note"] = note
            except Exception as exc:  # the "before" plan still stands: not an EXPLAIN error
                evidence["note"] = "Trying the index failed: " + _error_text(exc, show_params)
    site = definition_site(model._meta.get_field(candidate.fields[0].lstrip("-"))) \
        if len(candidate.fields) == 1 else None
    return Finding(
        kind="missing_index",
        model=model._meta.label,
        relation=None,
        lookup=None,
        method="index",
        count=sum(g.count for g in groups),
        avoidable=0,  # an index makes queries cheaper, it does not remove any
        duration_ms=round(sum(g.duration for g in groups) * 1000, 3),
        sql=context.sql(record),
        callsite=frame_dict(main.callsite),
        stack=[frame_dict(f) for f in main.stack[: context.max_frames]],
        origin=None,
        snippets=advice_snippets(model, candidate.fields, index),
        defined_at=frame_dict_from(site) if site else None,
        callsites=[frame_dict(g.callsite) for g in groups if g.callsite is not None],
        alias=candidate.alias,
        note=_note(candidate, main, introspect.errors.get((candidate.alias, candidate.table))),
        evidence=evidence,
    )


def index_findings(groups: list[Group], config: dict, context: Context) -> list[Finding]:
    """``missing_index`` findings for the repeated or slow SELECTs of one capture."""
    introspect = Introspection()
    findings = []
    minimum = int(config.get("INDEX_MIN_ROWS", 10))
    sizes: dict[tuple[str, str], int | None] = {}
    for candidate in _candidates(_considered(groups, config), introspect):
        key = (candidate.alias, candidate.table)
        if minimum and key not in sizes:
            sizes[key] = table_rows(candidate.alias, candidate.table, minimum)
        if minimum and sizes[key] is not None and sizes[key] < minimum:
            continue  # a table this small is one page: an index changes nothing
        finding = _finding(candidate, config, context, introspect)
        evidence = finding.evidence or {}
        column = _column(candidate.model, candidate.fields[0].lstrip("-")) if candidate.fields else None
        leading = {index.name: index.columns[0] for index in introspect(candidate.alias, candidate.table)
                   if index.name and index.columns}
        if evidence.get("uses_index") and column and column in plan_lookup_columns(
                evidence.get("plan") or [], leading):
            continue  # the plan already looks rows up through an index led by this column: no advice
        findings.append(finding)
    return findings


def plan_lookup_columns(lines: list[str], leading: dict[str, str]) -> set[str]:
    """Leading columns of the indexes a plan names (``Index Scan using NAME``, ``Bitmap Index
    Scan on NAME``, SQLite's ``USING INDEX NAME``), from the introspected ``name -> column``.

    An index the plan only scans in full, led by another column (which PostgreSQL may pick for
    a small table), does not answer for the advised one.
    """
    found: set[str] = set()
    for line in lines:
        for match in _INDEX_NAME.finditer(line):
            name = match.group(1).strip('"')
            if name in leading:
                found.add(leading[name])
    return found


_INDEX_NAME = re.compile(r"(?:Index (?:Only )?Scan using|Bitmap Index Scan on|USING (?:COVERING )?INDEX) (\S+)")


def table_rows(alias: str, table: str, bound: int) -> int | None:
    """Rows of ``table``, counted up to ``bound`` (so the count stays cheap on a large table), in
    the analysis's rolled-back sandbox; None when it cannot be read."""
    connection = connections[alias]
    try:
        with sandbox(alias) as cursor:
            cursor.execute(
                f"SELECT COUNT(*) FROM (SELECT 1 FROM {connection.ops.quote_name(table)} LIMIT {int(bound)}) AS ddtpp_rows")
            return int(cursor.fetchone()[0])
    except Exception:  # unknown: the advice stands
        return None


def is_project_model(model: type) -> bool:
    """Whether a model's module is the project's code (not an installed package's)."""
    module = sys.modules.get(model.__module__)
    filename = getattr(module, "__file__", None)
    return filename is not None and not is_library_file(filename)
