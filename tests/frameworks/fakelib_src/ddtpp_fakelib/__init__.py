"""A generic export library (its table view can prefetch): it reads attribute paths off model instances, the way admin
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


def export_with_types(queryset: Any) -> list[tuple[Any, Any]]:
    """Looks the same content type up again for every row (the same statement each time)."""
    from django.contrib.contenttypes.models import ContentType

    rows = []
    for obj in queryset:
        meta = obj._meta
        content_type = ContentType.objects.filter(app_label=meta.app_label, model=meta.model_name).first()
        rows.append((obj.pk, content_type.pk))
    return rows


# Ready-made pages (a list view to subclass, a table view to wire as is): ddtpp_fakelib.views.


def load_by_key(model: Any) -> list[Any]:
    """Every row loaded by its key, one query per row, as sitemaps and search backends do."""
    keys = list(model._default_manager.order_by("pk").values_list("pk", flat=True))
    return [model._default_manager.get(pk=key) for key in keys]
