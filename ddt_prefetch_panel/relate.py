"""Stage 3, relate: name the model relation behind a group of repeated statements.

ORM events come first: a statement issued while a relation was read carries a
:class:`~.capture.Hop`, and the instance it was read on carries a
:class:`~.capture.Source` (its root queryset and the relation path after it). When no
event explains a group (hand-written loops, raw cursors), the SQL itself is mapped back to
models through ``_meta``: the table gives the model, a filtered foreign-key column gives
the relation it mirrors.

A loop may also load its rows again one by one by key (a CMS's ``page.specific``:
``ArticlePage.objects.get(id=page.id)`` per page; ``Author.objects.get(pk=post.author_id)``).
Each such load is a root queryset of one row that no relation links to the looped rows, so
:func:`find_refetches` links it by key and model to the looped root it came from. The
re-fetch is a hop the ORM did not take, and the relations read off the re-fetched rows climb
through it: for a downcast (a multi-table-inheritance child of the looped model) to one
*rebased* root, the looped root's query run on the child model
(``ArticlePage.objects.filter(pk__in=<the pages' query>)``), which is what the fix at the
looped root's line (``ArticlePage.objects.filter(live=True)``) returns and what the proof
replays; for a load by a foreign key's value, to the looped root through that foreign key
(``author__posts``).
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.apps import apps
from django.db.models import Field, ForeignKey, QuerySet
from django.db.models.fields import related_descriptors as rd
from django.db.models.query_utils import DeferredAttribute

from . import sqlshape
from .capture import Call, Root, Source, params_hash
from .frames import declaration_line
from .frameworks import registered_admin
from .group import Group, most_common
from .hooks import accessor_name, generic_fk_field, generic_fk_types

KIND_LABELS = {
    "forward_fk": "forward FK",
    "forward_o2o": "forward one-to-one",
    "reverse_o2o": "reverse one-to-one",
    "reverse_fk": "reverse FK",
    "m2m": "many-to-many",
    "reverse_m2m": "reverse many-to-many",
    "generic_fk": "generic FK",
    "generic_relation": "generic relation",
    "deferred": "deferred field",
    "downcast": "downcast",
}
SINGLE_VALUED = frozenset({"forward_fk", "forward_o2o", "reverse_o2o"})


@dataclass(frozen=True)
class HopInfo:
    """One step of a lookup path, resolved against the models."""

    model: type  # model the accessor is read on
    accessor: str
    kind: str  # key of KIND_LABELS
    target: type | None  # model the hop leads to (None for a generic FK)
    field: Any  # the field object that defines the relation

    @property
    def single(self) -> bool:
        return self.kind in SINGLE_VALUED

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.accessor}"

    @property
    def downcast(self) -> bool:
        """The reverse one-to-one of a multi-table-inheritance parent link: the row as its child model."""
        return self.kind == "reverse_o2o" and bool(getattr(self.field.remote_field, "parent_link", False))

    @property
    def kind_label(self) -> str:
        return KIND_LABELS["downcast"] if self.downcast else KIND_LABELS[self.kind]


@dataclass
class Relation:
    """What ``relate`` found for one group."""

    root: Root | None
    model: type | None  # the root queryset's model (what was iterated)
    path: tuple[str, ...]  # accessors from the root model; last one issued the queries
    hops: list[HopInfo] = field(default_factory=list)
    via_sql: bool = False  # mapped from SQL, no ORM event
    note: str | None = None
    call: Call | None = None  # filters/ordering the loop added to the related manager
    calls_vary: bool = False  # the added filters use different values per parent
    aggregate: str | None = None  # count / exists / sum / ... issued per parent
    aggregate_column: str | None = None
    model_admin: Any = None  # the ModelAdmin whose changelist built the root queryset
    # Models a generic FK on the path pointed to in this request (for GenericPrefetch).
    generic_models: tuple[type, ...] = ()
    per_instance: bool = False  # prefetch_related_objects([instance], ...) called once per instance
    # The lookup from the loop's own queryset when place.climb re-rooted the relation on the
    # queryset its parent object came from (the loop's queryset was built in a template or library).
    climbed_from: str | None = None
    # The rows were re-fetched one by one from a looped root's rows (find_refetches): ``root`` is
    # then the rebased root on ``refetch.model``, and ``path`` starts at that model.
    refetch: Refetch | None = None

    @property
    def last(self) -> HopInfo | None:
        return self.hops[-1] if self.hops else None

    @property
    def lookup(self) -> str | None:
        return "__".join(self.path) if self.path else None

    @property
    def relation(self) -> str | None:
        if self.last:
            return self.last.label
        return self.refetch.label if self.refetch else None


@dataclass(eq=False)
class Refetch:
    """Rows a loop loaded one by one by key from the rows of a looped root: a hop the ORM did
    not take (``ArticlePage.objects.get(id=page.id)`` for each page of ``Page.objects.filter(...)``)."""

    outer: Root  # the looped root whose rows gave the keys
    model: type  # the model loaded per row
    # Accessors from outer.model to model: parent links for a downcast (("articlepage",)), the
    # foreign key whose value was the key for a load by key (("author",)).
    link: tuple[str, ...]
    # A downcast: outer's query run on ``model``, what the fix at outer's line returns. None for a
    # load by a foreign key's value: the fix goes on outer itself, through the foreign key.
    rebased: Root | None
    evaluated: tuple  # raw stack where the first per-row load ran (the re-fetch's line)
    key: str | None = None  # the foreign key's attname on outer.model (``author_id``), for a load by key

    @property
    def label(self) -> str:
        return f"{self.outer.model._meta.label}.{self.link[-1]}"


def classify(descriptor: Any) -> tuple[str, type | None, Any] | None:
    """(kind, target model, defining field) of a class attribute, or None if not a relation."""
    if isinstance(descriptor, generic_fk_types()):
        return "generic_fk", None, generic_fk_field(descriptor)
    if isinstance(descriptor, rd.ForwardOneToOneDescriptor):
        return "forward_o2o", descriptor.field.remote_field.model, descriptor.field
    if isinstance(descriptor, rd.ForwardManyToOneDescriptor):
        return "forward_fk", descriptor.field.remote_field.model, descriptor.field
    if isinstance(descriptor, rd.ReverseOneToOneDescriptor):
        return "reverse_o2o", descriptor.related.related_model, descriptor.related.field
    if isinstance(descriptor, rd.ManyToManyDescriptor):
        if descriptor.reverse:
            return "reverse_m2m", descriptor.rel.related_model, descriptor.rel.field
        return "m2m", descriptor.rel.model, descriptor.field
    if isinstance(descriptor, rd.ReverseManyToOneDescriptor):
        rel_field = descriptor.field
        if hasattr(rel_field, "object_id_field_name"):  # GenericRelation
            return "generic_relation", rel_field.related_model, rel_field
        return "reverse_fk", descriptor.rel.related_model, descriptor.rel.field
    if isinstance(descriptor, DeferredAttribute):
        return "deferred", None, descriptor.field
    if isinstance(descriptor, Field) and descriptor.is_relation and descriptor.related_model is not None:
        # A relation field that is its own descriptor (django-taggit's TaggableManager).
        if descriptor.many_to_many:
            return "m2m", descriptor.related_model, descriptor
        if descriptor.one_to_many:
            return "reverse_fk", descriptor.related_model, descriptor
    return None


def describe_path(model: type, path: tuple[str, ...] | list[str]) -> list[HopInfo] | None:
    """Resolve accessors from ``model`` through the models' own descriptors.

    Returns None when a part is not a relation the ORM can follow (so no snippet built
    on it may be shown). Nothing after a generic FK can be resolved here (its model is only
    known per instance): see :func:`_through_generic_fk`.
    """
    hops: list[HopInfo] = []
    current: type | None = model
    for index, part in enumerate(path):
        if current is None:
            return None
        descriptor = inspect.getattr_static(current, part, None)
        described = classify(descriptor) if descriptor is not None else None
        if described is None:
            return None
        kind, target, defining = described
        if kind == "deferred" and index != len(path) - 1:
            return None
        hops.append(HopInfo(current, part, kind, target, defining))
        current = target
    return hops


def locate(source: Source | None) -> tuple[Root | None, tuple[str, ...]]:
    """The outermost looped-over root of an instance, and the path from it."""
    if source is None:
        return None, ()
    root, path = source.root, source.path
    while root.via is not None and root.via.root.looped():
        path = root.via.path + path
        root = root.via.root
    return root, path


def relate(group: Group, roots_by_seq: list[tuple[int, Root]],
           refetches: dict[int, Refetch] | None = None) -> Relation | None:
    """The relation behind a group: ORM events first, then the SQL.

    ``refetches`` (:func:`find_refetches`) links the roots of per-row loads to the looped
    root they re-fetched rows of.
    """
    refetches = refetches or {}
    hops = group.hops
    per_instance = group.per_instance_prefetch
    if per_instance is not None:
        relation = _from_prefetch(per_instance, roots_by_seq)
    elif hops:
        relation = _from_events(hops, group.calls, [r for r in group.records if r.hop is not None], refetches)
    else:
        relation = _refetched(group, refetches) or _from_sql(group, group.first_seq, roots_by_seq)
    if relation is not None:
        record = group.records[0]
        shape = sqlshape.shape_on(record.sql, record.alias)
        if shape is not None and shape.aggregate:
            relation.aggregate = shape.aggregate
            relation.aggregate_column = shape.aggregate_column
        if relation.root is not None and relation.refetch is None:  # a rebased root is no changelist's
            relation.model_admin = changelist_admin(relation.root)
    return relation


def _from_prefetch(key: tuple, roots_by_seq: list[tuple[int, Root]]) -> Relation | None:
    """A ``prefetch_related_objects([instance], "a__b")`` loop: the path it prefetched, from the
    root queryset whose instances were passed one at a time."""
    root_id, path = key
    root = next((r for _seq, r in roots_by_seq if id(r) == root_id), None)
    if root is None or root.rows < 2:
        return None
    hops = describe_path(root.model, path)
    if not hops:
        return None
    return Relation(root, root.model, tuple(path), hops, per_instance=True)


def changelist_admin(root: Root) -> Any:
    """The ModelAdmin when the root queryset was built by Django admin's changelist."""
    stack = root.origin or root.evaluated or ()
    marker = f"{os.sep}contrib{os.sep}admin{os.sep}"
    if not any(marker in entry[0].co_filename and entry[0].co_name in _CHANGELIST_CODE for entry in stack):
        return None
    return registered_admin(root.model)


_CHANGELIST_CODE = frozenset({"get_queryset", "get_results", "changelist_view", "__init__"})


def _from_events(hops: list, calls: set, records: list, refetches: dict[int, Refetch]) -> Relation | None:
    descriptor = most_common(h.descriptor for h in hops)
    relation = _relation_for([h for h in hops if h.descriptor is descriptor], descriptor, refetches)
    if relation is not None:
        relation.call = most_common(r.call for r in records if r.hop.descriptor is descriptor)
        relation.calls_vary = len(calls) > 1
    return relation


def _relation_for(chosen: list, descriptor: Any, refetches: dict[int, Refetch]) -> Relation | None:
    located = [locate(h.source) for h in chosen]
    # Rows re-fetched one by one (each its own root): the rebased root of the loop they came from,
    # or that loop's root through the foreign key that gave the key.
    linked = {id(root): refetches[id(root)] for root, _path in located if id(root) in refetches}
    located = [_through(linked[id(root)], path) if id(root) in linked else (root, path) for root, path in located]
    by_root: dict[int, tuple[Root | None, tuple[str, ...]]] = {}
    for item in located:
        by_root.setdefault((id(item[0]), item[1]), item)
    key = most_common((id(item[0]), item[1]) for item in located)
    root, prefix = by_root[key]
    accessor = accessor_name(descriptor)
    path = prefix + (accessor,)
    hop_model = chosen[0].model
    refetch = next((r for r in linked.values() if (r.rebased or r.outer) is root), None)
    if refetch is not None:
        hops_info = describe_path(root.model, path)
        if hops_info is None:
            return None
        return Relation(root, root.model, path, hops_info, refetch=refetch)
    if root is None:
        # Parent loaded without a queryset we saw (e.g. created in the request).
        hops_info = describe_path(hop_model, (accessor,))
        return Relation(None, hop_model, (accessor,), hops_info or [])
    hops_info = describe_path(root.model, path)
    if hops_info is None:
        hops_info = _through_generic_fk(root.model, path, hop_model)
        if hops_info is not None:
            return Relation(root, root.model, path, hops_info)
    if hops_info is None:
        # A Prefetch(to_attr=...) or custom attribute in the path: keep the last hop only.
        last = describe_path(hop_model, (accessor,)) or []
        return Relation(root, root.model, path, last,
                        note="The path goes through an attribute the ORM cannot follow.")
    return Relation(root, root.model, path, hops_info)


def _through(refetch: Refetch, path: tuple[str, ...]) -> tuple[Root, tuple[str, ...]]:
    """(root, path) of a relation read off a re-fetched row: from the rebased root for a downcast,
    from the looped root through the foreign key for a load by key (``author__posts``)."""
    if refetch.rebased is not None:
        return refetch.rebased, path
    return refetch.outer, refetch.link + path


def _through_generic_fk(model: type, path: tuple[str, ...], last_model: type) -> list[HopInfo] | None:
    """``terminations__termination__device``: a generic FK anywhere in the path, followed by
    relations of the model it pointed to.

    The ORM cannot say which model a generic FK leads to; the hop that issued the queries can:
    ``last_model`` is the class of the instance the last accessor was read on. When more hops
    follow the generic FK, the model right after it is one whose relations lead there (the
    first by label when several do; advice builds a queryset per content type seen anyway).
    One generic FK per path: after a second one nothing ties the models together.
    """
    index = next((i for i in range(len(path)) if _is_generic_fk(model, path, i)), None)
    if index is None or index == len(path) - 1:
        return None
    head = describe_path(model, path[: index + 1])
    tail_path = path[index + 1:]
    if not head or head[-1].kind != "generic_fk" or any(h.kind == "generic_fk" for h in head[:-1]):
        return None
    for candidate in _models_leading_to(last_model, tail_path[:-1]):
        tail = describe_path(candidate, tail_path)
        if tail and issubclass(last_model, tail[-1].model) and tail[-1].kind != "deferred" \
                and not any(h.kind == "generic_fk" for h in tail):
            return head + tail
    return None


def _is_generic_fk(model: type, path: tuple[str, ...], index: int) -> bool:
    hops = describe_path(model, path[: index + 1])
    return bool(hops) and hops[-1].kind == "generic_fk"


def _models_leading_to(last_model: type, between: tuple[str, ...]) -> list[type]:
    """Models from which the accessors ``between`` reach ``last_model`` (itself when none)."""
    if not between:
        return [last_model]
    found = []
    for candidate in sorted(apps.get_models(), key=lambda m: m._meta.label):
        hops = describe_path(candidate, between)
        if hops and hops[-1].target is not None and issubclass(last_model, hops[-1].target):
            found.append(candidate)
    return found


# --------------------------------------------------------------------------- SQL fallback


@lru_cache(maxsize=1)
def _tables() -> dict[str, type]:
    return {m._meta.db_table.lower(): m for m in apps.get_models(include_auto_created=True)}


def model_for_table(table: str) -> type | None:
    return _tables().get(table.strip('"`[]').lower())


def find_refetches(roots_by_seq: list[tuple[int, Root]]) -> dict[int, Refetch]:
    """Roots of per-row loads by key, linked to the looped root whose rows they re-fetched.

    A root of at most one row, loaded by nothing (no relation, no prefetch), whose statement
    selects on its model's primary key, after a looped root whose rows lead there:

    * a downcast (``page.specific``): the model is a multi-table-inheritance child of the looped
      model; one rebased root per (looped root, child model);
    * a load by key (``Author.objects.get(pk=post.author_id)``): the looped model has exactly one
      foreign key (or one-to-one) to the model, whose value is the key.

    Linked to the most recent such looped root: ``{id(root): Refetch}``.
    """
    found: dict[int, Refetch] = {}
    # (looped root, model) -> its Refetch, or None when that root's rows do not lead to the model:
    # a thousand loads of one model cost one look at each looped root, not a thousand.
    known: dict[tuple[int, type], Refetch | None] = {}
    keys: dict[int, set] = {}  # id(Refetch) -> the parameters its loads ran with
    looped: list[Root] = []
    for _seq, root in roots_by_seq:
        if root.rows > 1 and root.base is None:
            looped.append(root)
            continue
        if not root.keyed() or root.record is None or not _by_own_key(root):
            continue
        model = root.model
        for outer in reversed(looped):
            key = (id(outer), model)
            if key not in known:
                known[key] = _refetch_from(outer, root)
            if known[key] is not None:
                found[id(root)] = known[key]
                keys.setdefault(id(known[key]), set()).add(params_hash(root.record.params))
                break
    # One object loaded once (the request's user) is no re-fetch of the looped rows: a link needs
    # loads of at least two different keys.
    return {root_id: refetch for root_id, refetch in found.items() if len(keys[id(refetch)]) > 1}


def _refetch_from(outer: Root, root: Root) -> Refetch | None:
    """How ``root``'s row (loaded by its key) leads back to the rows of ``outer``, if it does."""
    model = root.model
    if outer.query is None or outer.queryset_class is None or outer.model is model:
        return None
    if issubclass(model, outer.model):
        link = parent_link_path(outer.model, model)
        rebased = rebase(outer, model) if link else None
        return Refetch(outer, model, link, rebased, root.evaluated) if rebased is not None else None
    keys = [f for f in outer.model._meta.concrete_fields
            if (f.many_to_one or f.one_to_one) and f.remote_field.model is model and f.target_field.primary_key]
    if len(keys) != 1:
        return None  # two foreign keys to the model (a/z ends): which one gave the key is unknown
    return Refetch(outer, model, (keys[0].name,), None, root.evaluated, key=keys[0].attname)


def _by_own_key(root: Root) -> bool:
    """The root's statement selects on its model's primary key (or a parent's, the same value)."""
    record = root.record
    shape = sqlshape.shape_on(record.sql, record.alias)
    if shape is None or shape.has_or or shape.aggregate:
        return False
    keys = {root.model._meta.pk.column} | {p._meta.pk.column for p in root.model._meta.get_parent_list()}
    return any(c.column in keys and c.op == "eq" for c in shape.conditions)


def rebase(outer: Root, child: type) -> Root | None:
    """``outer``'s own query run on ``child``: the same filters (as a subquery on the primary
    key), the same ordering and slice. What ``Child.objects.<the same calls>`` returns at
    outer's line when every row is a child (the proof checks that on the request's rows)."""
    try:
        query = outer.query.chain()
        query.clear_limits()
        query.clear_ordering(force=True)
        keys = outer.queryset_class(model=outer.model, query=query, hints=dict(outer.hints or {})).values("pk")
        rebased = child._default_manager.filter(pk__in=keys)
        # The rewritten line keeps the user's own eager loads: inherited relations, valid on the child.
        rebased.query.select_related = outer.query.select_related
        if outer.query.order_by:
            rebased = rebased.order_by(*outer.query.order_by)
        elif not outer.query.default_ordering:
            rebased = rebased.order_by()
        low, high = outer.marks
        rebased.query.set_limits(low, high)
    except Exception:  # an ordering or a query the child cannot take: nothing to rebase on
        return None
    if not isinstance(rebased, QuerySet):
        return None
    return Root(
        model=child, origin=outer.origin, evaluated=outer.evaluated, prefetch_lookups=outer.prefetch_lookups,
        select_related=outer.select_related, deferred=rebased.query.deferred_loading, rows=outer.rows,
        record=outer.record, seq=outer.seq, query=rebased.query, queryset_class=type(rebased), hints={},
        marks=outer.marks, base=outer,
    )


def _refetched(group: Group, refetches: dict[int, Refetch]) -> Relation | None:
    """The per-row downcasts themselves, on the rebased root (the fix's own root). A load by key
    is left to :func:`_from_sql`, which names the foreign key it mirrors."""
    for record in group.records:
        refetch = refetches.get(id(record.root)) if record.root is not None else None
        if refetch is not None and refetch.rebased is not None:
            return Relation(refetch.rebased, refetch.model, (), [], refetch=refetch)
    return None


def parent_link_path(parent: type, child: type) -> tuple[str, ...]:
    """Accessors from ``parent`` down to ``child`` through parent links (``("articlepage",)``)."""
    path: list[str] = []
    current = child
    while current is not parent:
        ancestors = [m for m in current._meta.parents if issubclass(m, parent)]
        if not ancestors:
            return ()
        link = current._meta.parents[ancestors[0]]
        if link is None:
            return ()
        path.insert(0, link.remote_field.get_accessor_name())
        current = ancestors[0]
    return tuple(path)


def _from_sql(group: Group, first_seq: int, roots_by_seq: list[tuple[int, Root]]) -> Relation | None:
    record = group.records[0]
    shape = sqlshape.shape_on(record.sql, record.alias)
    if shape is None or len(shape.tables) != 1:
        return None
    model = model_for_table(shape.tables[0])
    if model is None or model._meta.auto_created:
        return None
    columns = {c.column for c in shape.conditions if c.op in ("eq", "in")}
    recent = [root for seq, root in reversed(roots_by_seq) if seq < first_seq and root.rows > 1]
    # A foreign-key column filtered per row: the reverse relation it mirrors.
    for fk in model._meta.concrete_fields:
        if isinstance(fk, ForeignKey) and fk.column in columns:
            parent = fk.remote_field.model
            accessor = fk.remote_field.get_accessor_name()
            if not accessor:
                continue
            root = next((r for r in recent if issubclass(r.model, parent)), None)
            if root is None:
                continue  # no rows of that model were looped over: a query of its own, not the relation
            hops = describe_path(parent, (accessor,))
            if hops:
                return Relation(root, parent, (accessor,), hops, via_sql=True)
    # The primary key filtered per row: a forward FK into this table, from the loop's model.
    if model._meta.pk.column in columns:
        for root in recent:
            candidates = [
                f for f in root.model._meta.concrete_fields
                if (f.many_to_one or f.one_to_one) and f.remote_field.model is model
            ]
            if len(candidates) == 1:
                hops = describe_path(root.model, (candidates[0].name,))
                if hops:
                    return Relation(root, root.model, (candidates[0].name,), hops, via_sql=True)
    return None


# --------------------------------------------------------------------------- definitions


@lru_cache(maxsize=1024)
def definition_site(field: Any) -> dict | None:
    """File and line where a relation field is declared: in its model's class body or in the
    abstract base (or mixin) that declares it, never a same-named line inside a method."""
    model = getattr(field, "model", None)
    name = getattr(field, "name", None)
    if model is None or not name:
        return None
    site = declaration_line(model, name)
    if site is None:
        return None
    filename, lineno, code = site
    return {"filename": filename, "lineno": lineno, "code": code}
