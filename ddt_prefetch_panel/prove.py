"""Stage 5, prove: replay each fix on the request's own data before it is shown.

A fix is proven by running it, not by reading the models. For one root queryset (the one
the loop iterated) replay does, on the same database alias:

1. rebuild the queryset from the references capture kept (its ``Query``, class, hints;
   never its rows), with the user's slice re-applied after the fix, as in the rewritten line;
2. evaluate it with capture suspended, inside a savepoint that is always rolled back;
3. walk the access path the loop really took over the loaded rows (``order.pizzas.all()``,
   ``.filter(...)``, ``[:2]``, ``.count()``, the attribute read), recording what it read;
4. count the statements.

It runs once without the fix (the baseline) and with the fix at two row counts. A root
rebased on a child model (relate.find_refetches) has its baseline on the looped root it
replaces, whose rows the walk re-fetches one by one as the loop did. A fix is
``verified`` when its count does not grow with the rows, is below the baseline, and the walk
read the same related objects; ``failed`` when it raises or still repeats; ``skipped`` when
it cannot be replayed (locking query, broken transaction, budget spent, proofs off).

The fix is evaluated from the very text shown to the user (``snippets["fix"]``), in a
namespace of the project's models and ``django.db.models``: what is proven is what is pasted.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from django.apps import apps
from django.core.exceptions import ObjectDoesNotExist
from django.db import connections, transaction

from . import capture as cap
from .capture import Call, Root
from .relate import HopInfo

PROOF_ERRORS = (Exception,)  # anything a pasted line could raise makes the fix "failed"


@dataclass
class Limits:
    enabled: bool = True
    max_rows: int = 10
    budget_s: float = 0.3
    # The proofs run when the panel is opened, after the request (PROOF_MODE="lazy"): the data
    # may have changed since, and each proof says when it was made.
    opened: bool = False

    @classmethod
    def from_config(cls, config: dict) -> Limits:
        return cls(
            enabled=bool(config.get("PROOFS", True)) and config.get("PROOF_MODE") != "off",
            max_rows=max(2, int(config.get("PROOF_MAX_ROWS", 10))),
            budget_s=max(0.0, float(config.get("PROOF_BUDGET_MS", 300))) / 1000,
            opened=bool(config.get(OPENED)),
        )


# Set by the panel in the configuration of an analysis made when the panel is opened.
OPENED = "_PROOFS_WHEN_OPENED"


@dataclass
class Budget:
    """Time left for replays in one analysis (one request)."""

    seconds: float
    spent: float = 0.0
    # Unfixed replays by (root, access paths, rows): every candidate of a root compares with
    # the same baseline, so it is replayed once per analysis.
    baselines: dict = field(default_factory=dict)
    # Statements the unfixed root ran to load its rows (itself and its own prefetch_related
    # lookups), by root: the page ran them already, so a fix's page count does not add them twice.
    loading: dict = field(default_factory=dict)

    def baseline(self, root: Root, paths: list[list[Step]], names: dict[str, Any], rows: int) -> tuple[int, list, int]:
        counted: dict = {}
        try:
            key = (id(root), tuple(tuple(path) for path in paths), rows)
            hash(key)
        except TypeError:  # a filter value that cannot be hashed: no caching
            key = None
        if key is None or key not in self.baselines:
            result = run(root, None, paths, names, rows, counted)
            if key is None:
                return result
            self.baselines[key] = result
        if "loading" in counted:
            self.loading.setdefault(id(root), counted["loading"])
        return self.baselines[key]

    def exhausted(self) -> bool:
        return self.spent >= self.seconds

    @contextmanager
    def timed(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.spent += time.perf_counter() - start


@dataclass(frozen=True)
class Step:
    """One hop of the access path as the loop took it."""

    accessor: str
    many: bool
    call: Call | None = None  # filters / ordering / slice the loop added (last hop)
    aggregate: str | None = None  # count / exists / sum ... per row (last hop)
    to_attr: str | None = None  # read a Prefetch(to_attr=...) list instead of the manager
    # Load the row again as this model by its key, as the loop did (``page.specific``); a row
    # that already is one is read as itself (the loop over the rebased root reads it so). With
    # ``key``, load the object whose primary key is that attribute's value (``post.author_id``).
    refetch: type | None = None
    key: str | None = None


def refetch_step(model: type, key: str | None = None) -> Step:
    return Step(model.__name__, many=False, refetch=model, key=key)


def steps_for(hops: list[HopInfo], call: Call | None = None, aggregate: str | None = None,
              to_attr: str | None = None) -> list[Step]:
    steps = [Step(h.accessor, not h.single and h.kind != "generic_fk" and h.kind != "deferred") for h in hops]
    if steps:
        last = steps[-1]
        steps[-1] = Step(last.accessor, last.many, call, aggregate if last.many else None, to_attr)
    return steps


# --------------------------------------------------------------------------- the namespace


def namespace(*models: type | None) -> dict[str, Any]:
    """Names a snippet may use: ``django.db.models`` helpers and the project's model classes."""
    import datetime
    from decimal import Decimal

    from django.db import models as django_models

    names: dict[str, Any] = {
        name: getattr(django_models, name)
        for name in ("Avg", "Count", "Exists", "F", "GenericPrefetch", "Max", "Min", "OuterRef", "Prefetch",
                     "Q", "Subquery", "Sum", "Value")
        if hasattr(django_models, name)
    }
    if "GenericPrefetch" not in names:
        try:
            from django.contrib.contenttypes.prefetch import GenericPrefetch

            names["GenericPrefetch"] = GenericPrefetch
        except Exception:  # contenttypes not installed
            pass
    for model in apps.get_models(include_auto_created=False):
        names.setdefault(model.__name__, model)
    for model in models:  # the models of this fix win over same-named ones elsewhere
        if model is not None:
            names[model.__name__] = model
    names.update(Decimal=Decimal, datetime=datetime)
    return names


def imports_for(fix: str, names: dict[str, Any]) -> list[str]:
    """The import lines a pasted fix needs: helpers, literals' types and the models it names."""
    import ast

    try:
        tree = ast.parse("qs" + fix, mode="eval")
    except SyntaxError:
        return []
    by_module: dict[str, set[str]] = {}
    plain: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Name) or node.id == "qs" or node.id not in names:
            continue
        value = names[node.id]
        if node.id == "datetime":
            plain.add("import datetime")
            continue
        if not (isinstance(value, type) or callable(value)):
            continue  # a bound value (the loop's filter variable), not something to import
        module = getattr(value, "__module__", None)
        if module is None or module == "builtins":
            continue
        if module.startswith("django.db.models"):
            module = "django.db.models"  # Count, Prefetch... are exported there
        by_module.setdefault(module, set()).add(node.id)
    lines = [f"from {module} import {', '.join(sorted(found))}" for module, found in sorted(by_module.items())]
    return sorted(plain) + lines


def apply_fix(queryset: Any, fix: str, names: dict[str, Any]) -> Any:
    """``queryset`` + the fix text (``.prefetch_related("pizzas")``), evaluated."""
    return eval("qs" + fix, {"__builtins__": {}}, {**names, "qs": queryset})  # noqa: S307 (our own snippet)


# --------------------------------------------------------------------------- replay


def why_not_replayable(root: Root | None) -> str | None:
    if root is not None and root.base is not None:
        return why_not_replayable(root.base)
    if root is None:
        return "the loop's queryset was not seen being evaluated (loaded by other code)"
    if (root.query is None or root.queryset_class is None) and root.via is not None:
        return ("the loop's queryset was loaded once per row of an outer loop, where a fix belongs "
                "(only the outer queryset is kept for replay)")
    if root.query is None or root.queryset_class is None:
        return "the loop's queryset was not kept for replay"
    if getattr(root.query, "select_for_update", False):
        return "the queryset locks rows (select_for_update), so it is never replayed"
    if getattr(root.query, "combinator", None):
        return "the queryset is a union/intersection/difference, which cannot take the fix"
    alias = _alias(root)
    connection = connections[alias]
    if connection.in_atomic_block and connection.needs_rollback:
        return "the request's transaction is broken (needs rollback), so nothing may run on it"
    return None


def _alias(root: Root) -> str:
    if root.record is not None:
        return root.record.alias
    return "default"


def rebuild(root: Root, fix: str | None, names: dict[str, Any], rows: int) -> Any:
    """The request's own root queryset, with the fix applied before its slice, capped at ``rows``."""
    query = root.query.chain()
    low, high = query.low_mark, query.high_mark
    query.clear_limits()
    queryset = root.queryset_class(model=root.model, query=query, using=_alias(root), hints=dict(root.hints or {}))
    queryset._prefetch_related_lookups = tuple(root.prefetch_lookups)
    if fix:
        queryset = apply_fix(queryset, fix, names)
    if not queryset.ordered:
        # The replay loads the first rows: without an order they could be other rows once the
        # fix adds a join or a GROUP BY, so both runs take them in primary key order.
        queryset = queryset.order_by("pk")
    queryset.query.set_limits(low, high)
    return queryset[:rows]


@contextmanager
def isolated(alias: str) -> Iterator[list[str]]:
    """Count statements on ``alias``; capture off; savepoint rolled back; query log untouched."""
    connection = connections[alias]
    statements: list[str] = []

    def count(execute: Callable, sql: str, params: Any, many: bool, context: dict) -> Any:
        statements.append(sql)
        return execute(sql, params, many, context)

    log = list(connection.queries_log)
    current = cap._current.set(None)  # the ORM hooks and the cursor wrapper see no capture
    suspended = cap.suspended.set(True)
    # The toolbar's SQL panel records through its own cursor wrapper while its instrumentation
    # is on (a detect() block inside a request): replays are not the page's statements.
    toolbar_logger = connection.__dict__.get("_djdt_logger")
    if toolbar_logger is not None:
        connection._djdt_logger = None
    try:
        with transaction.atomic(using=alias):
            try:
                with connection.execute_wrapper(count):
                    yield statements
            finally:
                transaction.set_rollback(True, using=alias)
    finally:
        if toolbar_logger is not None:
            connection._djdt_logger = toolbar_logger
        cap.suspended.reset(suspended)
        cap._current.reset(current)
        connection.queries_log.clear()
        connection.queries_log.extend(log)


def _read(obj: Any, step: Step, loaded: dict) -> Any:
    if step.refetch is not None:
        if step.key is None and isinstance(obj, step.refetch):
            return obj
        value = getattr(obj, step.key) if step.key else obj.pk
        # Once per row, as the loop did, however many paths go through the re-fetched row.
        cached = (id(obj), step.refetch)
        if cached not in loaded:
            try:
                loaded[cached] = None if value is None else (
                    step.refetch._default_manager.db_manager(obj._state.db).get(pk=value))
            except ObjectDoesNotExist:
                loaded[cached] = None
        return loaded[cached]
    if step.to_attr:
        return list(getattr(obj, step.to_attr))
    try:
        value = getattr(obj, step.accessor)
    except (ObjectDoesNotExist, AttributeError):
        # No related row, or a generic FK target of another type without this relation:
        # the loop cannot have followed it from this object either.
        return None
    if not step.many:
        return value
    queryset = value.all()
    call = step.call
    if call is not None:
        if call.filters:
            queryset = queryset.filter(**{k: v for k, _source, v in call.filters})
        for key, _source, value_ in call.excludes:
            queryset = queryset.exclude(**{key: value_})
        if call.order_by:
            queryset = queryset.order_by(*call.order_by)
        if call.low or call.high is not None:
            queryset = queryset[call.low:call.high]
    if step.aggregate == "count":
        return queryset.count()
    if step.aggregate == "exists":
        return queryset.exists()
    return list(queryset)


def _signature(value: Any) -> Any:
    """What a read gave, comparable across runs: instances by pk, lists as multisets (a
    prefetched list and the loop's own query may come back in different orders)."""
    if isinstance(value, list):
        return tuple(sorted((_signature(v) for v in value), key=repr))
    return getattr(value, "pk", value) if hasattr(value, "_meta") else value


def walk(rows: list[Any], paths: list[list[Step]]) -> list[Any]:
    """Follow every path from every row, the way the loop did; what was read, as keys."""
    read: list[Any] = []
    loaded: dict = {}  # rows re-fetched by key (Step.refetch)
    for path in paths:
        for row in rows:
            level = [row]
            for depth, step in enumerate(path):
                following: list[Any] = []
                for obj in level:
                    if obj is None:
                        continue
                    value = _read(obj, step, loaded)
                    # Keyed by the row and the depth, not the attribute name: a to_attr list or an
                    # annotation read instead of the manager must give the same objects/values.
                    read.append((depth, getattr(obj, "pk", None), _signature(value)))
                    if isinstance(value, list):
                        following.extend(value)
                    elif hasattr(value, "_meta"):
                        following.append(value)
                level = following
    # Rows of an unordered queryset may come back in another order once the fix adds a
    # GROUP BY or a join: what was read is compared as a multiset.
    return sorted(read, key=repr)


def run(root: Root, fix: str | None, paths: list[list[Step]], names: dict[str, Any], rows: int,
        counted: dict | None = None) -> tuple[int, list, int]:
    """(statements, what the walk read, rows loaded) of one replay; ``counted["loading"]``:
    the statements that loaded the rows, before the walk."""
    with isolated(_alias(root)) as statements:
        loaded = list(rebuild(root, fix, names, rows))
        if counted is not None:
            counted["loading"] = len(statements)
        read = walk(loaded, paths)
    return len(statements), read, len(loaded)


def prove(root: Root | None, fix: str | None, paths: list[list[Step]], limits: Limits, budget: Budget,
          names: dict[str, Any], baseline_paths: list[list[Step]] | None = None, generic: bool = False) -> dict:
    """``{"status", "before", "after", "rows", "detail"}`` for ``fix`` on ``root``'s own data.

    ``baseline_paths`` is how the loop reads without the fix when the fix changes the access
    (a ``Prefetch(to_attr=...)`` read back as a list); by default the same ``paths``. With
    ``generic`` (a path through a generic FK) the fixed count may still grow by one per new
    content type the larger replay meets; otherwise any growth means a read still repeats.
    """
    proof: dict[str, Any] = {"status": "skipped", "before": None, "after": None, "rows": 0, "detail": "",
                             "when": "opened" if limits.opened else "request"}
    if not limits.enabled:
        proof["detail"] = "Proofs are turned off (PROOFS=False)."
        return proof
    if not fix or not fix.startswith("."):
        proof["detail"] = "This advice is not a queryset call, so it cannot be replayed."
        return proof
    reason = why_not_replayable(root)
    if reason:
        proof["detail"] = f"Not replayed: {reason}."
        return proof
    if budget.exhausted():
        proof["detail"] = f"Not replayed: the replay budget of {limits.budget_s * 1000:.0f} ms for this request is spent."
        return proof
    base = root.base or root  # the unfixed loop ran on the looped root, not on a rebased one
    large = min(max(root.rows, 1), limits.max_rows)
    small = min(large, max(2, large // 2))  # one row cannot show an N+1 (1 + 1 either way)
    # The unfixed replay (the costly one: it is the N+1) runs at the smaller count only; the
    # fix runs at both, and its growth is compared with the unfixed growth only if it grows.
    with budget.timed():
        try:
            before, read_before, loaded = budget.baseline(base, baseline_paths or paths, names, small)
        except PROOF_ERRORS as exc:
            proof["detail"] = f"Not replayed: the original queryset could not be re-run ({type(exc).__name__}: {exc})."
            return proof
        proof.update(before=before, rows=loaded)
        if id(base) in budget.loading:
            proof["loading"] = budget.loading[id(base)]
        try:
            after, read_after, loaded_after = run(root, fix, paths, names, small)
            after_large, _, loaded_large = run(root, fix, paths, names, large) if large > loaded else (after, None, loaded)
        except PROOF_ERRORS as exc:
            proof.update(status="failed", detail=f"{fix} raised {type(exc).__name__}: {short_error(exc)}")
            return proof
    proof["after"] = after
    dropped = dropped_rows(root, names, large, budget) if root.base is not None else None
    changed = _data_changed(base, large, names, budget) if limits.opened else None
    if dropped:
        proof.update(status="failed", detail=dropped)
    elif read_after != read_before:
        proof.update(status="failed", detail="With the fix the loop read different related objects.")
    elif after >= before:
        proof.update(status="failed", detail=f"The fix did not remove the repeated queries ({before} -> {after}).")
    elif after_large != after and (not generic or still_repeats(
            before, _baseline_at(base, baseline_paths or paths, names, large, budget), after, after_large)):
        proof.update(status="failed", detail=(
            f"The count still grows with the rows ({after} at {loaded} rows, {after_large} at {loaded_large}): "
            "the loop reads something this fix does not load."))
    else:
        constant = f", and {after_large} at {loaded_large} rows" if loaded_large > loaded else ""
        proof.update(status="verified", detail=(
            f"Replayed on {loaded} rows of this request: {before} -> {after} queries{constant}; "
            "same related objects read."))
    if changed:
        proof["detail"] = f"{changed} {proof['detail']}"
    return proof


def dropped_rows(root: Root, names: dict[str, Any], rows: int, budget: Budget) -> str | None:
    """Why a root rebased on a child model is not the loop's rows: some of the looped root's rows
    (the first ``rows``, in its order) are not rows of the child model."""
    with budget.timed(), isolated(_alias(root)):
        looped = list(rebuild(root.base, None, names, rows).values_list("pk", flat=True))
        child = list(rebuild(root, None, names, rows).values_list("pk", flat=True))
    if looped == child:
        return None
    kept = len(set(child) & set(looped))
    parent, model = root.base.model.__name__, root.model.__name__
    return (f"Only {kept} of the first {len(looped)} {parent} rows are {model} rows: a {model} query would drop "
            f"the others from the page (or change their order).")


def _data_changed(root: Root, rows: int, names: dict[str, Any], budget: Budget) -> str | None:
    """For a proof made after the request: whether the root still returns the rows it returned
    then (up to the replayed count), said in the proof; the replay runs on today's rows."""
    expected = min(root.rows, rows + 1)
    try:
        with budget.timed(), isolated(_alias(root)):
            now = len(list(rebuild(root, None, names, rows + 1)))
    except PROOF_ERRORS:
        return None
    if now == expected:
        return None
    return (f"The data changed since the request ({root.rows} rows then, {now if now <= rows else f'more than {rows}'} "
            "now): replayed on today's rows.")


def _baseline_at(root: Root, paths: list[list[Step]], names: dict[str, Any], rows: int, budget: Budget) -> int:
    """The unfixed count at ``rows``: only needed when the fixed count grows at all."""
    with budget.timed():
        return budget.baseline(root, paths, names, rows)[0]


def still_repeats(before_small: int, before: int, after_small: int, after: int) -> bool:
    """Whether the fixed count still grows with the rows like an N+1 does.

    The N+1 adds queries per row; a fix may still add one per new *kind* of row (a generic
    key meeting another content type), which is bounded. So the fixed growth must be less
    than half the unfixed growth between the two row counts, and zero when nothing new
    appears (then the two are equal).
    """
    grew = after - after_small
    baseline_grew = before - before_small
    return grew > 0 and grew * 2 >= baseline_grew


def short_error(exc: Exception) -> str:
    """The first line of an exception's message, at most 200 characters."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if len(text) <= 200 else text[:197] + "..."
