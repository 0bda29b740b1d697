"""Stage 2, group: fingerprint statements, resolve call-site stacks, group repeats.

Pure functions over captured records. Expensive work (file names, source lines,
tokenising SQL) happens once per distinct stack and once per distinct SQL text.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable

from .capture import Bucket, Record, params_hash
from .frames import Frame, StackResolver, callsite_of, is_library_code, is_orm_code

# --------------------------------------------------------------------------- fingerprint

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<ident>"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\])
  | (?P<placeholder>%s|%\([^)]*\)s|\?|\$\d+|:[A-Za-z_]\w*)
  | (?P<number>(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<word>[A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)*)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
# "IN (?, ?, ?)" and multi-row "VALUES (?, ?), (?, ?)" of any length collapse to one form.
_IN_LIST = re.compile(r"\bIN \( \?(?: , \?)* \)")
_VALUES_ROWS = re.compile(r"(\( \?(?: , \?)* \))(?: , \1)*")


@lru_cache(maxsize=8192)
def fingerprint(sql: str) -> str:
    """Normalise a statement so repeats with other values compare equal.

    Literals and placeholders become ``?``, ``IN (...)`` lists of any length collapse,
    whitespace and keyword case are normalised; table and column names are kept, so
    statements on different tables never share a fingerprint.
    """
    parts: list[str] = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        text = match.group()
        if kind == "ws":
            continue
        if kind in ("string", "placeholder", "number"):
            parts.append("?")
        elif kind == "word":
            parts.append(text.upper() if text.upper() in _KEYWORDS else text)
        else:
            parts.append(text)
    text = " ".join(parts)
    text = _IN_LIST.sub("IN (...)", text)
    return _VALUES_ROWS.sub(r"\1 ...", text) if "VALUES" in text else text


@lru_cache(maxsize=8192)
def statement_shape(sql: str) -> str:
    """A short, stable id of a statement's :func:`fingerprint` (query budgets record these per
    test or page, compactly, and compare them across runs and machines)."""
    return hashlib.sha256(fingerprint(sql).encode("utf-8", "surrogatepass")).hexdigest()[:12]


_CONTROL = re.compile(r"\s*(SAVEPOINT|RELEASE|ROLLBACK|BEGIN|COMMIT|START TRANSACTION|SET )", re.IGNORECASE)


def is_transaction_control(sql: str) -> bool:
    """Savepoints and friends: ``atomic()`` in a loop repeats them, but they are not N+1s."""
    return bool(_CONTROL.match(sql))


_WRITE = re.compile(
    r"""\s*(?:(?P<insert>INSERT)\s+(?:OR\s+\w+\s+)?INTO|(?P<update>UPDATE)|(?P<delete>DELETE)\s+FROM)\s+
    (?P<table>"(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|[\w.]+)""",
    re.IGNORECASE | re.VERBOSE,
)


def write_of(sql: str) -> tuple[str, str] | None:
    """``("UPDATE", "shop_order")`` for a write statement, else None."""
    match = _WRITE.match(sql)
    if match is None:
        return None
    verb = next(name for name in ("insert", "update", "delete") if match.group(name))
    return verb.upper(), match.group("table").strip('"`[]')


def redact_sql(sql: str) -> str:
    """The statement with string and number literals replaced by ``?``."""

    def replace(match: re.Match) -> str:
        return "?" if match.lastgroup in ("string", "number") else match.group()

    return _TOKEN.sub(replace, sql)


_KEYWORDS = frozenset(
    """SELECT FROM WHERE AND OR NOT IN IS NULL LIKE ILIKE BETWEEN EXISTS AS ON JOIN INNER LEFT
    RIGHT OUTER FULL CROSS GROUP BY ORDER HAVING LIMIT OFFSET ASC DESC DISTINCT INSERT INTO
    VALUES UPDATE SET DELETE UNION ALL CASE WHEN THEN ELSE END CAST COUNT SUM AVG MIN MAX
    ESCAPE RETURNING WITH FOR NOWAIT SKIP LOCKED OF TRUE FALSE COLLATE""".split()
)

# --------------------------------------------------------------------------- groups


@dataclass
class Group:
    """Buckets with the same alias, fingerprint and tidied call-site stack."""

    alias: str
    fingerprint: str
    stack: tuple[Frame, ...]
    buckets: list[Bucket] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(b.count for b in self.buckets)

    @property
    def duration(self) -> float:
        return sum(b.duration for b in self.buckets)

    @property
    def records(self) -> list[Record]:
        """Sample statements (bounded), the slowest of each bucket included."""
        return [r for b in self.buckets for r in b.records]

    @property
    def hops(self) -> list:
        return [h for b in self.buckets for h in b.hops]

    @property
    def calls(self) -> set:
        return set().union(*(b.calls for b in self.buckets))

    @property
    def first_seq(self) -> int:
        return min(b.first_seq for b in self.buckets)

    @property
    def prefetch_only(self) -> bool:
        return all(b.prefetch is not None for b in self.buckets)

    @property
    def per_instance_prefetch(self) -> tuple | None:
        """The prefetch key ``(id(root), path)`` when every statement came from
        ``prefetch_related_objects([instance], ...)`` called per instance of one root queryset."""
        keys = {b.prefetch for b in self.buckets}
        if len(keys) != 1 or any(b.per_instance != b.count for b in self.buckets):
            return None
        key = keys.pop()
        return key if key is not None and key[0] is not None else None

    @property
    def callsite(self) -> Frame | None:
        return callsite_of(self.stack)

    def identical(self) -> int:
        """Statements that repeated an earlier one of the group exactly (same SQL text and
        parameters): an N+1 over rows that share a parent reads that parent again and again."""
        counts: dict[tuple, int] = {}
        for bucket in self.buckets:
            for key, count in bucket.params.items():
                counts[(bucket.sql, key)] = counts.get((bucket.sql, key), 0) + count
        return sum(count - 1 for count in counts.values() if count > 1)

    def is_sequence(self) -> bool:
        """Each statement ran once, each down its own code path: a fixed series of calls that
        happen to issue the same SQL (a test client's session, then ``login()``'s key cycling;
        ``get_or_create``'s second SELECT), not a loop over rows. A loop runs its body's lines
        again, so its repeats share a code path (template nodes, forms and serializer fields
        it passes through aside: a formset renders one form object per row)."""
        if len(self.buckets) < 2 or any(b.count > 1 for b in self.buckets):
            return False
        paths = {code_path(b.stack) for b in self.buckets}
        return len(paths) == len(self.buckets)

    def distinct_params(self) -> int:
        """Distinct (SQL text, parameters) pairs: values inlined in the SQL count too."""
        keys = {(b.sql, key) for b in self.buckets for key in b.params}
        return len(keys) + sum(b.params_overflow for b in self.buckets)


def code_path(raw: tuple) -> tuple:
    """A raw stack's code objects and lines, without the payloads some frames carry."""
    return tuple((entry[0], entry[1]) for entry in raw if isinstance(entry, tuple) and len(entry) >= 2)


def group_buckets(buckets: Iterable[Bucket], resolve: StackResolver) -> list[Group]:
    """Group by (alias, fingerprint, tidied call-site stack, relation hop), in first-seen order.

    The hop (descriptor and path) keeps apart accesses that share SQL and line but follow
    different paths: ``x.parent.parent`` reads ``parent`` at two depths, ``c.a.x`` and ``c.z.x``
    two descriptors to one model.
    """
    groups: dict[tuple, Group] = {}
    sites: dict[int, tuple | None] = {}
    for bucket in buckets:
        stack = resolve(bucket.stack)
        site = sites.get(id(bucket.stack), ())
        if site == ():
            site = sites[id(bucket.stack)] = library_site(bucket.stack)
        key = (bucket.alias, fingerprint(bucket.sql), stack, bucket.hop_key, site)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(bucket.alias, key[1], stack)
        group.buckets.append(bucket)
    return list(groups.values())


def library_site(raw: tuple) -> tuple | None:
    """(file, line) of the innermost frame outside the ORM when it is library code: two library
    lines that issue the same SQL for the same project frames are two call sites, not one
    (the tidied stack drops library frames)."""
    for entry in raw:
        code = entry[0]
        if not hasattr(code, "co_filename") or is_orm_code(code):
            continue
        return (code.co_filename, entry[1]) if is_library_code(code) else None
    return None


@dataclass
class Duplicate:
    """The same SQL with the same parameters, run more than once (possibly from several places)."""

    alias: str
    sql: str
    count: int
    duration: float
    buckets: list[Bucket]
    sample: Record
    key: int = 0  # the parameters' hash (Bucket.params key)

    def count_in(self, buckets: list[Bucket]) -> int:
        """How many of these identical statements ran in ``buckets``."""
        return sum(b.params.get(self.key, 0) for b in buckets)


def exact_duplicates(buckets: Iterable[Bucket]) -> list[Duplicate]:
    by_text: dict[tuple, list[Bucket]] = {}
    for bucket in buckets:
        by_text.setdefault((bucket.alias, bucket.sql), []).append(bucket)
    seen: dict[tuple, list] = {}
    for (alias, sql), owners in by_text.items():
        alone = len(owners) == 1
        for bucket in owners:
            for key, count in bucket.params.items():
                if alone and count == 1:
                    continue  # a statement text in one bucket repeats only parameters it counted twice
                entry = seen.get((alias, sql, key))
                if entry is None:
                    entry = seen[(alias, sql, key)] = [0, 0.0, []]
                entry[0] += count
                entry[1] += bucket.duration * count / bucket.count
                entry[2].append(bucket)
    duplicates = []
    for (alias, sql, key), (count, duration, owners) in seen.items():
        if count > 1:
            sample = next((r for b in owners for r in b.samples if params_hash(r.params) == key), owners[0].samples[0])
            duplicates.append(Duplicate(alias, sql, count, duration, owners, sample, key))
    return duplicates


def most_common(values: Iterable[Any]) -> Any:
    counted = Counter(values)
    return counted.most_common(1)[0][0] if counted else None
