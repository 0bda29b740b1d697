"""The demo pizzeria. Every relation kind the panel understands appears here once."""

from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Topping(models.Model):
    name = models.CharField(max_length=50)
    vegetarian = models.BooleanField(default=True)
    # Self-referential, symmetrical M2M: "goes well with".
    pairs_with = models.ManyToManyField("self", blank=True)

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    name = models.CharField(max_length=100)
    email = models.EmailField(unique=True)
    city = models.CharField(max_length=50)
    # M2M without related_name: reverse accessor is topping.customer_set.
    favorite_toppings = models.ManyToManyField(Topping, blank=True)

    def __str__(self) -> str:
        return self.name


class LoyaltyCard(models.Model):
    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="loyalty_card")
    points = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"card of {self.customer_id}"


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    status = models.CharField(max_length=20, default="new")
    created = models.DateTimeField()
    notes = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"order {self.pk}"


class Review(models.Model):
    # FK without related_name: reverse accessor is customer.review_set.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    rating = models.IntegerField()
    text = models.TextField(blank=True)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, null=True, blank=True)
    object_id = models.PositiveIntegerField(null=True, blank=True)
    target = GenericForeignKey("content_type", "object_id")

    class Meta:
        indexes = [models.Index(fields=["rating"], name="shop_review_rating_idx")]

    def __str__(self) -> str:
        return f"{self.rating} stars"


class Pizza(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="pizzas")
    category = models.ForeignKey(Category, on_delete=models.CASCADE)
    toppings = models.ManyToManyField(Topping, related_name="pizzas", blank=True)
    name = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=6, decimal_places=2)
    vegetarian = models.BooleanField(default=False)
    reviews = GenericRelation(Review)

    def __str__(self) -> str:
        return self.name


class Promotion(models.Model):
    """A promotion of any kind; each kind is a child table (multi-table inheritance)."""

    title = models.CharField(max_length=100)
    active = models.BooleanField(default=True)

    def specific(self) -> "Promotion":
        """The promotion as its own kind, loaded again by its key (as a CMS's ``page.specific``
        does); an instance that already is one is returned as it is."""
        if isinstance(self, PizzaPromotion):
            return self
        return PizzaPromotion._default_manager.get(pk=self.pk)

    def __str__(self) -> str:
        return self.title


class PizzaPromotion(Promotion):
    pizza = models.ForeignKey(Pizza, on_delete=models.CASCADE, related_name="promotions")
    categories = models.ManyToManyField(Category, blank=True)
