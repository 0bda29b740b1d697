from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def pizzeria(db):
    """The demo's seeded pizzeria (deterministic data)."""
    from shop.seed import seed

    seed(orders=10)
    return None
