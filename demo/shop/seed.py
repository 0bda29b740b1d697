"""Deterministic demo data, shared by the ``seed_demo`` command and the tests."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from .models import Category, Customer, LoyaltyCard, Order, Pizza, PizzaPromotion, Review, Topping

# A fixed seed and a fixed "now" make every run produce identical rows, so
# screenshots and test expectations don't drift.
RANDOM_SEED = 20240601
NOW = datetime(2025, 3, 1, 18, 0, tzinfo=UTC)
SPREAD = timedelta(days=60)

STATUSES = ("new", "baking", "delivered")

CATEGORIES = ("Classic", "Gourmet", "Vegetarian", "Spicy")

# name -> vegetarian
TOPPINGS = {
    "Mozzarella": True,
    "Tomato": True,
    "Basil": True,
    "Mushroom": True,
    "Olive": True,
    "Jalapeño": True,
    "Pineapple": True,
    "Pepperoni": False,
    "Ham": False,
    "Anchovy": False,
}

PAIRS = (
    ("Mozzarella", "Tomato"),
    ("Mozzarella", "Basil"),
    ("Tomato", "Basil"),
    ("Mushroom", "Olive"),
    ("Ham", "Pineapple"),
    ("Pepperoni", "Jalapeño"),
    ("Anchovy", "Olive"),
)

# name, category, toppings, price; vegetarian is derived from the toppings.
MENU = (
    ("Margherita", "Classic", ("Mozzarella", "Tomato", "Basil"), "8.50"),
    ("Marinara", "Classic", ("Tomato", "Basil"), "7.00"),
    ("Funghi", "Classic", ("Mozzarella", "Tomato", "Mushroom"), "9.50"),
    ("Hawaiian", "Classic", ("Mozzarella", "Ham", "Pineapple"), "10.00"),
    ("Napoli", "Gourmet", ("Tomato", "Anchovy", "Olive"), "11.00"),
    ("Tartufo", "Gourmet", ("Mozzarella", "Mushroom"), "14.50"),
    ("Ortolana", "Vegetarian", ("Tomato", "Mushroom", "Olive", "Basil"), "10.50"),
    ("Diavola", "Spicy", ("Mozzarella", "Pepperoni", "Jalapeño"), "11.50"),
    ("Inferno", "Spicy", ("Tomato", "Jalapeño", "Olive"), "10.50"),
)

CUSTOMERS = (
    ("Ada Lovelace", "London"),
    ("Alan Turing", "Manchester"),
    ("Grace Hopper", "New York"),
    ("Linus Torvalds", "Portland"),
    ("Margaret Hamilton", "Boston"),
    ("Guido van Rossum", "Amsterdam"),
    ("Barbara Liskov", "Boston"),
    ("Ken Thompson", "New York"),
    ("Radia Perlman", "Seattle"),
    ("Dennis Ritchie", "New York"),
    ("Frances Allen", "Peekskill"),
    ("Edsger Dijkstra", "Austin"),
)

NOTES = ("", "", "", "Extra crispy, please.", "Ring the bell twice.", "Leave at the door.")

REVIEW_TEXTS = ("Delicious!", "A bit salty.", "Arrived cold.", "Best in town.", "", "Would order again.")

UNTARGETED_REVIEWS = ("Friendly delivery driver.", "The website was slow.", "Great service overall.")


def seed(orders: int = 30) -> bool:
    """Fill an empty database with the demo pizzeria.

    Returns False, touching nothing, when customers already exist.
    """
    if Customer.objects.exists():
        return False
    rng = random.Random(RANDOM_SEED)
    with transaction.atomic():
        categories = {c.name: c for c in Category.objects.bulk_create(Category(name=n) for n in CATEGORIES)}
        toppings = {
            t.name: t
            for t in Topping.objects.bulk_create(Topping(name=n, vegetarian=veg) for n, veg in TOPPINGS.items())
        }
        for a, b in PAIRS:
            # add() on a symmetrical M2M also writes the mirror row.
            toppings[a].pairs_with.add(toppings[b])

        customers = Customer.objects.bulk_create(
            Customer(name=name, email=f"{name.split()[0].lower()}@example.com", city=city)
            for name, city in CUSTOMERS
        )
        topping_list = list(toppings.values())
        Customer.favorite_toppings.through.objects.bulk_create(
            Customer.favorite_toppings.through(customer_id=c.pk, topping_id=t.pk)
            for c in customers
            for t in rng.sample(topping_list, k=rng.randint(1, 3))
        )
        # Every fourth customer has no card, so the reverse one-to-one is
        # sometimes missing.
        LoyaltyCard.objects.bulk_create(
            LoyaltyCard(customer=c, points=rng.randrange(0, 500, 10))
            for i, c in enumerate(customers)
            if i % 4 != 3
        )

        order_objs = Order.objects.bulk_create(
            Order(
                customer=rng.choice(customers),
                status=rng.choice(STATUSES),
                created=NOW - timedelta(seconds=rng.randrange(int(SPREAD.total_seconds()))),
                notes=rng.choice(NOTES),
            )
            for _ in range(orders)
        )

        pizza_specs = [(order, rng.choice(MENU)) for order in order_objs for _ in range(rng.randint(1, 4))]
        pizzas = Pizza.objects.bulk_create(
            Pizza(
                order=order,
                category=categories[category],
                name=name,
                price=Decimal(price),
                vegetarian=all(TOPPINGS[t] for t in names),
            )
            for order, (name, category, names, price) in pizza_specs
        )
        Pizza.toppings.through.objects.bulk_create(
            Pizza.toppings.through(pizza_id=pizza.pk, topping_id=toppings[t].pk)
            for pizza, (_order, (_name, _category, names, _price)) in zip(pizzas, pizza_specs, strict=True)
            for t in names
        )

        pizza_type = ContentType.objects.get_for_model(Pizza)
        reviews = [
            Review(
                customer=pizza.order.customer,
                rating=rng.randint(1, 5),
                text=rng.choice(REVIEW_TEXTS),
                content_type=pizza_type,
                object_id=pizza.pk,
            )
            for pizza in pizzas
            if rng.random() < 0.5
        ]
        # Reviews about the shop in general: the generic target is null.
        reviews += [
            Review(customer=rng.choice(customers), rating=rng.randint(3, 5), text=text)
            for text in UNTARGETED_REVIEWS
        ]
        Review.objects.bulk_create(reviews)

        # Promotions: a multi-table child each (bulk_create cannot write those), one inactive.
        category_list = list(categories.values())
        for i, pizza in enumerate(pizzas[: min(8, len(pizzas))]):
            promotion = PizzaPromotion.objects.create(
                title=f"{pizza.name} week {i + 1}", active=i != 7, pizza=pizza)
            promotion.categories.set(category_list[i % len(category_list): i % len(category_list) + 2])
    return True


def create_admin(username: str = "admin", password: str = "admin") -> bool:
    """Create the demo superuser unless it exists; return whether it was created."""
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        return False
    User.objects.create_superuser(username=username, email=f"{username}@example.com", password=password)
    return True
