"""Read the shape of a SELECT with a real SQL parser (sqlglot): tables, filters, ordering.

Shared by ``relate`` (map SQL back to a relation) and the index advisor. Parses are
cached by the placeholder SQL; anything the parser cannot read yields ``None``, never
an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import sqlglot
from sqlglot import exp

DIALECTS = {"sqlite": "sqlite", "postgresql": "postgres", "mysql": "mysql", "oracle": "oracle"}
_PLACEHOLDER = re.compile(r"%s|%\([^)]*\)s")
MAX_PARSE_CHARS = 50_000


@dataclass(frozen=True)
class Condition:
    table: str | None  # real table name (aliases resolved)
    column: str
    op: str  # eq | in | range | isnull | like | function | other
    param: int | None = None  # index of the placeholder compared with, when known


@dataclass
class Shape:
    tables: list[str]
    conditions: list[Condition] = field(default_factory=list)
    order_by: list[tuple[str | None, str, bool]] = field(default_factory=list)  # table, column, desc
    has_or: bool = False
    aggregate: str | None = None  # count / exists / sum / avg / min / max over the rows
    aggregate_column: str | None = None
    limit: int | None = None


_AGGREGATES = ((exp.Count, "count"), (exp.Sum, "sum"), (exp.Avg, "avg"), (exp.Min, "min"), (exp.Max, "max"))


def vendor_of(alias: str) -> str | None:
    """The database vendor of a connection alias (``sqlite``, ``postgresql``...), if configured."""
    from django.db import connections

    return connections[alias].vendor if alias in connections else None


def is_select(sql: str) -> bool:
    """A read statement (``SELECT`` or ``WITH ... SELECT``), by its first keyword."""
    return sql.lstrip()[:6].upper().startswith(("SELECT", "WITH"))


def shape_on(sql: str, alias: str) -> Shape | None:
    """:func:`select_shape` in the dialect of the connection ``alias``."""
    return select_shape(sql, vendor_of(alias) or "sqlite")


def to_parseable(sql: str) -> str:
    """Django uses ``%s`` placeholders; sqlglot reads ``?`` in every dialect."""
    return _PLACEHOLDER.sub("?", sql)


@lru_cache(maxsize=4096)
def parse_select(sql: str, vendor: str = "sqlite") -> exp.Select | None:
    """The parsed SELECT (shared by the cached readers below; never mutate it), or None."""
    if len(sql) > MAX_PARSE_CHARS or not is_select(sql):
        return None
    try:
        tree = sqlglot.parse_one(to_parseable(sql), read=DIALECTS.get(vendor, None))
    except Exception:  # sqlglot raises several error types; any means "cannot read"
        return None
    return tree if isinstance(tree, exp.Select) else None


def _sources(tree: exp.Select) -> tuple[list[str], dict[str, str], bool]:
    """Tables of FROM/JOIN, alias -> table, and whether every source is a plain table."""
    aliases: dict[str, str] = {}
    tables: list[str] = []
    plain = True
    from_ = tree.args.get("from_") or tree.args.get("from")
    sources = [from_.this] if from_ is not None else []
    sources += [join.this for join in tree.args.get("joins") or []]
    for source in sources:
        if not isinstance(source, exp.Table):
            plain = False
            continue
        tables.append(source.name)
        aliases[source.alias_or_name] = source.name
        aliases[source.name] = source.name
    return tables, aliases, plain


@lru_cache(maxsize=4096)
def select_shape(sql: str, vendor: str = "sqlite") -> Shape | None:
    tree = parse_select(sql, vendor)
    if tree is None:
        return None
    tables, aliases, plain = _sources(tree)
    if not plain:
        return None  # subquery in FROM: not a shape we reason about
    shape = Shape(tables=tables)
    placeholders = {id(node): index for index, node in enumerate(tree.find_all(exp.Placeholder, bfs=False))}
    where = tree.args.get("where")
    if where is not None:
        for conjunct in _conjuncts(where.this):
            condition = _condition(conjunct, aliases, tables, placeholders)
            if condition == "or":
                shape.has_or = True
            elif condition is not None:
                shape.conditions.append(condition)
    order = tree.args.get("order")
    if order is not None:
        for ordered in order.expressions:
            column = ordered.this
            if isinstance(column, exp.Column):
                shape.order_by.append((_table(column, aliases, tables), column.name, bool(ordered.args.get("desc"))))
    projections = tree.expressions
    if len(projections) == 1:
        only = projections[0].unalias() if hasattr(projections[0], "unalias") else projections[0]
        if isinstance(only, (exp.Literal, exp.Placeholder)) and tree.args.get("limit") is not None:
            shape.aggregate = "exists"
        else:
            for node_type, name in _AGGREGATES:
                if isinstance(only, node_type):
                    shape.aggregate = name
                    column = only.find(exp.Column)
                    shape.aggregate_column = column.name if column is not None else None
                    break
    limit = tree.args.get("limit")
    if limit is not None and isinstance(limit.expression, exp.Literal):
        try:
            shape.limit = int(limit.expression.this)
        except (TypeError, ValueError):
            pass
    return shape


def _conjuncts(node: exp.Expression):
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        yield from _conjuncts(node.this)
        yield from _conjuncts(node.expression)
    else:
        yield node


def _table(column: exp.Column, aliases: dict[str, str], tables: list[str]) -> str | None:
    if column.table:
        return aliases.get(column.table, column.table)
    return tables[0] if len(tables) == 1 else None


def _condition(node: exp.Expression, aliases, tables, placeholders):
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Or):
        return "or"
    negated = False
    if isinstance(node, exp.Not):
        negated = True
        node = node.this
        while isinstance(node, exp.Paren):
            node = node.this
    if isinstance(node, exp.Escape):
        node = node.this
    left = node.this if hasattr(node, "this") else None
    right = node.args.get("expression")
    if isinstance(node, (exp.EQ, exp.GT, exp.GTE, exp.LT, exp.LTE)) and not isinstance(left, exp.Column):
        left, right = right, left  # "? = col" is the same filter
    if not isinstance(left, exp.Column):
        if isinstance(left, exp.Func) and list(left.find_all(exp.Column)):
            column = next(iter(left.find_all(exp.Column)))
            return Condition(_table(column, aliases, tables), column.name, "function")
        return None
    if isinstance(right, exp.Column):
        return None  # a join condition, not a filter
    table = _table(left, aliases, tables)
    param = placeholders.get(id(right)) if right is not None else None
    if isinstance(node, exp.Is):
        return Condition(table, left.name, "other" if negated else "isnull")
    if negated:
        return Condition(table, left.name, "other")
    if isinstance(node, exp.EQ):
        return Condition(table, left.name, "eq", param)
    if isinstance(node, exp.In):
        return Condition(table, left.name, "in")
    if isinstance(node, (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between)):
        return Condition(table, left.name, "range", param)
    if isinstance(node, (exp.Like, exp.ILike)):
        return Condition(table, left.name, "like", param)
    return Condition(table, left.name, "other")


# --------------------------------------------------------------------------- LIKE patterns
# Added for the index advisor; select_shape above is unchanged.


@dataclass(frozen=True)
class LikeUse:
    """A ``LIKE`` / ``ILIKE`` filter on a column and where its pattern comes from."""

    table: str | None
    column: str
    param: int | None  # position of the pattern in the statement's parameters, if a placeholder
    literal: str | None  # the pattern when written in the SQL itself
    wrapped: bool  # the column is inside a function or cast (UPPER(col), col::text)


@lru_cache(maxsize=4096)
def like_uses(sql: str, vendor: str = "sqlite") -> tuple[LikeUse, ...]:
    """Every LIKE of a SELECT's WHERE, with the pattern's parameter position.

    ``Condition.param`` of ``select_shape`` counts placeholders breadth-first, which is
    not the order of the parameters once conditions nest; here positions follow the
    text (a depth-first walk), and a pattern inside ``UPPER(%s)`` is found too. On
    PostgreSQL Django writes ``"col"::text LIKE %s``, which ``select_shape`` reports as a
    function condition; this tells the index advisor it is a LIKE and with which pattern.
    """
    tree = parse_select(sql, vendor)
    if tree is None or tree.args.get("where") is None:
        return ()
    placeholders = list(tree.find_all(exp.Placeholder, bfs=False))
    trusted = len(placeholders) == len(_PLACEHOLDER.findall(sql))  # else positions are guesses
    position = {id(node): index for index, node in enumerate(placeholders)}
    tables, aliases, _plain = _sources(tree)
    uses = []
    for node in tree.args["where"].find_all(exp.Like, exp.ILike):
        left, right = node.this, node.expression
        column = left if isinstance(left, exp.Column) else left.find(exp.Column)
        if column is None:
            continue
        placeholder = right if isinstance(right, exp.Placeholder) else right.find(exp.Placeholder)
        literal = right if isinstance(right, exp.Literal) and right.is_string else None
        uses.append(LikeUse(
            _table(column, aliases, tables),
            column.name,
            position.get(id(placeholder)) if placeholder is not None and trusted else None,
            literal.this if literal is not None else None,
            not isinstance(left, exp.Column),
        ))
    return tuple(uses)
