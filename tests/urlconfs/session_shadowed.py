"""A pattern of the project that matches the panel's session tab URL only."""

from django.urls import include, path

from . import page_view

urlpatterns = [
    path("__debug__/prefetch/<slug:name>/", page_view),
    path("__debug__/", include("debug_toolbar.urls")),
]
