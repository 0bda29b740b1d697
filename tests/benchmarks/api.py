"""A bench-only REST endpoint with nested DRF serializers over the demo's models.

``/api/orders/`` lists the demo's orders with their customer, and every pizza with its
category and toppings, the way a first version of such an API is often written: the nested
serializers read relations of a queryset that prefetches nothing, so each order costs a
customer query and a pizzas query, and each pizza a category and a toppings query.
"""

from __future__ import annotations

from rest_framework import generics, serializers
from rest_framework.renderers import JSONRenderer
from shop.models import Category, Customer, Order, Pizza, Topping


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["id", "name"]


class ToppingSerializer(serializers.ModelSerializer):
    class Meta:
        model = Topping
        fields = ["id", "name", "vegetarian"]


class PizzaSerializer(serializers.ModelSerializer):
    category = CategorySerializer()
    toppings = ToppingSerializer(many=True)

    class Meta:
        model = Pizza
        fields = ["id", "name", "price", "vegetarian", "category", "toppings"]


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "name", "city"]


class OrderSerializer(serializers.ModelSerializer):
    customer = CustomerSerializer()
    pizzas = PizzaSerializer(many=True)

    class Meta:
        model = Order
        fields = ["id", "status", "created", "customer", "pizzas"]


class OrderList(generics.ListAPIView):
    queryset = Order.objects.order_by("pk")
    serializer_class = OrderSerializer
    renderer_classes = [JSONRenderer]


class PizzaBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Pizza
        fields = ["id", "name", "price"]


class OrderShapeSerializer(serializers.ModelSerializer):
    customer = CustomerSerializer()
    pizzas = PizzaBriefSerializer(many=True)

    class Meta:
        model = Order
        fields = ["id", "status", "customer", "pizzas"]


class OrderShapeList(generics.ListAPIView):
    """The loop shape of a nested serializer list on the synthetic data (``/shape/drf/?n=N``):
    1 + 2N queries, a customer and a pizzas query per order."""

    serializer_class = OrderShapeSerializer
    renderer_classes = [JSONRenderer]

    def get_queryset(self):
        return Order.objects.order_by("pk")[: int(self.request.GET.get("n", "10"))]
