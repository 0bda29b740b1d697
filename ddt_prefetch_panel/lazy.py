"""Proofs off the request path (``PROOF_MODE="lazy"``, the panel's default).

At the end of a request the panel analyses without replays (the page pays for the findings
only); the panel gives the request's capture to shared.py, which holds it by DDT request id for
the last ``RESULTS_CACHE_SIZE`` requests of this process: its roots' queries, never their rows. The
proofs are made when the panel's content is first rendered (DDT renders it on click) or when
the "All requests" tab or an export reads the request; each then says "replayed when opened"
and whether the data changed since. A request no longer held says so and stays unproven.
"""

from __future__ import annotations

import traceback

from . import shared
from .analyze import analyze
from .conf import get_config
from .prove import OPENED


def error_of(exc: Exception) -> dict:
    return {"type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc(limit=8)}


def has_fixes(report: dict | None) -> bool:
    """Whether a report has anything a proof would check (a fix, an unused eager load)."""
    return any(f.get("snippets") and f.get("kind") in ("n_plus_one", "unused_prefetch")
               for f in (report or {}).get("findings") or [])


def prove_held(request_id: str | None, stats: dict) -> dict:
    """The stats of a lazy request with its proofs made now, from the capture this process held
    for it; or, when it holds it no more (evicted by newer requests, another process, a restart),
    the stats saying so: the fixes stay "not verified"."""
    capture = shared.take_pending(request_id)
    if capture is None:
        return {**stats, "proofs": "expired"}
    try:
        report = analyze(capture, {**get_config(), OPENED: True}).to_dict()
    except Exception as exc:  # the panel reports its own failure, never breaks the page
        return {**stats, "proofs": "opened", "error": error_of(exc)}
    return {**stats, "report": report, "proofs": "opened"}
