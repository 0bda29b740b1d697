from django.contrib import admin
from django.urls import include, path


def always_show(request) -> bool:
    return True


# Not debug_toolbar_urls(): it returns nothing while DEBUG is False, as it is in tests.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("__debug__/", include("debug_toolbar.urls")),
    path("faults/", include("tests.faults.urls")),
    path("fw/", include("tests.frameworks.catalog.urls")),
    path("places/", include("tests.places.urls")),
    path("proofs/", include("tests.proofs.urls")),
    path("", include("shop.urls")),
]
