from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """The library-only scenarios need a package really installed in site-packages."""
    from tests.frameworks.fakelib import ensure_installed

    ensure_installed()


@pytest.fixture
def pizzeria(db):
    """The demo's seeded pizzeria (deterministic data)."""
    from shop.seed import seed

    seed(orders=10)
    return None


@pytest.fixture(autouse=True)
def no_requests_held_from_other_tests():
    """The panel holds each request's capture for the shared-line proofs (shared.py): a request
    another test made in this process is never one of "the other requests" of this test's fix
    (under xdist, which tests share a process varies from run to run)."""
    from ddt_prefetch_panel import shared

    shared._held.clear()
    yield


@pytest.fixture(autouse=True)
def every_finding_with_a_user_frame_has_a_call_site(monkeypatch):
    """Suite-wide (issue 20): no finding has ``callsite`` None while a frame of the project (or
    one of its templates) is on its stack: every report any test makes is checked."""
    from ddt_prefetch_panel import analyze

    summarize = analyze.summarize

    def checked(capture, findings, allowed):
        for finding in findings:
            assert finding.callsite is not None or not finding.stack, (
                f"{finding.kind} {finding.relation or finding.model} has no call site but user frames "
                f"{[(f or {}).get('filename') for f in finding.stack]}")
        return summarize(capture, findings, allowed)

    monkeypatch.setattr(analyze, "summarize", checked)
