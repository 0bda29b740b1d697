"""The published test cases of django-zeal and nplusone, run through our ``detect()``.

Re-expressed from (not copied; both MIT licence):

* django-zeal 2.2.1, Copyright 2024 Tao Bojlén: ``tests/test_nplusones.py``, ``tests/test_listeners.py``,
  ``tests/test_patch.py``, ``tests/test_signals.py``;
* nplusone 1.0.0, Copyright 2016 Joshua Carp: ``tests/testapp/testapp/tests.py`` and ``views.py``.

The scenarios live in ``tests/peers/cases.py`` on models shaped like theirs (``tests/peers/social``,
``tests/peers/testapp``), so ``make peers`` can run the very same scenarios under zeal and nplusone
themselves. Here every case asserts what a user relies on:

* must report: an ``n_plus_one`` (or ``unused_prefetch``) finding naming each expected relation,
  with the lookup (and, where issue 13 asks for it, the method) of the fix;
* must stay quiet: no finding of the kinds the peer's own test asserts on.

zeal's threshold is 2 (our default); nplusone reports a single lazy load, so its cases run with
``detect(THRESHOLD=1)``. Cases that fail only because a feature listed in issue 13 is missing are
``xfail(strict=True)``: they turn into failures as soon as the feature lands, and the marker goes.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import pytest

from ddt_prefetch_panel import detect
from tests.peers.cases import CASES, Case, ours_allow

pytestmark = pytest.mark.django_db


# Case id -> why it fails today (measured; see the module docstring).
XFAIL: dict[str, str] = {}


class OurEnv:
    """The scenario environment for our product: ``detect()`` blocks and ``ignore_n_plus_one()``."""

    def __init__(self, data: dict[str, Any], options: dict[str, Any]) -> None:
        self.data = data
        self.options = options
        self.reports: list[Any] = []

    def ignore(self, patterns: list[dict[str, str]] | None = None) -> Any:
        from ddt_prefetch_panel.testing import ignore_n_plus_one

        return ignore_n_plus_one(*ours_allow(patterns)) if patterns else ignore_n_plus_one()

    @contextmanager
    def context(self) -> Iterator[None]:
        with detect(**self.options) as report:
            yield
        self.reports.append(report)


def run_ours(case: Case) -> list[Any]:
    """Every finding of every detection block of the case."""
    options: dict[str, Any] = {"THRESHOLD": case.threshold}
    if case.allow:
        options["ALLOW"] = ours_allow(case.allow)
    env = OurEnv(case.setup(), options)
    for block in case.blocks:
        if case.wrap:
            with env.context():
                block(env)
        else:
            block(env)
    return [finding for report in env.reports for finding in report.findings]


def summary(findings: list[Any]) -> str:
    return "\n".join(
        f"  {f.kind} relation={f.relation} lookup={f.lookup} method={f.method} count={f.count}"
        f" at {(f.callsite or {}).get('code')!r}" for f in findings
    ) or "  (no findings)"


def check(case: Case, findings: list[Any]) -> None:
    if case.expect == "quiet":
        loud = [f for f in findings if f.kind in case.silent]
        assert not loud, f"{case.id} must stay quiet ({case.source}); got:\n{summary(loud)}"
        return
    of_kind = [f for f in findings if f.kind == case.kind]
    assert of_kind, f"{case.id}: no {case.kind} finding ({case.source}); got:\n{summary(findings)}"
    named = {f.relation for f in of_kind}
    missing = [relation for relation in case.relations if relation not in named]
    assert not missing, f"{case.id}: {case.kind} not named on {missing}; got:\n{summary(findings)}"
    main = next((f for f in of_kind if f.relation == case.relations[0]), of_kind[0]) if case.relations else of_kind[0]
    if case.lookup:
        assert case.lookup in {f.lookup for f in of_kind}, f"{case.id}: lookup {case.lookup!r} expected:\n{summary(findings)}"
    if case.method:
        assert main.method == case.method, f"{case.id}: method {case.method!r} expected:\n{summary(findings)}"
    if case.callsite_code:
        code = (main.callsite or {}).get("code") or ""
        assert case.callsite_code in code, f"{case.id}: call site {case.callsite_code!r} expected, got {code!r}"


def params() -> list[Any]:
    return [
        pytest.param(case, id=case.id, marks=[pytest.mark.xfail(strict=True, reason=XFAIL[case.id])]
                     if case.id in XFAIL else [])
        for case in CASES
    ]


@pytest.mark.parametrize("case", params())
def test_peer_case(case: Case) -> None:
    check(case, run_ours(case))


def test_case_counts() -> None:
    """The port covers every reporting case of both suites (see README, "Peer test cases")."""
    counts: dict[tuple[str, str, str], int] = {}
    for case in CASES:
        key = (case.peer, case.expect, case.kind if case.expect == "report" else "-")
        counts[key] = counts.get(key, 0) + 1
    assert counts == {
        ("zeal", "report", "n_plus_one"): 39,
        ("zeal", "quiet", "-"): 73,
        ("nplusone", "report", "n_plus_one"): 2,
        ("nplusone", "report", "unused_prefetch"): 6,
        ("nplusone", "quiet", "-"): 26,
    }
    assert len({case.id for case in CASES}) == len(CASES)
