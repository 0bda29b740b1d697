from django.contrib import admin

from .models import Category, Customer, LoyaltyCard, Order, Pizza, Review, Topping

admin.site.register([Category, Topping, Customer, LoyaltyCard, Pizza, Review])


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    # Both computed columns query once per row on purpose: the changelist is
    # the admin scenario of the demo.
    list_display = ("id", "status", "customer_name", "pizza_count")

    @admin.display(description="customer")
    def customer_name(self, obj: Order) -> str:
        return obj.customer.name

    @admin.display(description="pizzas")
    def pizza_count(self, obj: Order) -> int:
        return obj.pizzas.count()
