import json
import pytest
from ddt_prefetch_panel import detect
from shop.models import Order, Pizza, Customer, Topping, Review, LoyaltyCard
from shop.seed import seed

pytestmark = pytest.mark.django_db

def show(report):
    for f in report.findings:
        print(f.kind, f.model, f.relation, f.lookup, f.method, f.count, f.avoidable, f.snippets, f.callsite and (f.callsite["filename"], f.callsite["lineno"]), f.origin and f.origin["code"], f.note)

def test_smoke():
    seed(orders=10)
    with detect() as r:
        orders = Order.objects.filter(status__in=["new", "baking", "delivered"])
        for o in orders:
            o.customer.name
    show(r)
    with detect() as r:
        for o in Order.objects.all():
            for p in o.pizzas.all():
                p.category.name
    show(r)
    with detect() as r:
        for c in Customer.objects.all():
            list(c.review_set.all()); hasattr(c, "loyalty_card"); list(c.favorite_toppings.all())
        for t in Topping.objects.all():
            list(t.pairs_with.all()); list(t.customer_set.all())
        for rv in Review.objects.all():
            rv.target
        for p in Pizza.objects.all():
            list(p.reviews.all())
        for o in Order.objects.only("id", "status"):
            o.notes
        for o in Order.objects.all():
            list(Pizza.objects.filter(order_id=o.id))
        for i in range(3):
            Customer.objects.get(pk=1)
    show(r)
    json.dumps(r.to_dict())
    assert json.loads(json.dumps(r.to_dict())) == r.to_dict()
