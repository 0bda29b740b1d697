"""The demo's own tests: every page of the pizzeria answers, the bad version and the fixed one.

They run with the suite-wide N+1 report against the baseline checked in with the package's
tests, so a new N+1 in the demo fails CI while the bad pages' known ones do not
(``tests/test_demo_baseline.py`` runs exactly this)::

    cd demo && python -m pytest --n-plus-one-report=n1.md \\
        --n-plus-one-baseline=../tests/demo_baseline.json --n-plus-one-fail
"""

import pytest
from django.urls import reverse

from .urls import urlpatterns


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The pizzeria is seeded once; each test's changes are rolled back."""
    from .seed import seed

    with django_db_blocker.unblock():
        seed(orders=10)


@pytest.mark.parametrize("name", [pattern.name for pattern in urlpatterns])
def test_page_answers(client, db, name):
    response = client.get(reverse(f"shop:{name}"))
    assert response.status_code == 200
    assert response.content
