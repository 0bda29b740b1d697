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
from .findings import Finding, Report, kind_title, where

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
    fix = finding.snippets.get("line") or finding.snippets.get("fix")
    if fix:
        text += "\n    fix: " + fix.replace("\n", "\n         ")
    elif finding.note:
        text += f"\n    note: {finding.note}"
    return text


def failure_message(findings: list[Finding]) -> str:
    head = f"{len(findings)} query problem{'s' if len(findings) != 1 else ''} found by ddt-prefetch-panel:"
    return head + "\n" + "\n".join(f"  {i}. {describe(f)}" for i, f in enumerate(findings, 1))


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
            raise AssertionError(failure_message(failing))
        return False


@contextmanager
def ignore_n_plus_one() -> Iterator[None]:
    """Queries inside this block are never reported (by the panel or by test mode)."""
    with ignore():
        yield
