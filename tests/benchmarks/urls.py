"""The benchmarked page: a classic N+1 (one query per order for its customer)."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from shop.models import Order


def always_show(request: HttpRequest) -> bool:
    return True


def customer_names(n: int) -> list[str]:
    """N orders, each with its own customer: 1 + N queries, the N+1 the panel must report."""
    return [order.customer.name for order in Order.objects.all()[:n]]


def orders(request: HttpRequest) -> HttpResponse:
    names = customer_names(int(request.GET.get("n", "10")))
    body = "".join(f"<li>{name}</li>" for name in names)
    return HttpResponse(
        f"<!DOCTYPE html><html><head><title>orders</title></head><body><ul>{body}</ul></body></html>"
    )


urlpatterns = [
    path("__debug__/", include("debug_toolbar.urls")),
    path("orders/", orders),
]
