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

from typing import Any

from django.contrib.contenttypes.fields import GenericForeignKey
from django.db.models import query as query_module
from django.db.models.fields import related_descriptors as rd
from django.db.models.manager import BaseManager
from django.db.models.query import ModelIterable
from django.db.models.query_utils import DeferredAttribute
from django.db.models.sql.compiler import SQLCompiler

from . import capture as cap
from .capture import Hop, Root, Source

_installed = False


class Tag:
    """Capture data attached to a ``Query``; survives ``Query.clone()``, pickles to ``None``."""

    __slots__ = ("origin", "hop", "prefetch")

    def __init__(self, origin: tuple | None = None, hop: Hop | None = None,
                 prefetch: bool = False) -> None:
        self.origin = origin
        self.hop = hop
        self.prefetch = prefetch

    def __reduce__(self) -> tuple:
        return (cap._none, ())


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
    if isinstance(descriptor, GenericForeignKey):
        name = descriptor.name
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
    _patch_execute_sql()
    _patch_get_queryset()
    _patch_model_iterable()
    _patch_single_valued()
    _patch_many_valued()
    _patch_prefetch()


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
        if cap._current.get() is not None:
            query = queryset.query
            if query_tag(query) is None:
                query._ddtpp = Tag(origin=cap.raw_stack(1))
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


def _tagging_iter(iterable: ModelIterable, rows: Any, capture: cap.Capture):
    queryset = iterable.queryset
    query = queryset.query
    tag = query_tag(query)
    prefetch = cap.active_prefetch.get()
    root: Root | None = None
    if prefetch is not None:
        parent, attr = prefetch
        source = Source(parent.root, parent.path + (attr,)) if parent is not None else None
    else:
        hop = (tag.hop if tag is not None else None) or cap.active_hop.get()
        via = None
        if hop is not None and hop.source is not None:
            via = Source(hop.source.root, hop.source.path + (accessor_name(hop.descriptor),))
        root = Root(
            model=queryset.model,
            origin=tag.origin if tag is not None else None,
            evaluated=capture.intern_stack(cap.raw_stack(2)),
            prefetch_lookups=tuple(queryset._prefetch_related_lookups),
            select_related=query.select_related,
            deferred=query.deferred_loading,
            via=via,
        )
        capture.roots.append(root)
        source = Source(root, ())
    token = cap.evaluating.set((query, root))
    try:
        obj = next(rows, None)
    finally:
        cap.evaluating.reset(token)
    if source is None:
        yield from ([] if obj is None else [obj])
        yield from rows
        return
    select_related = query.select_related
    related_sources: dict = {}
    while obj is not None:
        obj._state._ddtpp_src = source
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
    reverse_o2o_get = rd.ReverseOneToOneDescriptor.__get__

    def reverse_o2o(self, instance, cls=None):
        if instance is None or cap._current.get() is None or self.related.is_cached(instance):
            return reverse_o2o_get(self, instance, cls)
        token = cap.active_hop.set(_hop_for(self, instance))
        try:
            return reverse_o2o_get(self, instance, cls)
        finally:
            cap.active_hop.reset(token)

    rd.ReverseOneToOneDescriptor.__get__ = reverse_o2o
    GenericForeignKey.__get__ = _with_active_hop(GenericForeignKey.__get__)
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
        tag = query_tag(queryset.query)
        if queryset._result_cache is not None:
            # Served from prefetch_related's cache: the eager load was used.
            capture = cap._current.get()
            if capture is not None and hop.source is not None:
                capture.accessed.add(
                    (id(hop.source.root), hop.source.path + (accessor_name(hop.descriptor),))
                )
        # A filter() on a prefetched queryset runs a new query: it carries the hop too.
        queryset.query._ddtpp = Tag(origin=tag.origin if tag else None, hop=hop)
        return queryset

    manager.get_queryset = get_queryset


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
