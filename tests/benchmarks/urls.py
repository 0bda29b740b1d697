"""The benchmarked pages.

- ``/orders/?n=N``: the synthetic N+1 (one query per order for its customer);
- ``/shop/...``: the demo pizzeria's pages (``demo/shop/urls.py``);
- ``/api/orders/``: nested DRF serializers over the demo's models (when DRF is installed).
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from shop.models import Order


def always_show(request: HttpRequest) -> bool:
    return True


def customer_names(n: int) -> list[str]:
    """N orders, each with its own customer: 1 + N queries, the N+1 the tools must report."""
    return [order.customer.name for order in Order.objects.all()[:n]]


def orders(request: HttpRequest) -> HttpResponse:
    names = customer_names(int(request.GET.get("n", "10")))
    body = "".join(f"<li>{name}</li>" for name in names)
    return HttpResponse(
        f"<!DOCTYPE html><html><head><title>orders</title></head><body><ul>{body}</ul></body></html>"
    )


urlpatterns = [
    path("orders/", orders),
    path("shop/", include("shop.urls")),
]
if "debug_toolbar" in settings.INSTALLED_APPS:
    urlpatterns.append(path("__debug__/", include("debug_toolbar.urls")))
if "rest_framework" in settings.INSTALLED_APPS:
    from tests.benchmarks.api import OrderList

    urlpatterns.append(path("api/orders/", OrderList.as_view()))
