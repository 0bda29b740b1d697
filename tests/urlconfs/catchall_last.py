"""The README's old advice on a site whose last pattern routes every path to a page."""

from django.urls import include, path, re_path

from . import page_view

urlpatterns = [
    re_path(r"^(?P<path>.*)$", page_view),
    path("__debug__/", include("debug_toolbar.urls")),
]
