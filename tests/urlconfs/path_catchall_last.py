from django.urls import include, path

from . import page_view

urlpatterns = [
    path("<path:path>", page_view),
    path("__debug__/", include("debug_toolbar.urls")),
]
