from debug_toolbar.toolbar import debug_toolbar_urls
from django.urls import include, path


def always_show(request) -> bool:
    return True


urlpatterns = [path("", include("shop.urls"))] + debug_toolbar_urls()
