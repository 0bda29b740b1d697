"""Stage 1, capture: record every SQL statement with cheap references to its context.

Everything here runs once per query or per ORM relation access, so it keeps only
references (code objects, line numbers, the placeholder SQL, the parameter object,
descriptors) and leaves names, files and source text to the analysis stages.

Two sources of data feed a capture:

* a ``connection.execute_wrapper`` on every database alias records statements;
* ORM hooks (``hooks.py``, installed once from ``AppConfig.ready``) tag
  querysets and model instances with *where they came from*: the root queryset that
  loaded them and the relation hops that followed. A statement issued while a relation
  is being accessed carries that hop, which is how ``relate`` names the relation.

Per-request state lives in a ``ContextVar``, so threads and asyncio tasks never see
each other's records.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from array import array
from collections.abc import Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Iterator

from django.db import connections

from .frames import build_stack, first_user_frame, raw_from, stack_key

# DDT's own tables (its database store, the cache table it registers): the live set DDT's
# SQL panel skips by, filled in by ``start()`` once apps are ready.
_toolbar_tables: set[str] = set()

# Hard limits that keep a capture bounded however many queries a request runs.
MAX_SQL_CHARS = 20_000
MAX_ROOTS = 5_000  # root querysets remembered for unused-prefetch and SQL-fallback analysis


NO_MARKS = (0, None)  # an unsliced query's (low mark, high mark), shared by every root


def marks_of(query: Any) -> tuple:
    low, high = query.low_mark, query.high_mark
    return NO_MARKS if low == 0 and high is None else (low, high)


@dataclass(slots=True, eq=False)
class Root:
    """A multi-row queryset evaluation whose instances may be looped over."""

    model: type
    origin: tuple | None  # raw stack where the queryset was built from its manager
    evaluated: tuple  # raw stack where it was evaluated
    prefetch_lookups: tuple
    select_related: Any
    deferred: tuple  # Query.deferred_loading: (field names, defer?)
    via: Source | None = None  # set when a relation access loaded this queryset
    rows: int = 0
    record: Record | None = None  # the statement that evaluated it, unless only its position is needed
    seq: int = -1  # that statement's position in the capture (-1: none ran, e.g. an empty ``__in``)
    # Cheap references to rebuild the queryset for a replay proof (never its rows). Not kept
    # for a queryset loaded through a relation of a looped-over parent (``order.pizzas.all()``
    # per order): the fix goes on the parent's root, so only the slice is kept.
    query: Any = None
    queryset_class: type | None = None
    hints: dict | None = None
    marks: tuple = NO_MARKS  # the query's (low mark, high mark)
    # Set on a root the analysis builds, never captured: the looped root whose rows the loop
    # re-fetched one by one as this root's model (relate.find_refetches); its baseline is that root.
    base: Root | None = None

    def keyed(self) -> bool:
        """Whether the analysis reads its statement's parameters: a root loaded by key (a
        ``get(pk)`` per row is a re-fetch, relate.find_refetches); never one loaded through a
        relation or one that cannot be replayed."""
        return self.via is None and self.query is not None

    def needs_record(self) -> bool:
        """Whether the analysis reads more of the statement that evaluated it than its position:
        its parameters (a load by key), its alias (a replay), its SQL (an unused eager load). A
        per-row ``order.pizzas.all()`` needs none: past its bucket's samples, no Record is built."""
        return self.query is not None or bool(self.prefetch_lookups) or bool(self.select_related)

    def looped(self) -> bool:
        """Whether this root, or one it was loaded through, gave more than one row."""
        root = self
        while True:
            if root.rows > 1:
                return True
            if root.via is None:
                return False
            root = root.via.root


# The attribute of a model instance's ``_state`` (its ModelState) that holds its Source: never
# in the instance's own ``__dict__``, which user code copies into ``Model(**...)``.
SOURCE_ATTR = "_ddtpp_src"
# Beside it, for the first instances a capture loads: their field values as loaded, which
# save()'s hook compares with what it writes (which fields a loop's saves change). A budget per
# capture bounds the memory; a save of an instance without it is not diffed.
LOADED_ATTR = "_ddtpp_loaded"
SNAPSHOTS_PER_CAPTURE = 1000
_serials = itertools.count(1)


class Loaded(dict):
    """An instance's field values as a capture loaded them (attname -> value).

    Valid for that capture only (``serial``): an instance cached across requests may have been
    changed since. Pickles and deep-copies to ``None``, like :class:`Source`.
    """

    __slots__ = ("serial",)

    def __reduce__(self) -> tuple:
        return (type(None), ())


def prime_model_state() -> None:
    """Add the source slot to ModelState's shared attribute keys at start-up (``AppConfig.ready``).

    On CPython 3.11+ instances of a class share one table of attribute names and keep their
    values in a compact array. An attribute first added late in a process's life may not join
    that table (in the benchmark's server it did not), and every tagged ModelState then got a
    full dict of its own (240 bytes per loaded instance, 37 % more peak memory on a 10,000-row
    page). Added at start-up, the slot costs 8 bytes per ModelState;
    ``test_the_source_tag_costs_no_memory_per_instance`` checks it on each Python CI runs.
    """
    from django.db.models.base import ModelState

    state = ModelState()
    setattr(state, SOURCE_ATTR, None)
    setattr(state, LOADED_ATTR, None)


class Source:
    """Where a model instance came from: its root queryset and the relation path after it.

    One object per (root, path) in a capture, shared by every instance loaded there
    (:meth:`child` interns the next step), so tagging an instance allocates nothing. It
    pickles and deep-copies to ``None`` (without naming this package, so a cached instance
    unpickles where the package is not installed), and copied instances never drag capture
    state along.
    """

    __slots__ = ("root", "path", "_children")

    def __init__(self, root: Root, path: tuple[str, ...]) -> None:
        self.root = root
        self.path = path
        self._children: dict[str, Source] | None = None

    def child(self, name: str) -> Source:
        """The Source one relation step further (``path + (name,)``), the same object each time."""
        children = self._children
        if children is None:
            children = self._children = {}
        source = children.get(name)
        if source is None:
            source = children[name] = Source(self.root, self.path + (name,))
        return source

    def __reduce__(self) -> tuple:
        return (type(None), ())


@dataclass(slots=True, eq=False)
class Hop:
    """One relation access on an instance: the descriptor and the instance's source.

    Interned per (descriptor, instance class, source) in the capture (:func:`hop`): the
    accesses of one loop share one Hop.
    """

    descriptor: Any
    model: type  # class of the instance the attribute was read on
    source: Source | None
    # What tells the hops of one statement text apart (see Capture.add_own): the descriptor
    # and the path of the instance it was read on.
    key: tuple = field(init=False, default=())

    def __post_init__(self) -> None:
        self.key = (id(self.descriptor), self.source.path if self.source is not None else None)


def hop(capture: Capture, descriptor: Any, instance: Any, source: Source | None) -> Hop:
    """The interned Hop for reading ``descriptor`` on ``instance`` (whose source is ``source``).

    Kept in the capture, not on the source: a Source holding its Hops (which hold it) would be a
    reference cycle, and a request's capture is freed by reference counting (:meth:`Capture.release`).
    """
    key = (descriptor, type(instance), source)
    found = capture.hops.get(key)
    if found is None:
        found = capture.hops[key] = Hop(descriptor, key[1], source)
    return found


@dataclass(frozen=True)
class Call:
    """Filters, exclusions, ordering and slicing a loop added to a related manager."""

    # (keyword, Python source of the value, the value itself)
    filters: tuple[tuple[str, str, Any], ...] = ()
    excludes: tuple[tuple[str, str, Any], ...] = ()
    order_by: tuple[str, ...] = ()
    low: int = 0
    high: int | None = None
    unreadable: str | None = None
    reads: str | None = None  # read in a way that runs its own query anyway (".iterator()"...)


MIXED = object()  # a field that got different values (or increments) from different saves


@dataclass(slots=True, eq=False)
class SaveSummary:
    """The ``save()`` calls of one call site (model and stack): what they wrote.

    ``saved`` is kept for every save (the values save() passes down); ``changed``, ``deltas``
    and ``factors`` need the row as it was: the instance's values as loaded (``LOADED_ATTR``),
    never a read. ``diffed`` counts the saves that had them.
    """

    saves: int = 0
    diffed: int = 0
    changed: dict = field(default_factory=dict)  # field name -> None (an ordered set)
    saved: dict = field(default_factory=dict)  # field name -> the value every save wrote, or MIXED
    deltas: dict = field(default_factory=dict)  # field name -> the increment every diffed save wrote, or MIXED
    factors: dict = field(default_factory=dict)  # field name -> the exact factor every diffed save applied, or MIXED
    unread: bool = False  # a diff failed, or a value was an expression (F() assigned in the loop)


@dataclass(slots=True)
class Record:
    alias: str
    sql: str
    params: Any
    duration: float  # seconds
    stack: tuple  # raw stack key, interned per capture
    hop: Hop | None
    model: type | None  # the ORM query's model, if the statement came from the ORM
    many: bool = False
    error: str | None = None
    prefetch: tuple | None = None  # (id(root), path) when issued by prefetch_related
    call: Call | None = None  # what a loop added to a related manager
    root: Root | None = None  # for statements that evaluated a root queryset
    seq: int = 0  # position in the capture
    allow: tuple | None = None  # ALLOW-style patterns of the ignore_n_plus_one(*patterns) block it ran in
    per_instance: bool = False  # issued by prefetch_related_objects([one_instance], ...) called by user code
    changes: SaveSummary | None = None  # save()'s UPDATE: what the saves of its call site changed


# Per bucket (same alias, SQL text, raw stack): what is kept beyond exact counts and times.
SAMPLES_PER_BUCKET = 3
HOPS_PER_BUCKET = 20
DISTINCT_PARAMS_PER_BUCKET = 1000


@dataclass(slots=True, eq=False)
class Bucket:
    """Statements with the same alias, SQL text and raw stack: exact totals, bounded samples.

    A loop of 100,000 identical-looking statements costs one bucket, not 100,000 records.
    """

    alias: str
    sql: str
    stack: tuple
    prefetch: tuple | None
    first_seq: int
    allow: tuple | None = None  # patterns of the ignore_n_plus_one(*patterns) block, if any
    # (id of the relation descriptor, path of the instance it was read on): hops that look
    # alike (same SQL, same line) but differ in path stay apart (x.parent.parent, a/z paths).
    hop_key: tuple | None = None
    last_seq: int = 0
    count: int = 0
    duration: float = 0.0
    errors: int = 0
    samples: list[Record] = field(default_factory=list)
    slowest: Record | None = None
    hops: list[Hop] = field(default_factory=list)
    calls: set = field(default_factory=set)  # distinct Calls, at most 2 kept (we only ask "varies?")
    params: dict | ParamCounts = field(default_factory=dict)  # hash(repr(params)) -> count, bounded
    params_overflow: int = 0  # statements whose parameters were not tracked (bound reached)
    per_instance: int = 0  # statements of prefetch_related_objects() called on a single instance

    def add(self, record: Record) -> None:
        self.tally(record.seq, record.duration, record.error, record.params, record.per_instance)
        if len(self.samples) < SAMPLES_PER_BUCKET:
            self.samples.append(record)
        if self.slowest is None or record.duration > self.slowest.duration:
            self.slowest = record
        self.add_hop(record.hop)
        if record.call is not None and len(self.calls) < 2:
            self.calls.add(record.call)

    def needs_record(self, duration: float) -> bool:
        """Whether a statement would be kept (a sample, the slowest); if not, :meth:`tally`
        counts it (and :meth:`add_hop` its hop) and no Record is built."""
        return len(self.samples) < SAMPLES_PER_BUCKET or duration > self.slowest.duration

    def add_hop(self, hop: Hop | None) -> None:
        if hop is not None and len(self.hops) < HOPS_PER_BUCKET:
            self.hops.append(hop)

    def tally(self, seq: int, duration: float, error: str | None, params: Any, per_instance: bool) -> None:
        """The exact totals every statement adds."""
        self.count += 1
        self.last_seq = seq
        self.duration += duration
        if error:
            self.errors += 1
        if per_instance:
            self.per_instance += 1
        key = params_hash(params)
        known = self.params
        if key in known:
            known[key] += 1
        elif len(known) < DISTINCT_PARAMS_PER_BUCKET:
            known[key] = 1
        else:
            self.params_overflow += 1

    @property
    def records(self) -> list[Record]:
        """Samples, plus the slowest statement (for the slow-query index check)."""
        if self.slowest is not None and all(r is not self.slowest for r in self.samples):
            return self.samples + [self.slowest]
        return self.samples


class ParamCounts(Mapping):
    """A finished bucket's parameter counts (:attr:`Bucket.params`) in two arrays.

    A held capture (shared.py) keeps every bucket until its proofs are made, and a loop over
    thousands of rows has up to :data:`DISTINCT_PARAMS_PER_BUCKET` distinct parameter hashes: as a
    dict that is about 70 KiB per request, as two arrays 16 KiB. Read like the dict it replaces;
    a lookup is a scan in C (the analysis looks up a few keys, it iterates the rest).
    """

    __slots__ = ("_keys", "_counts")

    def __init__(self, counts: dict[int, int]) -> None:
        self._keys = array("q", counts.keys())  # OverflowError beyond 64 bits: the caller keeps the dict
        self._counts = array("q", counts.values())

    def __getitem__(self, key: int) -> int:
        try:
            return self._counts[self._keys.index(key)]
        except (ValueError, TypeError, OverflowError):
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[int]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def items(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        return zip(self._keys, self._counts)


def bucket_key(alias: str, sql: str, stack: tuple, prefetch: tuple | None, allow: tuple | None,
               hop: Hop | None) -> tuple:
    """Statements with this key share a bucket. Stacks are interned per capture, so their
    identity is a cheap, exact key; hops that look alike (same SQL, same line) but differ in
    descriptor or path stay apart (x.parent.parent, a/z paths)."""
    return (alias, sql, id(stack), prefetch, id(allow), hop.key if hop is not None else None)


def params_hash(params: Any) -> int:
    try:
        return hash(repr(params))
    except Exception:  # a parameter whose repr fails still has an identity
        return id(params)


@dataclass
class Capture:
    """All statements recorded in one request or one ``detect()`` block."""

    buckets: dict = field(default_factory=dict)
    seq: int = 0  # statements recorded (exact)
    parent: Capture | None = None
    propagate: bool = False  # also record into the enclosing capture (panel inside a test)
    roots: list[Root] = field(default_factory=list)
    accessed: set = field(default_factory=set)  # (id(root), path) pairs that were read
    loaded: dict = field(default_factory=dict)  # (id(root), path) -> objects eager loading put there (>= 1)
    diffed: dict = field(default_factory=dict)  # (model, stack key) -> SaveSummary of that call site's saves
    _stacks: dict = field(default_factory=dict)
    _built: dict = field(default_factory=dict)  # interned build stacks (frames.build_stack)
    dropped: int = 0
    installed: list = field(default_factory=list)  # connections this capture gave the wrapper
    installed_ids: set = field(default_factory=set)  # their ids (the capture keeps them alive)
    hops: dict = field(default_factory=dict)  # interned Hops: (descriptor, class, Source) -> Hop
    skipped: set = field(default_factory=set)  # bucket keys of the toolbar's own statements
    anchor: Any = None  # the frame that started the capture: stacks are walked up to it
    ignored: int = 0  # statements run inside ignore_n_plus_one()
    snapshots_left: int = SNAPSHOTS_PER_CAPTURE  # loaded instances that still get LOADED_ATTR
    serial: int = field(default_factory=lambda: next(_serials))  # tells this capture's Loaded apart

    def stack(self, skip: int = 1) -> tuple:
        """The caller's raw stack up to the capture's anchor, interned per capture.

        The lookup key is built from ints (code ids and instruction offsets, template node and
        framework payload ids, see ``frames.stack_key``): hashing code objects or computing
        line numbers on every statement is what a naive walk spends its time on. Objects and
        line numbers are collected only the first time a stack is seen. Frames above the
        anchor (the frame that started the capture) are the same for every statement and are
        not walked.
        """
        key = stack_key(sys._getframe(skip + 1), self.anchor)
        raw = self._stacks.get(key)
        if raw is None:
            raw = self._stacks[key] = raw_from(sys._getframe(skip + 1), self.anchor)
        return raw

    def first_frame(self, skip: int = 1) -> tuple:
        """The stack up to the innermost user (or template) frame: where a queryset was built.

        Library frames on the way are kept (they tell, e.g., that Django admin's changelist
        built the queryset); nothing above the first user frame is walked (``frames.build_stack``).
        """
        return build_stack(sys._getframe(skip + 1), self.anchor, self._built)

    def receivers(self) -> Iterator[Capture]:
        """Who records a statement whose innermost capture is this one.

        A ``detect()`` block sees only its own statements (not those of a nested block);
        a request's panel sees every statement of the request, nested blocks included;
        and a panel forwards its own statements to the block around it (a test client
        request inside ``assert_no_n_plus_one()``).
        """
        yield self
        forward = self.propagate
        capture = self.parent
        while capture is not None:
            if capture.propagate or forward:
                yield capture
            forward = False
            capture = capture.parent

    @property
    def records(self) -> list[Record]:
        """Sample records of every bucket, in the order the buckets started."""
        return [r for bucket in self.buckets.values() for r in bucket.samples]

    def add(self, record: Record, key: tuple) -> None:
        """Add ``record`` to the bucket ``key`` (:func:`bucket_key`) of each receiving capture."""
        if self.parent is None:  # the common case: one capture per request
            self.add_own(record, key)
            return
        for capture in self.receivers():
            capture.add_own(record, key)

    def add_own(self, record: Record, key: tuple) -> None:
        record.seq = self.seq
        self.seq += 1
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(record.alias, record.sql, record.stack, record.prefetch, record.seq,
                                                record.allow, key[5])
        bucket.add(record)

    def release(self) -> None:
        """Break the one reference cycle a capture holds (a root and the statement that evaluated
        it), once the analysis is done: the panel's capture, with its roots' Query objects, is
        then freed by reference counting instead of waiting for a full collection. Not when an
        enclosing capture received the same roots (a request inside ``detect()``): it still
        needs them."""
        if self.parent is not None and any(c is not self for c in self.receivers()):
            return
        for root in self.roots:
            root.record = None

    def compact(self) -> None:
        """Shrink a finished capture that is held for later proofs (shared.py): the same analysis,
        less memory. No statement may be recorded into it afterwards."""
        for bucket in self.buckets.values():
            if type(bucket.params) is dict and len(bucket.params) > 8:
                try:
                    bucket.params = ParamCounts(bucket.params)
                except OverflowError:  # a key beyond 64 bits (an id() fallback): keep the dict
                    pass

    def add_root(self, root: Root) -> None:
        for capture in self.receivers():
            if len(capture.roots) < MAX_ROOTS:
                capture.roots.append(root)

    def note_access(self, key: tuple) -> None:
        for capture in self.receivers():
            capture.accessed.add(key)

    def note_loaded(self, key: tuple, objects: int) -> None:
        """``objects`` related objects were loaded eagerly at ``key`` (prefetch or select_related)."""
        for capture in self.receivers():
            capture.loaded[key] = capture.loaded.get(key, 0) + objects


_current: ContextVar[Capture | None] = ContextVar("ddt_prefetch_panel_capture", default=None)
# What the ORM hooks (hooks.py) know about the statement being executed; the cursor
# wrapper reads them into each Record.
# The ORM query whose SQL is being executed (set by the SQLCompiler hook).
current_query: ContextVar[Any] = ContextVar("ddt_prefetch_panel_query", default=None)
# Set while the current query runs for ``.iterator()`` (a chunked fetch): a prefetch cannot serve it.
chunked_fetch: ContextVar[bool] = ContextVar("ddt_prefetch_panel_chunked", default=False)
# The single-valued relation being read (FK, O2O, GFK, deferred field) while it loads.
active_hop: ContextVar[Hop | None] = ContextVar("ddt_prefetch_panel_hop", default=None)
# (parent Source, attribute) while prefetch_related loads one level.
active_prefetch: ContextVar[tuple | None] = ContextVar("ddt_prefetch_panel_prefetch", default=None)
# The fields a save() changes, while its UPDATE runs (hooks._wrap_do_update, a few per model).
write_changes: ContextVar[SaveSummary | None] = ContextVar("ddt_prefetch_panel_write_changes", default=None)
# Set while prefetch_related_objects(), called by the user's code (not by a queryset), prefetches
# a single instance: in a loop, that is the N+1 it exists to avoid.
per_instance_prefetch: ContextVar[bool] = ContextVar("ddt_prefetch_panel_per_instance", default=False)
# (Query, Root) while a root queryset runs its first statement.
evaluating: ContextVar[tuple | None] = ContextVar("ddt_prefetch_panel_evaluating", default=None)
# Set inside ignore_n_plus_one(): True, statements are counted but not analysed; a tuple of
# ALLOW-style patterns, statements are recorded with them and findings they match are dropped.
ignoring: ContextVar[bool | tuple] = ContextVar("ddt_prefetch_panel_ignoring", default=False)
# Set while the capture machinery itself runs queries (EXPLAIN), so they are not recorded.
suspended: ContextVar[bool] = ContextVar("ddt_prefetch_panel_suspended", default=False)


def current() -> Capture | None:
    """The innermost active capture of this thread/task, or ``None``."""
    return _current.get()


def execute_wrapper(execute, sql, params, many, context):
    capture = _current.get()
    if capture is None or suspended.get():
        return execute(sql, params, many, context)
    ignored = ignoring.get()
    if ignored is True:
        for receiver in capture.receivers():
            receiver.ignored += 1
        return execute(sql, params, many, context)
    start = time.perf_counter()
    error = None
    try:
        return execute(sql, params, many, context)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        duration = time.perf_counter() - start
        try:
            _record(capture, context, sql, params, many, duration, error, ignored or None)
        except Exception:  # never let the debugging tool break the user's query
            capture.dropped += 1


def _record(capture: Capture, context: dict, sql: Any, params: Any, many: bool,
            duration: float, error: str | None, allow: tuple | None = None) -> None:
    """Count one statement in its bucket; build a Record only when the bucket keeps it.

    A loop's statements after the first few only add to their bucket's exact totals
    (:meth:`Bucket.tally`): no Record, no Call, no sample.
    """
    if not isinstance(sql, str):
        sql = sql.decode("utf-8", "replace") if isinstance(sql, bytes) else str(sql)
    if len(sql) > MAX_SQL_CHARS:
        # Keyed by a prefix plus the full length: huge statements stay distinct but cheap.
        sql = f"{sql[:MAX_SQL_CHARS]} /* ... {len(sql) - MAX_SQL_CHARS} more characters */"
    query = current_query.get()
    tag = None if query is None else query.__dict__.get("_ddtpp")
    hop = None if tag is None else tag.hop
    if hop is None:
        hop = active_hop.get()
    pending_prefetch = active_prefetch.get()
    if pending_prefetch is None:
        prefetch = None
    elif pending_prefetch[0] is not None:
        parent, attr = pending_prefetch
        prefetch = (id(parent.root), parent.path + (attr,))
    else:
        prefetch = (None, (pending_prefetch[1],))
    connection = context.get("connection")
    alias = getattr(connection, "alias", "default")
    stack = capture.stack(3)
    key = bucket_key(alias, sql, stack, prefetch, allow, hop)
    per_instance = pending_prefetch is not None and per_instance_prefetch.get()
    pending = evaluating.get()
    root = pending[1] if pending is not None and pending[0] is query else None
    bucket = capture.buckets.get(key)
    if bucket is None:
        if key in capture.skipped:
            return
        if _toolbar_tables and any(table in sql for table in _toolbar_tables):
            capture.skipped.add(key)
            return
    elif (root is None or not root.needs_record()) and capture.parent is None and not bucket.needs_record(duration):
        bucket.add_hop(hop)
        if tag is not None and tag.base is not None and len(bucket.calls) < 2:
            call = tag.call(query)
            if call is not None:
                bucket.calls.add(call)
        seq = capture.seq
        capture.seq = seq + 1
        if root is not None:
            root.seq = seq
        bucket.tally(seq, duration, error, params, per_instance)
        return
    else:
        sql = bucket.sql  # one string per bucket, not one per kept statement
    record = Record(
        alias=alias,
        sql=sql,
        params=params,
        duration=duration,
        stack=stack,
        hop=hop,
        model=None if query is None else query.model,
        many=many,
        error=error,
        prefetch=prefetch,
        call=tag.call(query) if tag is not None and tag.base is not None else None,
        allow=allow,
        per_instance=per_instance,
        changes=write_changes.get(),
        root=root,
    )
    if root is not None:
        root.record = record
    capture.add(record, key)
    if root is not None:
        root.seq = record.seq
        if not root.keyed() and capture.parent is None:
            _drop_unshown_params(capture.buckets[key], record)


def _drop_unshown_params(bucket: Bucket, record: Record) -> None:
    """A statement kept only because it evaluated a root that is not loaded by key (per row,
    ``order.pizzas.prefetch_related(...)``, whose eager loads need the Record) keeps its parameters
    only if it is one of its bucket's shown samples: nothing else reads them (the bucket counted
    them), and a request's thousand per-row roots would hold a thousand tuples."""
    if record is not bucket.slowest and all(sample is not record for sample in bucket.samples):
        record.params = None


@contextmanager
def capturing(propagate: bool = False) -> Iterator[Capture]:
    """Record every statement on every database alias until the block exits."""
    capture, token = start(propagate)
    try:
        yield capture
    finally:
        stop(capture, token)


def start(propagate: bool = False, anchor: Any = None) -> tuple[Capture, Any]:
    """Begin a capture without a ``with`` block (the panel's enable/disable hooks).

    ``anchor`` is the frame that starts the capture and stays on the stack while it runs
    (the toolbar middleware's, or the user's ``with detect():`` frame); by default the
    first user frame above this call.
    """
    if anchor is None:
        anchor = first_user_frame(sys._getframe(1))
    _find_toolbar_tables()
    capture = Capture(parent=_current.get(), propagate=propagate, anchor=anchor)
    token = _current.set(capture)
    for alias in connections:
        use_connection(capture, connections[alias])
    return capture, token


def _find_toolbar_tables() -> None:
    global _toolbar_tables
    if _toolbar_tables:
        return
    from django.apps import apps

    if apps.ready and apps.is_installed("debug_toolbar"):
        from debug_toolbar.panels.sql.tracking import DDT_MODELS

        _toolbar_tables = DDT_MODELS  # the same set object: DDT adds its cache table later


def stop(capture: Capture, token: Any) -> None:
    release_connections(capture)
    capture.anchor = None  # do not keep the frame (and its locals) alive with the stats
    try:
        _current.reset(token)
    except ValueError:
        # Reset from another context (an async server may finish elsewhere): the
        # capture is simply no longer current there.
        _current.set(capture.parent)


_wrapper_lock = threading.Lock()


def use_connection(capture: Capture, connection: Any) -> None:
    """Give ``connection`` the execute wrapper for ``capture`` (once per capture).

    Connections count the captures using them: under ASGI, concurrent requests share the
    connection of the one sync thread, so the wrapper stays until the last of them stops.
    """
    if id(connection) in capture.installed_ids:
        return
    with _wrapper_lock:
        connection._ddtpp_users = getattr(connection, "_ddtpp_users", 0) + 1
        if execute_wrapper not in connection.execute_wrappers:
            connection.execute_wrappers.append(execute_wrapper)
    capture.installed.append(connection)
    capture.installed_ids.add(id(connection))


def release_connections(capture: Capture) -> None:
    with _wrapper_lock:
        for connection in capture.installed:
            users = getattr(connection, "_ddtpp_users", 1) - 1
            connection._ddtpp_users = max(users, 0)
            if users <= 0:
                try:
                    connection.execute_wrappers.remove(execute_wrapper)
                except ValueError:
                    pass


@contextmanager
def ignore(patterns: tuple[dict, ...] = ()) -> Iterator[None]:
    """Statements inside the block are not analysed (they are only counted).

    With ``patterns`` (``ALLOW`` entries) only findings they match are dropped; the patterns
    add to those of an enclosing block, and a block without patterns ignores everything.
    """
    outer = ignoring.get()
    if outer is True or not patterns:
        scope: bool | tuple = True
    else:
        scope = (outer or ()) + tuple(patterns)
    token = ignoring.set(scope)
    try:
        yield
    finally:
        ignoring.reset(token)


@contextmanager
def suspend() -> Iterator[None]:
    """Run queries that belong to the analysis (EXPLAIN, introspection), not to the user."""
    token = suspended.set(True)
    try:
        yield
    finally:
        suspended.reset(token)
