"""Stage 1, capture: ORM hooks that say which relation access issued each query.

Every hook is one row of :data:`HOOKS`: the Django (or DDT) attribute it wraps, what stops
working without it, and the wrapper. ``install()`` (from ``AppConfig.ready``, and from
``detect()`` for projects without the app) never raises: a target that is missing or
whose signature changed in a new release leaves that one hook off, and
:func:`disabled_hooks` names it for the system check (``ddt_prefetch_panel.W002``) and the
panel. Every wrapper first checks whether a capture is active in the current context and,
if not, calls straight through, so outside a capture the ORM behaves exactly as without
this package. Wrappers pass unknown arguments through (``*args, **kwargs``).

Inside a capture the ORM still behaves as without it (the observer promise, README
"Guarantees"): every wrapper returns the original call's result and lets its exceptions
through untouched; its own work runs under one guard (:func:`_failed`), which records the
first failure per hook (:func:`hook_failures`: the panel's banner, ``W002``) and never raises.
No hook runs a statement, forces a lazy queryset or filter, or touches an object that is not
what Django returns (a library's fake queryset passes through untagged).

What the hooks record:

* ``SQLCompiler.execute_sql`` exposes the ``Query`` being executed to the cursor wrapper;
* ``BaseManager.get_queryset`` stamps the new query with the stack that built it
  (the *origin*, where a fix such as ``prefetch_related`` belongs);
* ``ModelIterable`` tags each loaded instance with its :class:`~.capture.Source`
  (which root queryset, and which relation path after it);
* relation descriptors (forward FK/O2O, reverse O2O, reverse FK, M2M, generic
  relations, deferred fields) mark the statements they issue with a :class:`~.capture.Hop`;
* ``prefetch_one_level`` marks the prefetch statements and the instances they load;
* DDT's ``DebugToolbarMiddleware._postprocess`` runs with capture suspended: queries the
  toolbar's panels make while they generate their stats are never the user's.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Callable

from django.apps import apps
from django.db.models import Field
from django.db.models.expressions import Col
from django.db.models.fields import related_descriptors as rd
from django.db.models.lookups import Lookup
from django.db.models.query import QuerySet
from django.db.models.query_utils import DeferredAttribute
from django.db.models.sql.where import WhereNode

from . import capture as cap
from . import frameworks
from .capture import Call, Hop, Root, Source
from .frames import CO_NEWLOCALS, awaiting, build_stack, first_builder_frame, raw_from, stack_key
from .pysource import python_literal

CONTENTTYPES = "django.contrib.contenttypes"


def generic_fk_types() -> tuple[type, ...]:
    """``GenericForeignKey`` and (Django 6) its descriptor class; empty without contenttypes.

    Importing ``django.contrib.contenttypes.fields`` loads the ``ContentType`` model, which
    fails in a project that does not install the app: so it is imported only when installed.
    """
    if not apps.is_installed(CONTENTTYPES):
        return ()
    from django.contrib.contenttypes import fields

    descriptor = getattr(fields, "GenericForeignKeyDescriptor", None)  # Django 6
    return (fields.GenericForeignKey,) + ((descriptor,) if descriptor is not None else ())


def generic_fk_field(descriptor: Any) -> Any:
    """The ``GenericForeignKey`` field behind a generic FK descriptor (Django 5.2: itself)."""
    return descriptor if hasattr(descriptor, "ct_field") else descriptor.field


class Tag:
    """Capture data attached to a ``Query``; survives ``Query.clone()``, pickles to ``None``."""

    __slots__ = ("origin", "hop", "base", "query_id")

    def __init__(self, origin: tuple | None = None, hop: Hop | None = None, base: tuple | None = None,
                 query_id: int | None = None) -> None:
        self.origin = origin
        self.hop = hop
        # (where children, ordering, low mark, high mark) of a related manager's queryset
        # as the relation built it; anything beyond is what the loop added.
        self.base = base
        # The Query the related manager returned: a clone evaluated instead (values_list(),
        # in_bulk(), distinct()...) runs its own query even where the relation is prefetched.
        self.query_id = query_id

    def __reduce__(self) -> tuple:
        return (type(None), ())

    def call(self, query: Any) -> Call | None:
        """What the loop did to the related manager beyond ``.all()``, or None."""
        base = self.base
        if base is None:
            return None
        where = query.where.children
        unchanged = len(where) == base[0] and query.order_by == base[1] and (query.low_mark, query.high_mark) == base[2:]
        reads = unservable_read(query, self.query_id, unchanged)
        if unchanged and reads is None:
            return None
        call = describe_call(query, base) if not unchanged else Call()
        return replace(call, reads=reads) if reads else call


def _kwarg(node: Any, base_table: str) -> tuple[str, str, Any] | str:
    """``("vegetarian", "True", True)`` for a simple lookup, or why it cannot be rebuilt."""
    if not isinstance(node, Lookup) or not isinstance(node.lhs, Col):
        return "a Q object, expression or subquery"
    if node.lhs.alias != base_table:
        return "a lookup through another relation"
    value = python_literal(node.rhs)
    if value is None:
        return "a value that is not a plain literal"
    name = node.lhs.target.attname if node.lhs.target.is_relation else node.lhs.target.name
    key = name if node.lookup_name == "exact" else f"{name}__{node.lookup_name}"
    rhs = tuple(node.rhs) if isinstance(node.rhs, list) else node.rhs  # hashable: Calls are compared
    return key, value, rhs


def unservable_read(query: Any, query_id: int | None, unchanged: bool) -> str | None:
    """How a loop read a related manager's rows in a way no prefetch can serve, or None:
    ``.iterator()`` (a chunked fetch), or, with the relation's own filters and ordering
    unchanged, a copy of its queryset (``values_list()``, ``in_bulk()``, ``distinct()``...),
    which runs its own query even where the rows were prefetched. Aggregates (``count()``,
    ``exists()``) are read from their SQL and have fixes of their own."""
    if cap.chunked_fetch.get():
        return ".iterator()"
    if not unchanged or query_id is None or id(query) == query_id or query.annotations:
        return None
    if query.values_select or not query.default_cols:
        return ".values() / .values_list()"
    return "a copy of the queryset (in_bulk(), distinct(), select_related(), only()...)"


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
    """The Source the capture tagged a model instance with (on its ``_state``), or None."""
    try:
        return getattr(instance._state, cap.SOURCE_ATTR, None)
    except AttributeError:
        return None


_set_attribute = object.__setattr__  # bypasses a class's own __setattr__


_accessors: dict[Any, str] = {}


def accessor_name(descriptor: Any) -> str:
    """The attribute name a user writes for the relation a descriptor manages."""
    try:
        return _accessors[descriptor]
    except KeyError:
        pass
    if isinstance(descriptor, generic_fk_types()):
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
    elif isinstance(descriptor, Field):
        name = descriptor.name  # a relation field that is its own descriptor (django-taggit)
    else:
        name = descriptor.field.name
    _accessors[descriptor] = name
    return name




# --------------------------------------------------------------------------- the hook table

# The patched targets, by the names W002, the panel and the guard use.
_RD = "django.db.models.fields.related_descriptors:"
_GFK = "django.contrib.contenttypes.fields:"
PREPARE_CURSOR = "django.db.backends.base.base:BaseDatabaseWrapper._prepare_cursor"
EXECUTE_SQL = "django.db.models.sql.compiler:SQLCompiler.execute_sql"
GET_QUERYSET = "django.db.models.manager:BaseManager.get_queryset"
MODEL_ITERABLE = "django.db.models.query:ModelIterable.__iter__"
FORWARD_GET_OBJECT = _RD + "ForwardManyToOneDescriptor.get_object"
FORWARD_GET = _RD + "ForwardManyToOneDescriptor.__get__"
REVERSE_O2O_GET = _RD + "ReverseOneToOneDescriptor.__get__"
MANY_GET = _RD + "ReverseManyToOneDescriptor.__get__"
DEFERRED_GET = "django.db.models.query_utils:DeferredAttribute.__get__"
PREFETCH_ONE_LEVEL = "django.db.models.query:prefetch_one_level"
DO_UPDATE = "django.db.models.base:Model._do_update"
FETCH_ALL = "django.db.models.query:QuerySet._fetch_all"
SYNC_TO_ASYNC = "asgiref.sync:SyncToAsync.__call__"
TOOLBAR_POSTPROCESS = "debug_toolbar.middleware:DebugToolbarMiddleware._postprocess"
GENERIC_FK_GET = _GFK + "GenericForeignKeyDescriptor.__get__"


@dataclass(frozen=True)
class HookSpec:
    """One patched target."""

    name: str  # dotted path of the wrapped attribute
    detects: str  # what the panel cannot see while this hook is off
    params: tuple[str, ...]  # leading parameters the wrapper reads (checked against the target)
    wrap: Callable[[Any], Any]  # original -> wrapper
    requires: str | None = None  # an app that must be installed for the target to exist
    fallback: str | None = None  # the same target's path in older releases


_status: dict[str, str | None] = {}  # hook name -> None (active) or why it is off


def disabled_hooks() -> dict[str, str]:
    """Hooks that could not be installed, with the reason (missing target, new signature)."""
    return {name: reason for name, reason in _status.items() if reason is not None}


_failures: dict[str, str] = {}  # hook name -> the first error our own work around it raised


def hook_failures() -> dict[str, str]:
    """Hooks whose own work (tagging, bookkeeping) raised at run time, with the first error.

    The wrapped call itself always ran and returned (or raised) as without the package; only
    what that hook observes was missed for the calls that failed.
    """
    return dict(_failures)


def _failed(name: str, exc: BaseException) -> None:
    """The one guard every wrapper's own work runs under: remember the first failure, never raise."""
    if name not in _failures:
        _failures[name] = f"{type(exc).__name__}: {exc}"
    capture = cap._current.get()
    if capture is not None:
        capture.dropped += 1


def resolve_target(path: str) -> tuple[Any, str]:
    """(module or class holding the attribute, attribute name) of ``"module:Class.attr"``.

    Raises ``ImportError``/``AttributeError`` when the target is gone. A class attribute must
    be defined on that class itself, not inherited: wrapping an inherited one would patch
    the wrong thing.
    """
    module_name, _, dotted = path.partition(":")
    *owners, attribute = dotted.split(".")
    owner: Any = importlib.import_module(module_name)
    for name in owners:
        owner = getattr(owner, name)
    present = attribute in vars(owner) if isinstance(owner, type) else hasattr(owner, attribute)
    if not present:
        raise AttributeError(f"{path} does not exist")
    return owner, attribute


def hide_from_toolbar_stacks() -> None:
    """Hide this package's frames from the toolbar's stack traces, as it hides ``django.db``'s.

    With ``ENABLE_STACKTRACES_LOCALS`` the SQL panel pretty-prints every shown frame's locals;
    a wrapper's locals hold querysets, whose ``repr()`` runs a query, which the panel records
    with a stack that shows them again. Added to the toolbar's default list, so a project that
    sets ``HIDE_IN_STACKTRACES`` itself keeps exactly its own list.
    """
    if not apps.is_installed("debug_toolbar"):
        return  # detect() and test mode without the toolbar: no stack traces to hide from
    try:
        from debug_toolbar import settings as toolbar_settings

        hidden = toolbar_settings.CONFIG_DEFAULTS.get("HIDE_IN_STACKTRACES")
        if isinstance(hidden, (tuple, list)) and __package__ not in hidden:
            toolbar_settings.CONFIG_DEFAULTS["HIDE_IN_STACKTRACES"] = (*hidden, __package__)
            toolbar_settings.get_config.cache_clear()
    except Exception:  # a toolbar release without these names: its stacks show our frames
        return


def _target(spec: HookSpec) -> tuple[Any, str]:
    try:
        return resolve_target(spec.name)
    except (ImportError, AttributeError):
        if spec.fallback is None:
            raise
        return resolve_target(spec.fallback)


def _check_signature(spec: HookSpec, original: Any) -> None:
    try:
        parameters = list(inspect.signature(original).parameters)
    except (TypeError, ValueError):
        return  # builtins without a signature: nothing to compare
    if parameters[: len(spec.params)] != list(spec.params):
        raise TypeError(f"{spec.name}{tuple(parameters)} no longer starts with {spec.params}")


def install(specs: list[HookSpec] | None = None) -> dict[str, str | None]:
    """Install every hook once (idempotent); never raises. Returns name -> None or reason."""
    if specs is None:
        frameworks.install()
        hide_from_toolbar_stacks()
        specs = HOOKS + third_party_relation_hooks()
    for spec in specs:
        if spec.name in _status:
            continue
        if spec.requires and not apps.is_installed(spec.requires):
            _status[spec.name] = f"{spec.requires} is not in INSTALLED_APPS"
            continue
        try:
            owner, attribute = _target(spec)
            original = vars(owner)[attribute] if isinstance(owner, type) else getattr(owner, attribute)
            _check_signature(spec, original)
            wrapper = spec.wrap(original)
            wrapper.__wrapped__ = original
            wrapper._ddtpp_hook = spec.name
            setattr(owner, attribute, wrapper)
        except Exception as exc:  # a changed Django: that one detection is off, the site runs
            _status[spec.name] = f"{type(exc).__name__}: {exc}"
        else:
            _status[spec.name] = None
    return dict(_status)


# --------------------------------------------------------------------------- wrappers


def _wrap_prepare_cursor(original):
    """Cover connections of other threads too (sync_to_async under ASGI, worker threads).

    The capture installs its execute wrapper on this thread's connections; a cursor opened
    elsewhere while the capture is current in that context gets it on first use.
    """

    def _prepare_cursor(self, *args, **kwargs):
        capture = cap._current.get()
        if capture is not None and id(self) not in capture.installed_ids:
            try:
                cap.use_connection(capture, self)
            except Exception as exc:
                _failed(PREPARE_CURSOR, exc)
        return original(self, *args, **kwargs)

    return _prepare_cursor


def _wrap_execute_sql(original):
    def execute_sql(self, *args, **kwargs):
        if cap._current.get() is None:
            return original(self, *args, **kwargs)
        token = cap.current_query.set(self.query)
        chunked = kwargs.get("chunked_fetch", args[1] if len(args) > 1 else False)
        chunked_token = cap.chunked_fetch.set(chunked is True)
        try:
            return original(self, *args, **kwargs)
        finally:
            cap.chunked_fetch.reset(chunked_token)
            cap.current_query.reset(token)

    return execute_sql


def _wrap_get_queryset(original):
    def get_queryset(self, *args, **kwargs):
        queryset = original(self, *args, **kwargs)
        try:
            _stamp_origin(self, queryset)
        except Exception as exc:
            _failed(GET_QUERYSET, exc)
        return queryset

    return get_queryset


def _stamp_origin(manager: Any, queryset: Any) -> None:
    # A manager with an instance hint is a relation access loading one object
    # (forward FK, generic FK): that query is never a root, so it needs no origin.
    if "instance" in getattr(manager, "_hints", ()):
        return
    query = unforced_query(queryset)
    if query is None:
        return
    capture = cap._current.get()
    if capture is not None:
        if query_tag(query) is None:
            query._ddtpp = Tag(origin=capture.first_frame(2))
    else:
        origin = import_time_origin(sys._getframe(2))
        if origin is not None:
            query._ddtpp = Tag(origin=origin)


def unforced_query(queryset: Any) -> Any:
    """A QuerySet's ``Query`` as it stands, or None for anything else (a library's fake queryset).

    Read from ``_query``, never through the ``query`` property: that applies a related manager's
    deferred filter, which Django defers on purpose (prefetching builds one manager per instance).
    A filter applied later goes into this same ``Query`` object, so a tag put here stays.
    """
    if not isinstance(queryset, QuerySet):
        return None
    return queryset.__dict__.get("_query")


def import_time_origin(frame: Any) -> tuple | None:
    """The build stack of a queryset built in a class body or at module level.

    ``queryset = Book.objects.all()`` on a viewset, ``forms.ModelChoiceField(queryset=...)``
    on a form: built once at import, often before any capture (under ``runserver`` the
    URLconf is imported first), and evaluated in every request. Outside a capture only
    those are stamped: the walk stops at the first project frame that is not a method of the
    project's own managers, and only a frame without its own locals (a class or module body)
    keeps the stamp.
    """
    start = frame
    frame = first_builder_frame(frame)
    if frame is None or frame.f_code.co_flags & CO_NEWLOCALS:
        return None
    return build_stack(start, None)


def _wrap_model_iterable(original):
    def __iter__(self, *args, **kwargs):
        capture = cap._current.get()
        if capture is None or cap.suspended.get():
            return original(self, *args, **kwargs)
        return _tagging_iter(self, original(self, *args, **kwargs), capture)

    return __iter__


def _source_for(queryset: Any, capture: cap.Capture) -> tuple[Source | None, Root | None]:
    """Where the instances this queryset is about to load come from."""
    query = queryset.query  # the iterable is about to run it: any deferred filter applies now anyway
    tag = query_tag(query)
    prefetch = cap.active_prefetch.get()
    if prefetch is not None:
        parent, attr = prefetch
        return (parent.child(attr) if parent is not None else None), None
    hop = (tag.hop if tag is not None else None) or cap.active_hop.get()
    if hop is not None and hop.source is not None:
        step = hop.source.child(accessor_name(hop.descriptor))
        if not is_many_valued(hop.descriptor):
            # One related object (FK, one-to-one, generic FK): it extends its parent's path.
            return step, None
        via = step
    else:
        via = None
    # Loaded through a relation of a parent already looped over: the analysis follows ``via``
    # to the parent's root (relate.locate), so this one is never replayed; its Query (and the
    # parent instance in its hints) need not live until the end of the request.
    replayable = via is None or not via.root.looped()
    root = Root(
        model=queryset.model,
        origin=tag.origin if tag is not None else None,
        evaluated=capture.first_frame(3),
        prefetch_lookups=tuple(queryset._prefetch_related_lookups),
        select_related=query.select_related,
        deferred=query.deferred_loading,
        via=via,
        query=query if replayable else None,
        queryset_class=type(queryset) if replayable else None,
        hints=queryset._hints if replayable else None,
        marks=cap.marks_of(query),
    )
    capture.add_root(root)
    return Source(root, ()), root


def is_many_valued(descriptor: Any) -> bool:
    """Reverse FK, M2M, generic relations, and third-party to-many fields (taggit's manager)."""
    if isinstance(descriptor, rd.ReverseManyToOneDescriptor):
        return True
    return isinstance(descriptor, Field) and bool(descriptor.many_to_many or descriptor.one_to_many)


def _tagging_iter(iterable: Any, rows: Any, capture: cap.Capture):
    """Yield what the original iterator yields, tagging each instance on the way.

    Only ``next(rows)`` runs the user's query, outside any guard: its exceptions reach the
    caller untouched. Our work on each row runs under the guard; after a failure the rest of
    the rows pass through untagged.
    """
    try:
        query = iterable.queryset.query
        source, root = _source_for(iterable.queryset, capture)
    except Exception as exc:
        _failed(MODEL_ITERABLE, exc)
        query, source, root = None, None, None
    if root is None:  # a related object (FK, prefetch): no root record to link
        obj = next(rows, None)
    else:
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
    joined: dict = {}  # paths of the select_related levels that had an object, in order
    attribute = cap.SOURCE_ATTR
    while obj is not None:
        try:
            state = obj._state
            setattr(state, attribute, source)
            if capture.snapshots_left > 0:
                capture.snapshots_left -= 1
                snapshot = cap.Loaded(obj.__dict__)
                del snapshot["_state"]  # the state holds the snapshot: no reference cycle
                snapshot.serial = capture.serial
                setattr(state, cap.LOADED_ATTR, snapshot)
            if root is not None:
                root.rows += 1
            if select_related:
                known = len(joined)
                _tag_selected(obj, source, joined)
                if len(joined) != known:  # a joined level had its first object
                    for path in list(joined)[known:]:
                        capture.note_loaded((id(source.root), path), 1)
        except Exception as exc:
            _failed(MODEL_ITERABLE, exc)
            yield obj
            yield from rows
            return
        yield obj
        obj = next(rows, None)


def _tag_selected(obj: Any, source: Source, joined: dict) -> None:
    """Tag instances that ``select_related`` loaded along with ``obj``."""
    for name, related in obj._state.fields_cache.items():
        if related is None or not hasattr(related, "_state"):
            continue
        related_source = source.child(name)
        joined.setdefault(related_source.path)
        if instance_source(related) is None:
            setattr(related._state, cap.SOURCE_ATTR, related_source)
            _tag_selected(related, related_source, joined)


def note_access(source: Source | None, descriptor: Any) -> None:
    """Remember that a relation loaded eagerly for ``source``'s root was read."""
    if source is None:
        return
    capture = cap._current.get()
    if capture is not None:
        capture.note_access((id(source.root), source.path + (accessor_name(descriptor),)))


def _hop_for(descriptor: Any, instance: Any, capture: cap.Capture) -> Hop:
    return cap.hop(capture, descriptor, instance, instance_source(instance))


def _with_hop(original, name: str, *, cached: Callable[[Any, Any], bool] | None = None):
    """Wrap a single-valued access so the statements it issues carry the hop.

    ``cached(descriptor, instance)`` says the value is already loaded (select_related or
    prefetch_related served it): that read is noted as a use of the eager load instead.
    """

    def wrapper(self, instance, *args, **kwargs):
        if instance is None:
            return original(self, instance, *args, **kwargs)
        capture = cap._current.get()
        if capture is None:
            return original(self, instance, *args, **kwargs)
        try:
            if cached is not None and cached(self, instance):
                note_access(instance_source(instance), self)
                hop = None
            else:
                hop = _hop_for(self, instance, capture)
        except Exception as exc:
            _failed(name, exc)
            hop = None
        if hop is None:
            return original(self, instance, *args, **kwargs)
        token = cap.active_hop.set(hop)
        try:
            return original(self, instance, *args, **kwargs)
        finally:
            cap.active_hop.reset(token)

    return wrapper


def _wrap_forward_get(original):
    # Only notes eager-load reads; the hop is set by get_object, which runs on a cache miss.
    def __get__(self, instance, *args, **kwargs):
        if instance is not None and cap._current.get() is not None:
            try:
                if self.is_cached(instance):
                    note_access(instance_source(instance), self)
            except Exception as exc:
                _failed(FORWARD_GET, exc)
        return original(self, instance, *args, **kwargs)

    return __get__


def _wrap_deferred_get(original):
    """A read of a loaded field (the instance dict has it) is a plain read, checked first:
    every ``obj.fk_id`` read goes through this data descriptor. Only a deferred field's
    first read issues a statement, and that one carries the hop."""
    with_hop = _with_hop(original, DEFERRED_GET)

    def __get__(self, instance, *args, **kwargs):
        if instance is None or self.field.attname in instance.__dict__:
            return original(self, instance, *args, **kwargs)
        return with_hop(self, instance, *args, **kwargs)

    return __get__


def _wrap_many_get(original):
    # ReverseManyToOneDescriptor.__get__ serves reverse FK, both M2M directions and
    # GenericRelation: none of its subclasses override it.
    def __get__(self, instance, *args, **kwargs):
        manager = original(self, instance, *args, **kwargs)
        if instance is None:
            return manager
        capture = cap._current.get()
        if capture is None:
            return manager
        try:
            _tag_manager(manager, _hop_for(self, instance, capture))
        except Exception as exc:  # a manager class we cannot hook: that read goes untagged
            _failed(MANY_GET, exc)
        return manager

    return __get__


# The Hop a related manager was read with, in the manager's own dict: the manager class's
# methods (wrapped once per class by _tag_manager) read it. Nothing refers back to the
# manager, so a manager per loop iteration is freed at once instead of forming a cycle.
MANAGER_HOP_ATTR = "_ddtpp_hop"


def _tag_manager(manager: Any, hop: Hop) -> None:
    cls = type(manager)
    if "_ddtpp_manager_hooked" not in vars(cls):
        _hook_manager_class(cls)
    _set_attribute(manager, MANAGER_HOP_ATTR, hop)


def _hook_manager_class(cls: type) -> None:
    """Wrap ``get_queryset`` (and ``count``/``exists``, which M2M managers answer from the through
    table without it) on a related manager class, once. The wrappers act only for a manager
    :func:`_tag_manager` tagged while a capture was active; any other call passes straight through."""
    cls.get_queryset = _hopping_get_queryset(cls.get_queryset)
    for name in ("count", "exists"):
        method = getattr(cls, name, None)
        if inspect.isfunction(method):
            setattr(cls, name, _run_with_manager_hop(method))
    cls._ddtpp_manager_hooked = True


def _manager_hop(manager: Any) -> Hop | None:
    try:
        return manager.__dict__.get(MANAGER_HOP_ATTR)
    except AttributeError:
        return None


def _hopping_get_queryset(class_get_queryset: Callable) -> Callable:
    def get_queryset(self, *args, **kwargs):
        queryset = class_get_queryset(self, *args, **kwargs)
        hop = _manager_hop(self)
        if hop is None or cap._current.get() is None:
            return queryset
        try:
            _tag_related_queryset(queryset, hop)
        except Exception as exc:
            _failed(MANY_GET, exc)
        return queryset

    get_queryset.__wrapped__ = class_get_queryset
    return get_queryset


def _tag_related_queryset(queryset: Any, hop: Hop) -> None:
    """Give a related manager's queryset the hop and what the relation itself filters on.

    Nothing lazy is forced: the relation's own filter is usually still deferred (see
    :func:`unforced_query`); it will add one condition per keyword to the same ``Query``,
    so the relation's part of the WHERE is counted without building it. A deferred filter of
    another shape (Q objects, exclude) leaves the queryset without a base: what the loop
    adds is then not described, never described wrongly.
    """
    query = unforced_query(queryset)
    if query is None:
        return  # not a QuerySet (django-modelcluster's FakeQuerySet for unsaved instances)
    if queryset._result_cache is not None:
        # Served from prefetch_related's cache: the eager load was used.
        note_access(hop.source, hop.descriptor)
    pending = queryset.__dict__.get("_deferred_filter")
    if pending is None:
        conditions: int | None = len(query.where.children)
    else:
        negate, args, kwargs = pending
        conditions = None if negate or args else len(query.where.children) + len(kwargs)
    tag = query_tag(query)
    # A filter() on a prefetched queryset runs a new query: it carries the hop too.
    query._ddtpp = Tag(
        origin=tag.origin if tag else None,
        hop=hop,
        base=None if conditions is None else (conditions, query.order_by, query.low_mark, query.high_mark),
        query_id=id(query),
    )


def _run_with_manager_hop(method: Callable) -> Callable:
    def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        hop = _manager_hop(self)
        if hop is None or cap._current.get() is None:
            return method(self, *args, **kwargs)
        token = cap.active_hop.set(hop)
        try:
            return method(self, *args, **kwargs)
        finally:
            cap.active_hop.reset(token)

    wrapper.__wrapped__ = method
    return wrapper


def _wrap_prefetch_one_level(original):
    signature = inspect.signature(original)

    def prefetch_one_level(*args, **kwargs):
        capture = cap._current.get()
        if capture is None:
            return original(*args, **kwargs)
        try:
            if len(args) >= 4 and not kwargs:
                instances, _prefetcher, lookup, level = args[:4]
            else:
                bound = signature.bind_partial(*args, **kwargs).arguments
                instances, lookup, level = bound.get("instances"), bound.get("lookup"), bound.get("level")
            if not instances or lookup is None or level is None:
                return original(*args, **kwargs)
            attr = lookup.prefetch_through.split("__")[level]
            parent = instance_source(instances[0])
            single = _per_instance_call(sys._getframe(1))
        except Exception as exc:
            _failed(PREFETCH_ONE_LEVEL, exc)
            return original(*args, **kwargs)
        token = cap.active_prefetch.set((parent, attr))
        single_token = cap.per_instance_prefetch.set(single)
        try:
            result = original(*args, **kwargs)
        finally:
            cap.per_instance_prefetch.reset(single_token)
            cap.active_prefetch.reset(token)
        if parent is not None:
            try:
                key = (id(parent.root), parent.path + (attr,))
                loaded = result[0] if isinstance(result, tuple) and result else None
                if loaded:
                    capture.note_loaded(key, len(loaded))
                _mark_prefetched(instances, attr, key)
            except Exception as exc:
                _failed(PREFETCH_ONE_LEVEL, exc)
        return result

    return prefetch_one_level


def _mark_prefetched(instances: list, attr: str, key: tuple) -> None:
    """Tag the querysets prefetch_related stored in each instance's cache: a read that goes to
    ``_prefetched_objects_cache`` directly (django-taggit's manager, serializers, libraries)
    iterates them without the related manager, and ``QuerySet._fetch_all`` notes it."""
    for obj in instances:
        cache = getattr(obj, "_prefetched_objects_cache", None)
        queryset = cache.get(attr) if cache else None
        if queryset is not None and hasattr(queryset, "_fetch_all"):
            queryset._ddtpp_read = key


def _wrap_fetch_all(original):
    def _fetch_all(self, *args, **kwargs):
        try:
            key = self.__dict__.get("_ddtpp_read")
            if key is not None:
                capture = cap._current.get()
                if capture is not None:
                    capture.note_access(key)
        except Exception as exc:
            _failed(FETCH_ALL, exc)
        return original(self, *args, **kwargs)

    return _fetch_all


def _per_instance_call(frame: Any) -> bool:
    """``prefetch_related_objects([instance], ...)`` called by code outside Django's query module
    (a queryset's own prefetch, per result or per ``iterator()`` chunk, is called from there)."""
    for _ in range(4):
        if frame is None:
            return False
        if frame.f_code.co_name == "prefetch_related_objects":
            break
        frame = frame.f_back
    else:
        return False
    caller = frame.f_back
    if caller is None or caller.f_code.co_filename == frame.f_code.co_filename:
        return False
    instances = frame.f_locals.get("model_instances")
    return isinstance(instances, (list, tuple)) and len(instances) == 1


def _wrap_do_update(original):
    """``save()``'s UPDATE: what the saves of one call site change, for ``update()`` /
    ``bulk_update()`` advice. Learnt from values the ORM already has, never from a read: the
    instance's fields as they were loaded (``capture.LOADED_ATTR``) against what save() writes."""

    def _do_update(self, base_qs, using, pk_val, values, *args, **kwargs):
        capture = cap._current.get()
        if capture is None or cap.suspended.get() or not values:
            return original(self, base_qs, using, pk_val, values, *args, **kwargs)
        try:
            key = (type(self), stack_key(sys._getframe(1), capture.anchor))
            summary = capture.diffed.get(key)
            if summary is None:
                summary = capture.diffed[key] = cap.SaveSummary()
            _summarize(summary, self, values, capture.serial)
        except Exception as exc:
            _failed(DO_UPDATE, exc)
            return original(self, base_qs, using, pk_val, values, *args, **kwargs)
        token = cap.write_changes.set(summary)
        try:
            return original(self, base_qs, using, pk_val, values, *args, **kwargs)
        finally:
            cap.write_changes.reset(token)

    return _do_update


_UNKNOWN = object()


def _summarize(summary: cap.SaveSummary, instance: Any, values: list, serial: int) -> None:
    """Add one save to its call site's summary.

    ``saved`` (the value every save wrote) needs nothing else. ``changed``, ``deltas`` and
    ``factors`` compare with the instance as loaded, kept for the first instances a capture
    loads; a save without it (an instance built by hand, or past that budget) is not diffed,
    and a field missing from it counts as changed (a longer ``bulk_update()`` list is still
    right; a shorter one would lose writes).
    """
    summary.saves += 1
    for field, _model, value in values:
        if hasattr(value, "resolve_expression"):
            summary.unread = True
            summary.saved[field.name] = cap.MIXED
        elif field.name not in summary.saved:
            summary.saved[field.name] = value if summary.saves == 1 else cap.MIXED
        elif summary.saved[field.name] is not cap.MIXED and summary.saved[field.name] != value:
            summary.saved[field.name] = cap.MIXED
    loaded = getattr(instance._state, cap.LOADED_ATTR, None)
    if loaded is None or loaded.serial != serial:
        return
    summary.diffed += 1
    for field, _model, value in values:
        if hasattr(value, "resolve_expression"):
            continue
        before = loaded.get(field.attname, _UNKNOWN)
        loaded[field.attname] = value  # what the row holds after this save, for the next one
        if before is _UNKNOWN:
            summary.changed[field.name] = None
            summary.deltas[field.name] = summary.factors[field.name] = cap.MIXED
            continue
        if value != before:
            summary.changed[field.name] = None
        # The increment of every diffed save, 0 where it did not change the field: one
        # increment for all of them is what update(f=F(f) + n) writes.
        numbers = _same_number_kind(before, value)
        delta = value - before if numbers else cap.MIXED
        if summary.deltas.get(field.name, delta) != delta:
            delta = cap.MIXED
        summary.deltas[field.name] = delta
        factor = _factor(before, value) if numbers else cap.MIXED
        if summary.factors.get(field.name, factor) != factor:
            factor = cap.MIXED
        summary.factors[field.name] = factor


def _same_number_kind(a: Any, b: Any) -> bool:
    """Both ints/floats, or both Decimals (a Decimal minus a float raises)."""
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return isinstance(a, Decimal) and isinstance(b, Decimal)
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))


def _factor(before: Any, after: Any) -> Any:
    """``after / before`` when it is exact (integers, decimals), else MIXED (floats never are)."""
    if not before or isinstance(before, float) or isinstance(after, float):
        return cap.MIXED
    if isinstance(before, int) and isinstance(after, int):
        return after // before if after % before == 0 else cap.MIXED
    try:
        factor = (Decimal(after) / Decimal(before)).normalize()
    except ArithmeticError:
        return cap.MIXED
    return factor if Decimal(before) * factor == Decimal(after) else cap.MIXED


def _wrap_toolbar_postprocess(original):
    """DDT's panels generate their stats and the toolbar renders in ``_postprocess``: the
    queries they make (history store, template contexts, other panels) are the toolbar's."""

    def _postprocess(self, *args, **kwargs):
        token = cap.suspended.set(True)
        try:
            return original(self, *args, **kwargs)
        finally:
            cap.suspended.reset(token)

    return _postprocess


def _wrap_sync_to_async_call(original):
    """``await sync_to_async(fn)()`` (the ORM's ``aget``, ``afirst``, ``async for``...): the
    thread that runs ``fn`` starts a new stack, so the awaiting coroutine's stack is kept
    for it (``frames.awaiting``), interned per capture like any other stack."""

    async def __call__(self, *args, **kwargs):
        capture = cap._current.get()
        if capture is None:
            return await original(self, *args, **kwargs)
        try:
            caller = sys._getframe(1)
            key = ("await",) + stack_key(caller, capture.anchor)
            raw = capture._stacks.get(key)
            if raw is None:
                raw = capture._stacks[key] = raw_from(caller, capture.anchor)
        except Exception as exc:
            _failed(SYNC_TO_ASYNC, exc)
            return await original(self, *args, **kwargs)
        token = awaiting.set(raw)
        try:
            return await original(self, *args, **kwargs)
        finally:
            awaiting.reset(token)

    return __call__


def third_party_relation_hooks() -> list[HookSpec]:
    """Hooks for relation descriptors of installed models that replace Django's ``__get__``.

    django-modelcluster's ``ChildObjectsDescriptor`` / ``ParentalManyToManyDescriptor``
    and django-taggit's ``TaggableManager`` (a field that is its own descriptor) return
    their own managers without calling Django's ``__get__``: they get the same wrapper, so
    their statements carry the relation hop. Found from the models, not from a list.
    """
    if not apps.models_ready:
        return []
    specs: dict[str, HookSpec] = {}
    for model in apps.get_models():
        for value in list(vars(model).values()):
            if not is_many_valued(value):
                continue
            owner = next((k for k in type(value).__mro__ if "__get__" in vars(k)), None)
            if owner is None or owner.__module__.split(".")[0] == "django":
                continue  # Django's own descriptors are in HOOKS
            name = f"{owner.__module__}:{owner.__qualname__}.__get__"
            # Only "self" is checked: third-party descriptors name the instance as they like
            # (obj, instance); the wrapper passes it on positionally.
            specs.setdefault(name, HookSpec(
                name, f"N+1s on {owner.__name__} relations", ("self",), _wrap_many_get))
    return list(specs.values())


def _generic_cached(descriptor: Any, instance: Any) -> bool:
    return descriptor.is_cached(instance)


def _reverse_o2o_cached(descriptor: Any, instance: Any) -> bool:
    return descriptor.related.is_cached(instance)


HOOKS: list[HookSpec] = [
    HookSpec(PREPARE_CURSOR,
             "queries on connections opened by other threads (sync_to_async, worker threads)",
             ("self", "cursor"), _wrap_prepare_cursor),
    HookSpec(EXECUTE_SQL,
             "the model and relation of ORM statements", ("self",), _wrap_execute_sql),
    HookSpec(GET_QUERYSET,
             "where querysets are built (origins and rewritten lines)", ("self",), _wrap_get_queryset),
    HookSpec(MODEL_ITERABLE,
             "which queryset loaded each instance (relation paths, unused prefetches)", ("self",),
             _wrap_model_iterable),
    HookSpec(FORWARD_GET_OBJECT,
             "N+1s on forward foreign keys and one-to-one fields", ("self", "instance"),
             lambda original: _with_hop(original, FORWARD_GET_OBJECT)),
    HookSpec(FORWARD_GET,
             "reads of select_related / prefetched forward relations", ("self", "instance"),
             _wrap_forward_get),
    HookSpec(REVERSE_O2O_GET,
             "N+1s on reverse one-to-one relations", ("self", "instance"),
             lambda original: _with_hop(original, REVERSE_O2O_GET, cached=_reverse_o2o_cached)),
    HookSpec(MANY_GET,
             "N+1s on reverse foreign keys, many-to-many and generic relations", ("self", "instance"),
             _wrap_many_get),
    HookSpec(DEFERRED_GET,
             "N+1s on deferred fields (only() / defer())", ("self", "instance"), _wrap_deferred_get),
    HookSpec(PREFETCH_ONE_LEVEL,
             "which statements prefetch_related ran (unused prefetches)",
             ("instances", "prefetcher", "lookup", "level"), _wrap_prefetch_one_level),
    HookSpec(DO_UPDATE,
             "which fields a save() in a loop changes (bulk_update / update advice)",
             ("self", "base_qs", "using", "pk_val", "values"), _wrap_do_update),
    HookSpec(FETCH_ALL,
             "reads of prefetched results that bypass the related manager (django-taggit, libraries)",
             ("self",), _wrap_fetch_all),
    HookSpec(SYNC_TO_ASYNC,
             "the awaiting line of async ORM calls (aget, afirst, async for)", ("self",),
             _wrap_sync_to_async_call),
    HookSpec(TOOLBAR_POSTPROCESS,
             "telling the toolbar's own queries from the page's", ("self",), _wrap_toolbar_postprocess,
             requires="debug_toolbar"),
    HookSpec(GENERIC_FK_GET,
             "N+1s on generic foreign keys", ("self", "instance"),
             lambda original: _with_hop(original, GENERIC_FK_GET, cached=_generic_cached),
             requires=CONTENTTYPES, fallback=_GFK + "GenericForeignKey.__get__"),  # Django 5.2
]
