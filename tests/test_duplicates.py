"""Duplicate findings (duplicates.py): exact repeats outside every N+1, and what is not one.

The advice on where a repeat comes from is checked where each kind is applied (tests/test_place.py
for templates and the admin, tests/test_advise.py for the rewrites).
"""

from __future__ import annotations

import pytest

from ddt_prefetch_panel import detect
from shop.models import Customer, Order

pytestmark = pytest.mark.django_db


def test_the_same_select_around_a_write_to_its_table_is_no_duplicate():
    from tests.peers.social.models import User

    hub, *others = [User.objects.create(username=n) for n in ("hub", "a", "b", "c")]
    with detect(KINDS=["duplicate"]) as report:
        for chosen in (others[:1], others[1:]):
            list(User.objects.filter(followers=hub))
            hub.following.set(chosen)
    assert report.findings == []
    with detect(KINDS=["duplicate"]) as report:  # without the write in between it is one
        for _ in range(2):
            list(User.objects.filter(followers=hub))
    [finding] = report.findings
    assert finding.count == 2


# --------------------------------------------------------------------------- item 7: rows sharing a parent


def test_rows_sharing_one_parent_are_an_n_plus_one_not_a_duplicate(pizzeria):
    customer = Customer.objects.create(name="regular", email="regular@example.com", city="Here")
    for _ in range(4):
        Order.objects.create(customer=customer, created="2025-01-01T00:00:00Z")
    with detect() as report:
        for order in Order.objects.filter(customer=customer):
            order.customer.name
    [finding] = [f for f in report.findings if f.kind in ("n_plus_one", "duplicate")]
    assert (finding.kind, finding.relation, finding.method) == ("n_plus_one", "shop.Order.customer", "select_related")
    assert finding.proof["status"] == "verified"


# --------------------------------------------------------------------------- item 9: counts and noise


@pytest.mark.django_db
def test_statements_of_n_plus_ones_are_never_duplicate_findings_too():
    """Two loops read the authors of posts that share them: two N+1s, each saying how many of its
    statements repeated exactly, and no duplicate finding restating them (issue 22)."""
    from tests.places.models import Post
    from tests.places.seed import seed

    seed(3)  # 9 posts, 3 authors
    with detect() as report:
        first = [post.author.name for post in Post.objects.order_by("pk")]
        second = [post.author.name for post in Post.objects.order_by("-pk")]
    assert first == second[::-1]
    kinds = sorted(f.kind for f in report.findings)
    assert kinds == ["n_plus_one", "n_plus_one"], report.to_markdown()
    assert [f.identical for f in report.findings] == [6, 6]
    assert all(f.to_dict()["identical"] == 6 for f in report.findings)
    assert "(6 identical repeats)" in report.findings[0].to_markdown()
