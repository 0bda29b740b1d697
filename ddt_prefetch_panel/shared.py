"""Stage 6b, prove across requests: a fix at a shared place is proven on every request through it.

A proven fix goes on the line that built this request's root queryset. That line may build the
root querysets of other requests too: a helper both views call, a model method, the same view
with other parameters. Pasted there, the fix changes them all, and a prefetch that one page
reads is one more query on a page that does not. So before a fix is shown, it is replayed on
every root queryset that the other stored requests built on that line, walking what each of
those requests read from its rows (the reads the hooks saw); the fix is shown only if none of
them runs more statements or fails with it. Otherwise it is withheld, with the pages it would
hurt and the narrower place to use instead.

The other requests are the panel's, held here for the last ``RESULTS_CACHE_SIZE`` requests of
this process that DDT still stores (their roots' queries, never their rows; lazy.py makes the
proofs of the same captures when the panel is opened), or the pages of a crawl
(:func:`crawling`). A fix proven at the end of a request (``PROOF_MODE="eager"``) sees the
requests before it; a proof made when the panel is opened sees every request held then.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from . import capture as cap
from .frames import build_site
from .hooks import accessor_name
from .plans import FixPlan, withhold_plan
from .prove import PROOF_ERRORS, Budget, Limits, dropped_rows, run, short_error, steps_for
from .relate import describe_path, parent_link_path, rebase

if TYPE_CHECKING:
    from .analyze import NPlusOne

MAX_OTHERS = 8  # other requests replayed per fix (the newest first); the rest are named as unchecked
THIS_PAGE = "another queryset of this page"  # a root of the same request, built on the same line


@dataclass
class Held:
    """A finished request's capture, kept for proofs: lazy ones and those of other requests."""

    capture: cap.Capture
    label: str  # "GET /posts/?page=2"
    pending: bool = False  # its own proofs wait for the panel to be opened (lazy.py)


_held: OrderedDict[str, Held] = OrderedDict()
_held_lock = threading.Lock()
_crawl: ContextVar[list[Held] | None] = ContextVar("ddtpp_crawl", default=None)


def _store_size() -> int:
    from debug_toolbar import settings as dt_settings

    return max(1, int(dt_settings.get_config().get("RESULTS_CACHE_SIZE") or 25))


def remember(request_id: str, capture: cap.Capture, label: str, pending: bool = False) -> None:
    """Hold a request's capture, by DDT request id, among the last ``RESULTS_CACHE_SIZE``."""
    size = _store_size()
    capture.compact()
    with _held_lock:
        _held[request_id] = Held(capture, label, pending)
        _held.move_to_end(request_id)
        evicted = [_held.popitem(last=False)[1] for _ in range(len(_held) - size)]
    for old in evicted:
        old.capture.release()


def take_pending(request_id: str | None) -> cap.Capture | None:
    """The capture whose proofs wait for the panel, once: later readers get the stored proofs."""
    with _held_lock:
        held = _held.get(request_id) if request_id else None
        if held is None or not held.pending:
            return None
        held.pending = False
        return held.capture


def pending_ids() -> list[str]:
    with _held_lock:
        return [request_id for request_id, held in _held.items() if held.pending]


def _still_stored() -> set[str] | None:
    """The request ids DDT's store still has (None: the store cannot say cheaply)."""
    from debug_toolbar.store import MemoryStore, get_store

    store = get_store()
    if not (isinstance(store, type) and issubclass(store, MemoryStore)):
        return None  # a database or cache store: asking costs a query, our own bound holds
    return {str(request_id) for request_id in store.request_ids()}


def others(capture: cap.Capture) -> list[Held]:
    """The other requests a fix is replayed on, newest first: the crawl's pages, or the panel's
    requests that DDT still stores (a cleared history is not replayed)."""
    crawl = _crawl.get()
    if crawl is not None:
        return [held for held in reversed(crawl) if held.capture is not capture]
    with _held_lock:
        items = list(_held.items())
    if not items:
        return []  # detect() without the toolbar: nothing held, the toolbar never imported
    stored = _still_stored()
    return [held for request_id, held in reversed(items)
            if held.capture is not capture and (stored is None or request_id in stored)]


@contextmanager
def crawling() -> Iterator[list[Held]]:
    """The pages of a crawl, proven against each other (``prefetch_report``): add each page's
    :class:`Held` to the list, and analyse the pages once all of them were requested."""
    pages: list[Held] = []
    token = _crawl.set(pages)
    try:
        yield pages
    finally:
        _crawl.reset(token)
        for held in pages:
            held.capture.release()


# --------------------------------------------------------------------------- the proof


def _line_key(frame: object | None) -> tuple | None:
    return (frame.filename, frame.lineno) if frame is not None else None


def largest_root_through(held: Held, key: tuple, exclude: cap.Root) -> cap.Root | None:
    """The replayable root with the most rows a request built on the line ``key`` (``exclude``,
    the fix's own root, and the looped root a rebased one stands for, are not others)."""
    mine = (exclude, exclude.base)
    roots = [root for root in held.capture.roots
             if all(root is not own for own in mine) and root.rows and root.query is not None
             and root.queryset_class is not None and _line_key(build_site(root.origin).frame) == key]
    return max(roots, key=lambda root: root.rows, default=None)


def read_paths(capture: cap.Capture, root: cap.Root) -> set[tuple[str, ...]]:
    """The relation paths a request read from a root's rows: loaded lazily (the hops the
    hooks recorded) or from an eager load (the reads they noted)."""
    paths = {path for root_id, path in capture.accessed if root_id == id(root)}
    paths.update(hop.source.path + (accessor_name(hop.descriptor),) for hop in capture.hops.values()
                 if hop.source is not None and hop.source.root is root)
    return paths


def _reads(held: Held, root: cap.Root) -> list:
    """What that request read from the root's rows, as replay walks."""
    described = (describe_path(root.model, path) for path in sorted(read_paths(held.capture, root)))
    return [steps_for(hops) for hops in described if hops]


def replay_elsewhere(plan: FixPlan, held: Held, root: cap.Root, limits: Limits, budget: Budget) -> tuple | None:
    """``(label, before, after, error)`` when the fix makes that request's root run more
    statements or fail; None when it does not."""
    if plan.root.base is not None:
        return _replay_rebased(plan, held, root, limits, budget)
    walks = _reads(held, root)
    rows = min(max(root.rows, 1), limits.max_rows)
    try:
        with budget.timed():
            before, read_before, _ = run(root, None, walks, plan.names, rows)
            after, read_after, _ = run(root, plan.fix, walks, plan.names, rows)
    except PROOF_ERRORS as exc:
        return held.label, None, None, f"{type(exc).__name__}: {short_error(exc)}"
    if after > before:
        return held.label, before, after, None
    if read_after != read_before:
        return held.label, before, after, "it read other related objects"
    return None


def _replay_rebased(plan: FixPlan, held: Held, root: cap.Root, limits: Limits, budget: Budget) -> tuple | None:
    """A fix that queries a child model (the line's ``Page.objects`` becomes ``ArticlePage.objects``)
    on another request's root built on that line: that root rebased on the child, with the call,
    must return the same rows and run no more statements for what that request read."""
    child, link = plan.root.model, parent_link_path(plan.root.base.model, plan.root.model)
    rebased = rebase(root, child)
    if rebased is None:
        return held.label, None, None, f"its queryset cannot be run on {child.__name__}"
    paths = sorted(read_paths(held.capture, root))
    as_read = [steps_for(hops) for hops in (describe_path(root.model, path) for path in paths) if hops]
    on_child = (path[len(link):] if path[:len(link)] == link else path for path in paths)
    fixed = [steps_for(hops) for hops in (describe_path(child, path) for path in on_child if path) if hops]
    rows = min(max(root.rows, 1), limits.max_rows)
    try:
        with budget.timed():
            before, _, _ = run(root, None, as_read, plan.names, rows)
            after, _, _ = run(rebased, plan.call, fixed, plan.names, rows)
        dropped = dropped_rows(rebased, plan.names, rows, budget)
    except PROOF_ERRORS as exc:
        return held.label, None, None, f"{type(exc).__name__}: {short_error(exc)}"
    if dropped:
        return held.label, before, after, dropped
    if after > before:
        return held.label, before, after, None
    return None


def _hurt_text(hurt: tuple) -> str:
    label, before, after, error = hurt
    if before is None:
        return f"{label} (raises {error})"
    if error:
        return f"{label} ({error})"
    return f"{label} ({before} → {after} queries)"


def prove_shared(plans: list[FixPlan], items: list[NPlusOne], capture: cap.Capture, config: dict,
                 budget: Budget) -> list[FixPlan]:
    """The plans whose fix no other request through their line runs worse; the others are
    withheld (their findings lose the paste-able line and say which pages it would hurt)."""
    limits = Limits.from_config(config)
    if not limits.enabled:
        return plans
    places = {id(item.finding): item.place for item in items if item.finding is not None}
    pool = [Held(capture, THIS_PAGE), *others(capture)]
    kept = []
    for plan in plans:
        place = next((places.get(id(f)) for f in plan.findings if places.get(id(f)) is not None), None)
        if place is None or place.kind != "queryset" or place.frame is None:
            kept.append(plan)
            continue
        key = _line_key(place.frame)
        targets, labels = [], set()
        for held in pool:  # one request per URL: the same page again reads the same
            root = largest_root_through(held, key, plan.root) if held.label not in labels else None
            if root is not None:
                targets.append((held, root))
                labels.add(held.label)
        if not targets:
            kept.append(plan)
            continue
        checked, hurt = [], []
        for held, root in targets[: MAX_OTHERS + 1]:
            if budget.exhausted():
                break
            checked.append(held.label)
            outcome = replay_elsewhere(plan, held, root, limits, budget)
            if outcome is not None:
                hurt.append(outcome)
        if hurt:
            _withhold(plan, place, hurt)
            continue
        kept.append(plan)
        _say_checked(plan, checked, [held.label for held, _ in targets if held.label not in checked])
    return kept


def _say_checked(plan: FixPlan, checked: list[str], unchecked: list[str]) -> None:
    if not checked and not unchecked:
        return
    text = ""
    if checked:
        others = [label for label in checked if label != THIS_PAGE]
        built = [THIS_PAGE] if THIS_PAGE in checked else []
        if others:
            built.append(f"the queryset of {', '.join(others)}")
        text = f" This line also built {' and '.join(built)}: replayed there with what each read, the fix runs no more queries."
    if unchecked:
        text += f" Not replayed on {', '.join(unchecked)} (replay budget or the {MAX_OTHERS} newest only)."
    plan.proof = {**plan.proof, "detail": plan.proof["detail"] + text, "shared": checked}
    for finding in plan.findings:
        if finding.proof and finding.proof.get("status") == "verified":
            finding.proof = {**finding.proof, "detail": finding.proof["detail"] + text, "shared": checked}


def _withhold(plan: FixPlan, place: object, hurt: list[tuple]) -> None:
    where = f"{place.frame.qualname}()" if getattr(place.frame, "qualname", "") else "this line"
    detail = (f"{plan.fix} was proven on this request, but {where} also builds the queryset of other requests, "
              f"and there it costs more: {'; '.join(_hurt_text(h) for h in hurt)}. Add it where this page uses "
              "the queryset instead (the view's own call, or an override in its class), not on the shared line.")
    withhold_plan(plan, {**plan.proof, "status": "failed", "detail": detail, "fix": plan.fix,
                         "hurts": [{"request": label, "before": before, "after": after, "error": error}
                                   for label, before, after, error in hurt]})
