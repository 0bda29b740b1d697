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
