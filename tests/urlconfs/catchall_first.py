"""The toolbar's URLs first, then the catch-all: what the README says."""

from django.urls import include, path, re_path

from . import page_view

urlpatterns = [
    path("__debug__/", include("debug_toolbar.urls")),
    re_path(r"^(?P<path>.*)$", page_view),
]
