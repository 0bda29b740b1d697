"""A generic export library: it reads attribute paths off model instances, the way admin
exporters, CMS template tags and search backends do."""

from __future__ import annotations

from typing import Any


def export_model(model: Any, fields: list[str]) -> list[list[Any]]:
    """Builds its own queryset and loops over it: nothing here is the project's code."""
    queryset = model._default_manager.order_by("pk")
    return export_rows(queryset, fields)


def export_rows(queryset: Any, fields: list[str]) -> list[list[Any]]:
    """Loops over a queryset the caller built."""
    rows = []
    for obj in queryset:
        rows.append([read_path(obj, path) for path in fields])
    return rows


def read_path(obj: Any, path: str) -> Any:
    for part in path.split("__"):
        obj = getattr(obj, part)
    return obj
