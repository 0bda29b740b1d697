"""The benchmarked pages.

- ``/shape/<shape>/?n=N``: the synthetic N+1 loops, one per loop shape (``SHAPES``);
  ``/orders/?n=N`` is the forward-FK one under the path the benchmark has always used;
- ``/shop/...``: the demo pizzeria's pages (``demo/shop/urls.py``);
- ``/api/orders/``: nested DRF serializers over the demo's models (when DRF is installed).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import include, path

from shop.models import Customer, Order


def always_show(request: HttpRequest) -> bool:
    return True


def orders(n: int):
    return Order.objects.all()[:n]


# Each loop runs 1 + N queries over N orders (customers for m2m), each order with its own
# customer and two pizzas, each customer with two favourite toppings (bench.py seeds them).
def forward_fk(n: int) -> list:
    return [order.customer.name for order in orders(n)]


def manager_all(n: int) -> list:
    return [pizza.name for order in orders(n) for pizza in order.pizzas.all()]


def manager_len(n: int) -> list:
    return [len(order.pizzas.all()) for order in orders(n)]


def m2m_all(n: int) -> list:
    customers = Customer.objects.all()[:n]
    return [topping.name for customer in customers for topping in customer.favorite_toppings.all()]


def count_per_row(n: int) -> list:
    return [order.pizzas.count() for order in orders(n)]


LOOPS = {"fk": forward_fk, "manager": manager_all, "len": manager_len, "m2m": m2m_all, "count": count_per_row}


def page(items: list) -> HttpResponse:
    body = "".join(f"<li>{item}</li>" for item in items)
    return HttpResponse(
        f"<!DOCTYPE html><html><head><title>orders</title></head><body><ul>{body}</ul></body></html>"
    )


def loop(request: HttpRequest, shape: str) -> HttpResponse:
    return page(LOOPS[shape](int(request.GET.get("n", "10"))))


def forward_fk_page(request: HttpRequest) -> HttpResponse:
    return loop(request, "fk")


def template_loop(request: HttpRequest) -> HttpResponse:
    """``{% for o in orders %}{{ o.customer.name }}``: the forward FK read by the template engine."""
    return render(request, "bench/orders.html", {"orders": orders(int(request.GET.get("n", "10")))})


urlpatterns = [
    path("orders/", forward_fk_page),
    path("shape/template/", template_loop),
    *(path(f"shape/{shape}/", loop, {"shape": shape}) for shape in LOOPS if shape != "fk"),
    path("shop/", include("shop.urls")),
]
if "debug_toolbar" in settings.INSTALLED_APPS:
    urlpatterns.append(path("__debug__/", include("debug_toolbar.urls")))
if "rest_framework" in settings.INSTALLED_APPS:
    from tests.benchmarks.api import OrderList, OrderShapeList

    urlpatterns += [path("api/orders/", OrderList.as_view()), path("shape/drf/", OrderShapeList.as_view())]
