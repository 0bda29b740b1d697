"""`make test` runs the suite twice, on SQLite then on PostgreSQL. Tests that never touch the
outer database (subprocess pytest sessions on their own SQLite databases, the benchmark's smoke
run, fresh interpreters importing each module) would repeat the SQLite half exactly: they run
there only, which keeps CI inside its time budget."""

from __future__ import annotations

import os

import pytest

SQLITE_HALF_ONLY = pytest.mark.skipif(bool(os.environ.get("DDTPP_POSTGRES_HOST")),
                                      reason="runs the same in the SQLite half of make test")
