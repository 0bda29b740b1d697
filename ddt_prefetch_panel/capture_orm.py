"""Stage 1, capture: ORM hooks that say which relation access issued each query.

Installed once from ``AppConfig.ready``. Every hook first checks whether a capture is
active in the current context and, if not, calls straight through to Django, so outside
a capture the ORM behaves exactly as without this package.

What the hooks record:

* ``SQLCompiler.execute_sql`` exposes the ``Query`` being executed to the cursor wrapper;
* ``BaseManager.get_queryset`` stamps the new query with the stack that built it
  (the *origin*, where a fix such as ``prefetch_related`` belongs);
* ``ModelIterable`` tags each loaded instance with its :class:`~.capture.Source`
  (which root queryset, and which relation path after it);
* relation descriptors (forward FK/O2O, reverse O2O, reverse FK, M2M, generic
  relations, deferred fields) mark the statements they issue with a :class:`~.capture.Hop`;
* ``prefetch_one_level`` marks the prefetch statements and the instances they load.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.fields import GenericForeignKey
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import query as query_module
from django.db.models.fields import related_descriptors as rd
from django.db.models.expressions import Col
from django.db.models.lookups import Lookup
from django.db.models.manager import BaseManager
from django.db.models.query import ModelIterable
from django.db.models.query_utils import DeferredAttribute
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.where import WhereNode

from . import capture as cap
from .capture import Hop, Root, Source

_installed = False

try:  # Django 6 moved the accessor of a GenericForeignKey to a descriptor class of its own.
    from django.contrib.contenttypes.fields import GenericForeignKeyDescriptor as _GFKDescriptor
except ImportError:  # Django 5.2: the field is its own descriptor
    _GFKDescriptor = GenericForeignKey
GENERIC_FK_TYPES = (GenericForeignKey, _GFKDescriptor)


def generic_fk_field(descriptor: Any) -> GenericForeignKey:
    return descriptor if isinstance(descriptor, GenericForeignKey) else descriptor.field


class Tag:
    """Capture data attached to a ``Query``; survives ``Query.clone()``, pickles to ``None``."""

    __slots__ = ("origin", "hop", "base")

    def __init__(self, origin: tuple | None = None, hop: Hop | None = None, base: tuple | None = None) -> None:
        self.origin = origin
        self.hop = hop
        # (where children, ordering, low mark, high mark) of a related manager's queryset
        # as the relation built it; anything beyond is what the loop added.
        self.base = base

    def __reduce__(self) -> tuple:
        return (cap._none, ())

    def call(self, query: Any) -> Call | None:
        """What the loop did to the related manager beyond ``.all()``, or None."""
        base = self.base
        if base is None:
            return None
        where = query.where.children
        if len(where) == base[0] and query.order_by == base[1] and (query.low_mark, query.high_mark) == base[2:]:
            return None
        return describe_call(query, base)


@dataclass(frozen=True)
class Call:
    """Filters, exclusions, ordering and slicing added to a related manager, as Python source."""

    # (keyword, Python source of the value, the value itself)
    filters: tuple[tuple[str, str, Any], ...] = ()
    excludes: tuple[tuple[str, str, Any], ...] = ()
    order_by: tuple[str, ...] = ()
    low: int = 0
    high: int | None = None
    unreadable: str | None = None


_LITERALS = (bool, int, float, str, Decimal, type(None), datetime.date, datetime.time, datetime.timedelta)


def _literal(value: Any) -> str | None:
    if isinstance(value, Decimal):
        return f'Decimal("{value}")'
    if isinstance(value, _LITERALS):
        return repr(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, _LITERALS) for v in value):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return None


def _kwarg(node: Any, base_table: str) -> tuple[str, str, Any] | str:
    """``("vegetarian", "True", True)`` for a simple lookup, or why it cannot be rebuilt."""
    if not isinstance(node, Lookup) or not isinstance(node.lhs, Col):
        return "a Q object, expression or subquery"
    if node.lhs.alias != base_table:
        return "a lookup through another relation"
    value = _literal(node.rhs)
    if value is None:
        return "a value that is not a plain literal"
    name = node.lhs.target.attname if node.lhs.target.is_relation else node.lhs.target.name
    key = name if node.lookup_name == "exact" else f"{name}__{node.lookup_name}"
    rhs = tuple(node.rhs) if isinstance(node.rhs, list) else node.rhs  # hashable: Calls are compared
    return key, value, rhs


def describe_call(query: Any, base: tuple) -> Call:
    base_table = query.base_table
    filters: list[tuple[str, str, Any]] = []
    excludes: list[tuple[str, str, Any]] = []
    problems: list[str] = []
    for node in query.where.children[base[0]:]:
        target = filters
        if isinstance(node, WhereNode):
            inner = node.children
            if node.negated and len(inner) == 1:
                node, target = inner[0], excludes
            elif node.negated and len(inner) == 2 and isinstance(inner[1], Lookup) and inner[1].lookup_name == "isnull":
                node, target = inner[0], excludes  # exclude() on a nullable column adds IS NOT NULL
        described = _kwarg(node, base_table)
        if isinstance(described, str):
            problems.append(described)
        else:
            target.append(described)
    order_by: list[str] = []
    if query.order_by != base[1]:
        for item in query.order_by:
            if isinstance(item, str):
                order_by.append(item)
            else:
                problems.append("an ordering expression")
    return Call(
        tuple(filters), tuple(excludes), tuple(order_by), query.low_mark, query.high_mark,
        "; ".join(sorted(set(problems))) or None,
    )


def query_tag(query: Any) -> Tag | None:
    return getattr(query, "_ddtpp", None)


def instance_source(instance: Any) -> Source | None:
    return getattr(instance._state, "_ddtpp_src", None)


_accessors: dict[Any, str] = {}


def accessor_name(descriptor: Any) -> str:
    """The attribute name a user writes for the relation a descriptor manages."""
    try:
        return _accessors[descriptor]
    except KeyError:
        pass
    if isinstance(descriptor, GENERIC_FK_TYPES):
        name = generic_fk_field(descriptor).name
    elif isinstance(descriptor, DeferredAttribute):
        name = descriptor.field.attname
    elif isinstance(descriptor, rd.ReverseOneToOneDescriptor):
        name = descriptor.related.get_accessor_name()
    elif isinstance(descriptor, rd.ManyToManyDescriptor):
        name = descriptor.rel.get_accessor_name() if descriptor.reverse else descriptor.field.name
    elif isinstance(descriptor, rd.ReverseManyToOneDescriptor):
        # Reverse FK, or GenericRelation (whose rel has no accessor of its own).
        field = descriptor.field
        if hasattr(field, "object_id_field_name"):
            name = field.name
        else:
            name = descriptor.rel.get_accessor_name()
    else:
        name = descriptor.field.name
    _accessors[descriptor] = name
    return name


def install() -> None:
    """Install the hooks (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    _patch_cursor()
    _patch_execute_sql()
    _patch_get_queryset()
    _patch_model_iterable()
    _patch_single_valued()
    _patch_many_valued()
    _patch_prefetch()


def _patch_cursor() -> None:
    """Cover connections of other threads too (sync_to_async under ASGI, worker threads).

    The capture installs its execute wrapper on this thread's connections; a cursor opened
    elsewhere while the capture is current in that context gets it on first use.
    """
    original = BaseDatabaseWrapper._prepare_cursor

    def _prepare_cursor(self, cursor):
        capture = cap._current.get()
        if capture is not None:
            cap.use_connection(capture, self)
        return original(self, cursor)

    BaseDatabaseWrapper._prepare_cursor = _prepare_cursor


def _patch_execute_sql() -> None:
    original = SQLCompiler.execute_sql

    def execute_sql(self, *args, **kwargs):
        if cap._current.get() is None:
            return original(self, *args, **kwargs)
        token = cap.current_query.set(self.query)
        try:
            return original(self, *args, **kwargs)
        finally:
            cap.current_query.reset(token)

    SQLCompiler.execute_sql = execute_sql


def _patch_get_queryset() -> None:
    original = BaseManager.get_queryset

    def get_queryset(self):
        queryset = original(self)
        capture = cap._current.get()
        # A manager with an instance hint is a relation access loading one object
        # (forward FK, generic FK): that query is never a root, so it needs no origin.
        if capture is not None and "instance" not in self._hints:
            query = queryset.query
            if query_tag(query) is None:
                query._ddtpp = Tag(origin=capture.first_frame(1))
        return queryset

    BaseManager.get_queryset = get_queryset


def _patch_model_iterable() -> None:
    original = ModelIterable.__iter__

    def __iter__(self):
        capture = cap._current.get()
        if capture is None or cap.suspended.get():
            return original(self)
        return _tagging_iter(self, original(self), capture)

    ModelIterable.__iter__ = __iter__


def _source_for(queryset: Any, capture: cap.Capture) -> tuple[Source | None, Root | None]:
    """Where the instances this queryset is about to load come from."""
    query = queryset.query
    tag = query_tag(query)
    prefetch = cap.active_prefetch.get()
    if prefetch is not None:
        parent, attr = prefetch
        return (Source(parent.root, parent.path + (attr,)) if parent is not None else None), None
    hop = (tag.hop if tag is not None else None) or cap.active_hop.get()
    if hop is not None and hop.source is not None:
        step = hop.source.path + (accessor_name(hop.descriptor),)
        if not isinstance(hop.descriptor, rd.ReverseManyToOneDescriptor):
            # One related object (FK, one-to-one, generic FK): it extends its parent's path.
            return Source(hop.source.root, step), None
        via = Source(hop.source.root, step)
    else:
        via = None
    root = Root(
        model=queryset.model,
        origin=tag.origin if tag is not None else None,
        evaluated=capture.first_frame(3),
        prefetch_lookups=tuple(queryset._prefetch_related_lookups),
        select_related=query.select_related,
        deferred=query.deferred_loading,
        via=via,
    )
    capture.add_root(root)
    return Source(root, ()), root


def _tagging_iter(iterable: ModelIterable, rows: Any, capture: cap.Capture):
    query = iterable.queryset.query
    try:
        source, root = _source_for(iterable.queryset, capture)
    except Exception:  # tagging is best effort: the user's loop must run regardless
        source, root = None, None
        capture.dropped += 1
    token = cap.evaluating.set((query, root))
    try:
        obj = next(rows, None)
    finally:
        cap.evaluating.reset(token)
    if source is None:
        if obj is not None:
            yield obj
        yield from rows
        return
    select_related = query.select_related
    related_sources: dict = {}
    while obj is not None:
        state = obj._state
        state._ddtpp_src = source
        if root is not None:
            root.rows += 1
        if select_related:
            _tag_selected(obj, source, related_sources)
        yield obj
        obj = next(rows, None)


def _tag_selected(obj: Any, source: Source, cache: dict) -> None:
    """Tag instances that ``select_related`` loaded along with ``obj``."""
    for name, related in obj._state.fields_cache.items():
        if related is None or not hasattr(related, "_state"):
            continue
        path = source.path + (name,)
        related_source = cache.get(path)
        if related_source is None:
            related_source = cache[path] = Source(source.root, path)
        if getattr(related._state, "_ddtpp_src", None) is None:
            related._state._ddtpp_src = related_source
            _tag_selected(related, related_source, cache)


def note_access(source: Source | None, descriptor: Any) -> None:
    """Remember that a relation loaded eagerly for ``source``'s root was read."""
    if source is None:
        return
    capture = cap._current.get()
    if capture is not None:
        capture.note_access((id(source.root), source.path + (accessor_name(descriptor),)))


def _hop_for(descriptor: Any, instance: Any) -> Hop:
    return Hop(descriptor, type(instance), instance_source(instance))


def _with_active_hop(original):
    """Wrap a single-valued access so statements it issues carry the hop."""

    def wrapper(self, instance, *args, **kwargs):
        if instance is None or cap._current.get() is None:
            return original(self, instance, *args, **kwargs)
        token = cap.active_hop.set(_hop_for(self, instance))
        try:
            return original(self, instance, *args, **kwargs)
        finally:
            cap.active_hop.reset(token)

    wrapper.__wrapped__ = original
    return wrapper


def _patch_single_valued() -> None:
    # Forward FK and forward O2O: get_object only runs on a cache miss.
    rd.ForwardManyToOneDescriptor.get_object = _with_active_hop(
        rd.ForwardManyToOneDescriptor.get_object
    )
    forward_get = rd.ForwardManyToOneDescriptor.__get__

    def forward(self, instance, cls=None):
        if instance is not None and cap._current.get() is not None and self.is_cached(instance):
            note_access(instance_source(instance), self)  # select_related / prefetch used
        return forward_get(self, instance, cls)

    rd.ForwardManyToOneDescriptor.__get__ = forward
    reverse_o2o_get = rd.ReverseOneToOneDescriptor.__get__

    def reverse_o2o(self, instance, cls=None):
        if instance is None or cap._current.get() is None:
            return reverse_o2o_get(self, instance, cls)
        if self.related.is_cached(instance):
            note_access(instance_source(instance), self)
            return reverse_o2o_get(self, instance, cls)
        token = cap.active_hop.set(_hop_for(self, instance))
        try:
            return reverse_o2o_get(self, instance, cls)
        finally:
            cap.active_hop.reset(token)

    rd.ReverseOneToOneDescriptor.__get__ = reverse_o2o
    generic_get = _with_active_hop(_GFKDescriptor.__get__)

    def generic(self, instance, cls=None):
        if instance is not None and cap._current.get() is not None and self.is_cached(instance):
            note_access(instance_source(instance), self)
        return generic_get(self, instance, cls)

    _GFKDescriptor.__get__ = generic
    deferred_get = DeferredAttribute.__get__

    def deferred(self, instance, cls=None):
        if (
            instance is None
            or self.field.attname in instance.__dict__
            or cap._current.get() is None
        ):
            return deferred_get(self, instance, cls)
        token = cap.active_hop.set(_hop_for(self, instance))
        try:
            return deferred_get(self, instance, cls)
        finally:
            cap.active_hop.reset(token)

    DeferredAttribute.__get__ = deferred


def _patch_many_valued() -> None:
    # ReverseManyToOneDescriptor.__get__ serves reverse FK, both M2M directions and
    # GenericRelation: none of its subclasses override it.
    original = rd.ReverseManyToOneDescriptor.__get__

    def __get__(self, instance, cls=None):
        manager = original(self, instance, cls)
        if instance is None or cap._current.get() is None:
            return manager
        _tag_manager(manager, _hop_for(self, instance))
        return manager

    rd.ReverseManyToOneDescriptor.__get__ = __get__


def _tag_manager(manager: Any, hop: Hop) -> None:
    class_get_queryset = type(manager).get_queryset

    def get_queryset():
        queryset = class_get_queryset(manager)
        query = queryset.query
        tag = query_tag(query)
        if queryset._result_cache is not None:
            # Served from prefetch_related's cache: the eager load was used.
            note_access(hop.source, hop.descriptor)
        # A filter() on a prefetched queryset runs a new query: it carries the hop too.
        query._ddtpp = Tag(
            origin=tag.origin if tag else None,
            hop=hop,
            base=(len(query.where.children), query.order_by, query.low_mark, query.high_mark),
        )
        return queryset

    manager.get_queryset = get_queryset
    # M2M managers answer count()/exists() from the through table, bypassing get_queryset.
    for name in ("count", "exists"):
        method = getattr(manager, name, None)
        if method is not None:
            setattr(manager, name, _run_with_hop(method, hop))


def _run_with_hop(method: Any, hop: Hop) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = cap.active_hop.set(hop)
        try:
            return method(*args, **kwargs)
        finally:
            cap.active_hop.reset(token)

    return wrapper


def _patch_prefetch() -> None:
    original = query_module.prefetch_one_level

    def prefetch_one_level(instances, prefetcher, lookup, level):
        if cap._current.get() is None or not instances:
            return original(instances, prefetcher, lookup, level)
        attr = lookup.prefetch_through.split("__")[level]
        parent = instance_source(instances[0])
        token = cap.active_prefetch.set((parent, attr))
        try:
            return original(instances, prefetcher, lookup, level)
        finally:
            cap.active_prefetch.reset(token)

    query_module.prefetch_one_level = prefetch_one_level
