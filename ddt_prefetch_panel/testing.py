"""Test mode: fail a test on the same findings the panel shows.

    from ddt_prefetch_panel.testing import assert_no_n_plus_one

    with assert_no_n_plus_one():
        client.get("/orders/")

    @assert_no_n_plus_one(kinds=["n_plus_one", "duplicate"])
    def test_orders(client): ...
"""

from __future__ import annotations

from contextlib import ContextDecorator, contextmanager
from typing import Any, Iterator

from .analyze import detect
from .capture import ignore
from .conf import allow_errors
from .findings import Finding, Report, kind_title, note_without_proof, where

DEFAULT_TEST_KINDS = ("n_plus_one",)


def _where(frame: dict | None) -> str:
    return where(frame, unknown="an unknown call site")


def describe(finding: Finding) -> str:
    """One failure line: what, where it repeats, where to fix, and the fix."""
    subject = finding.relation or finding.model or "a query"
    label = kind_title(finding.kind)
    text = f"{label[:1].upper()}{label[1:]} detected on {subject} at {_where(finding.callsite)}"
    text += f" ({finding.count} queries, {finding.avoidable} avoidable)"
    if finding.origin:
        code = f": {finding.origin['code']}" if finding.origin.get("code") else ""
        text += f"\n    queryset built at {_where(finding.origin)}{code}"
    proof = finding.proof or {}
    fix = finding.snippets.get("line") or finding.snippets.get("fix")
    shown = bool(fix) and proof.get("status") != "failed"
    if shown:
        text += "\n    fix: " + fix.replace("\n", "\n         ")
    proof_line = describe_proof(proof, shown)
    if proof_line:
        text += f"\n    proof: {proof_line}"
    note = note_without_proof(finding.note, proof) if proof_line else finding.note
    if note and not shown:
        text += f"\n    note: {note}"
    return text


def describe_proof(proof: dict | None, shown: bool = True) -> str:
    """``verified on this request: 11 -> 1 queries``, or why the fix is not verified (and, when
    it is not shown, what was tried)."""
    if not proof or not proof.get("status"):
        return ""
    if proof["status"] == "verified":
        rows = f" ({proof['rows']} rows replayed)" if proof.get("rows") else ""
        return f"verified on this request: {proof.get('before')} -> {proof.get('after')} queries{rows}"
    detail = (proof.get("detail") or "no reason recorded").rstrip(".")
    text = f"{'failed' if proof['status'] == 'failed' else 'not verified'}: {detail}"
    if not shown and proof.get("fix"):
        text += f"; tried {proof['fix']}, so no fix is shown"
    return text


def failure_message(findings: list[Finding], fixes: list[dict] | None = None) -> str:
    """The findings, then each combined fix that serves several of them (one per queryset)."""
    head = f"{len(findings)} query problem{'s' if len(findings) != 1 else ''} found by ddt-prefetch-panel:"
    text = head + "\n" + "\n".join(f"  {i}. {describe(f)}" for i, f in enumerate(findings, 1))
    for fix in fixes or []:
        served = [f for f in findings if f.fix_id is not None and fixes[f.fix_id] is fix]
        if len(served) < 2:
            continue
        proof = fix.get("proof") or {}
        numbers = ", ".join(str(findings.index(f) + 1) for f in served)
        text += (f"\n  one fix for {numbers}, at {_where(fix.get('origin'))}"
                 f" (verified on this request: {proof.get('before')} -> {proof.get('after')} queries):"
                 f"\n    {fix.get('line') or fix.get('fix')}")
    return text


class assert_no_n_plus_one(ContextDecorator):
    """Raise ``AssertionError`` naming each finding (relation, call site, origin, fix).

    ``threshold``, ``kinds`` (default: N+1 only) and ``allow`` (extra allowlist entries) override
    the ``DDT_PREFETCH_PANEL`` settings, which the panel shares. Library-only findings (built
    and looped by installed packages, ``Finding.library``) fail the test only with ``library=True``.
    """

    def __init__(self, *, threshold: int | None = None, kinds: list[str] | tuple[str, ...] | None = None,
                 allow: list[dict] | None = None, library: bool = False) -> None:
        self.library = library
        self.options: dict[str, Any] = {"KINDS": list(kinds or DEFAULT_TEST_KINDS)}
        if threshold is not None:
            self.options["THRESHOLD"] = threshold
        self.extra_allow = list(allow or [])
        self.report: Report | None = None
        self._stack: list = []

    def __enter__(self) -> assert_no_n_plus_one:
        from .conf import get_config

        options = dict(self.options)
        if self.extra_allow:
            options["ALLOW"] = list(get_config().get("ALLOW") or []) + self.extra_allow
        manager = detect(**options)
        self.report = manager.__enter__()
        self._stack.append(manager)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        manager = self._stack.pop()
        manager.__exit__(exc_type, exc, tb)
        failing = [f for f in self.report.findings if self.library or not f.library] if self.report else []
        if exc_type is None and failing:
            raise AssertionError(failure_message(failing, self.report.fixes))
        return False


@contextmanager
def ignore_n_plus_one(*patterns: dict | list[dict]) -> Iterator[None]:
    """Queries inside this block are never reported (by the panel or by test mode).

    With patterns (the entries of the ``ALLOW`` setting, e.g. ``{"relation": "shop.Order.customer"}``
    or ``{"model": "auth.*"}``; a list of them is accepted too) only the findings they match
    are dropped, everything else in the block is still reported. Patterns of nested blocks
    add up; an invalid pattern raises ``ValueError``.
    """
    entries: list[dict] = []
    for pattern in patterns:
        entries.extend(pattern if isinstance(pattern, (list, tuple)) else [pattern])
    errors = allow_errors(entries)
    if errors:
        raise ValueError(" ".join(message for _id, message in errors))
    with ignore(tuple(entries)):
        yield
