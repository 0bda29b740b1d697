"""Ready-made pages, as a third-party app ships them: a searchable list view to subclass and
a table view to wire in urls.py as is."""

from __future__ import annotations

from pathlib import Path

from django.db.models import Q
from django.http import HttpResponse
from django.template import Context, Engine
from django.views.generic import ListView

from . import export_rows, load_by_key

# The library's own templates, through a private engine (as django.views.debug does), so the
# project needs no INSTALLED_APPS entry for them.
ENGINE = Engine(dirs=[str(Path(__file__).resolve().parent / "templates")])


class SearchListView(ListView):
    """A list page filtered by ``?q=`` over ``search_fields``: subclass it and set ``model``."""

    search_fields: list[str] = []

    def get_queryset(self):
        queryset = self.model._default_manager.all()
        query = self.request.GET.get("q")
        if query:
            condition = Q()
            for name in self.search_fields:
                condition |= Q(**{f"{name}__icontains": query})
            queryset = queryset.filter(condition)
        return queryset


def model_table(request, model, columns, prefetch=()):
    """Every row of ``model`` as a table, with the relations ``prefetch`` names loaded up front. In
    urls.py: ``path("table/", model_table, {"model": Book, "columns": ["title", "author__name"]})``."""
    rows = export_rows(model._default_manager.order_by("pk").prefetch_related(*prefetch), columns)
    template = ENGINE.get_template("ddtpp_fakelib/table.html")
    return HttpResponse(template.render(Context({"columns": columns, "rows": rows})))


def rows_by_key(request, model):
    """Every row's name, each row loaded by its key. In urls.py:
    ``path("by-key/", rows_by_key, {"model": Book})``."""
    return HttpResponse("\n".join(str(obj) for obj in load_by_key(model)))
