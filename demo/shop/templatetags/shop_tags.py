"""Template tags for the inclusion-tag scenario, written as Django's "Inclusion tags" docs write them."""

from django import template

register = template.Library()


@register.inclusion_tag("shop/order_pizzas.html")
def order_pizzas(order):
    return {"pizzas": order.pizzas.all()}
