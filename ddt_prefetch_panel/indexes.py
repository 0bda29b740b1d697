"""Index advisor: WHERE / ORDER BY columns of captured SELECTs without a usable index.

(Being implemented; returns no findings until then.)
"""

from __future__ import annotations

from typing import Any


def index_findings(groups: list, config: dict, context: Any) -> list:
    return []
