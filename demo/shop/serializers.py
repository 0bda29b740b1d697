"""Django REST framework serializers of the API scenario: DRF loops over the orders, and the
nested fields are where each row reads its relations."""

from rest_framework import serializers

from .models import Customer, Order, Pizza


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "name", "city"]


class PizzaSerializer(serializers.ModelSerializer):
    class Meta:
        model = Pizza
        fields = ["id", "name", "price"]


class OrderSerializer(serializers.ModelSerializer):
    customer = CustomerSerializer()
    pizzas = PizzaSerializer(many=True)

    class Meta:
        model = Order
        fields = ["id", "status", "customer", "pizzas"]
