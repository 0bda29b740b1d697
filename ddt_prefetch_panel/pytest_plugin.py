"""pytest plugin (registered through the ``pytest11`` entry point).

* marker: ``@pytest.mark.no_n_plus_one(threshold=..., kinds=[...], allow=[...])`` runs the whole
  test inside ``assert_no_n_plus_one``;
* fixture: ``assert_no_n_plus_one`` gives the context manager, for one block of a test.

Nothing here imports Django at import time: pytest loads plugins before settings exist.
"""

from __future__ import annotations

from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "no_n_plus_one(threshold=None, kinds=None, allow=None): fail the test on N+1 queries "
        "(ddt-prefetch-panel test mode)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    marker = item.get_closest_marker("no_n_plus_one")
    if marker is None:
        return (yield)
    from .testing import assert_no_n_plus_one

    with assert_no_n_plus_one(**marker.kwargs):
        return (yield)


@pytest.fixture(name="assert_no_n_plus_one")
def assert_no_n_plus_one_fixture() -> Any:
    from .testing import assert_no_n_plus_one

    return assert_no_n_plus_one
