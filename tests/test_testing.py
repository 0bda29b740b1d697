"""Test mode: the same analysis fails a test with a message naming relation, call site, origin and fix."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from ddt_prefetch_panel.testing import assert_no_n_plus_one, ignore_n_plus_one
from tests.halves import SQLITE_HALF_ONLY
from shop.models import Category, Order

pytestmark = pytest.mark.django_db


def _bad_loop():
    orders = Order.objects.all()
    for order in orders:
        order.customer.name


def test_fails_on_n_plus_one_with_relation_call_site_origin_and_fix(pizzeria):
    with pytest.raises(AssertionError) as failure:
        with assert_no_n_plus_one():
            _bad_loop()
    message = str(failure.value)
    assert "N+1 detected on shop.Order.customer at tests/test_testing.py:" in message
    assert "in _bad_loop" in message
    assert "queryset built at tests/test_testing.py:" in message
    assert 'fix: orders = Order.objects.all().select_related("customer")' in message


def test_passes_on_fixed_code(pizzeria):
    with assert_no_n_plus_one():
        for order in Order.objects.select_related("customer"):
            order.customer.name


def test_works_as_a_decorator(pizzeria):
    @assert_no_n_plus_one()
    def view():
        _bad_loop()

    with pytest.raises(AssertionError, match="shop.Order.customer"):
        view()


def test_kinds_option_checks_duplicates_and_unused_prefetch(pizzeria):
    def duplicates():
        Category.objects.filter(name="Classic").first()
        Category.objects.filter(name="Classic").first()

    with assert_no_n_plus_one():
        duplicates()  # only N+1 by default
    with pytest.raises(AssertionError, match="Duplicate detected"):
        with assert_no_n_plus_one(kinds=["duplicate"]):
            duplicates()
    with pytest.raises(AssertionError, match="Unused prefetch detected on shop.Order.pizzas"):
        with assert_no_n_plus_one(kinds=["unused_prefetch"]):
            list(Order.objects.prefetch_related("pizzas"))


def test_threshold_option(pizzeria):
    with assert_no_n_plus_one(threshold=1000):
        _bad_loop()


def test_allow_option_and_allow_setting(pizzeria, settings):
    with assert_no_n_plus_one(allow=[{"relation": "shop.Order.customer"}]):
        _bad_loop()
    settings.DDT_PREFETCH_PANEL = {"ALLOW": [{"callsite": "tests/test_testing.py"}]}
    with assert_no_n_plus_one():
        _bad_loop()


def test_ignore_block_is_silent(pizzeria):
    with assert_no_n_plus_one():
        with ignore_n_plus_one():
            _bad_loop()


def test_errors_inside_the_block_propagate_unchanged(pizzeria):
    with pytest.raises(ZeroDivisionError):
        with assert_no_n_plus_one():
            _bad_loop()
            1 / 0


@SQLITE_HALF_ONLY
def test_pytest_plugin_marker_and_fixture(pytester, monkeypatch):
    pytester.makeconftest(textwrap.dedent("""
        import pytest

        @pytest.fixture
        def pizzeria(db):
            from shop.seed import seed
            seed(orders=5)
    """))
    pytester.makepyfile(textwrap.dedent("""
        import pytest
        from shop.models import Order

        @pytest.mark.no_n_plus_one
        def test_marked_bad(pizzeria):
            for order in Order.objects.all():
                order.customer.name

        @pytest.mark.no_n_plus_one
        def test_marked_good(pizzeria):
            for order in Order.objects.select_related("customer"):
                order.customer.name

        @pytest.mark.no_n_plus_one(allow=[{"model": "shop.Order"}])
        def test_marked_allowed(pizzeria):
            for order in Order.objects.all():
                order.customer.name

        def test_fixture_bad(pizzeria, assert_no_n_plus_one):
            with assert_no_n_plus_one():
                for order in Order.objects.all():
                    list(order.pizzas.all())
    """))
    root = Path(__file__).resolve().parent.parent
    monkeypatch.setenv("PYTHONPATH", f"{root}{os.pathsep}{root / 'demo'}")
    # On PostgreSQL the inner run needs a test database of its own.
    monkeypatch.setenv("DDTPP_POSTGRES_DB", "ddtpp_inner")
    # The plugin is found through the installed package's pytest11 entry point.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ds=tests.settings")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*N+1 detected on shop.Order.customer at *test_marked_bad*",
        "*N+1 detected on shop.Order.pizzas*",
    ])


def test_message_shows_the_proof_of_the_fix(pizzeria):
    with pytest.raises(AssertionError) as failure:
        with assert_no_n_plus_one():
            _bad_loop()
    message = str(failure.value)
    assert "proof: verified on this request: 6 -> 1 queries (5 rows replayed)" in message
    assert message.index("fix: ") < message.index("proof: ")


def test_message_says_why_no_fix_is_shown(pizzeria, settings):
    settings.DDT_PREFETCH_PANEL = {"PROOF_BUDGET_MS": 0}
    with pytest.raises(AssertionError) as failure:
        with assert_no_n_plus_one():
            _bad_loop()
    message = str(failure.value)
    assert "fix: " not in message
    assert "proof: not verified: Not replayed: the replay budget of 0 ms for this request is spent" in message
    assert 'tried .select_related("customer"), so no fix is shown' in message
    assert message.count("replay budget") == 1  # the note does not repeat the proof


def test_failed_proof_line_names_the_reason_and_hides_the_fix():
    from ddt_prefetch_panel.findings import Finding
    from ddt_prefetch_panel.testing import describe

    finding = Finding(
        kind="n_plus_one", model="shop.Order", relation="shop.Order.pizzas", lookup="pizzas", method=None,
        count=11, avoidable=10, duration_ms=1.0, sql="SELECT 1", callsite=None, stack=[], origin=None,
        snippets={"fix": '.prefetch_related("pizzas")'},
        proof={"status": "failed", "before": 11, "after": 11, "rows": 10, "fix": '.prefetch_related("pizzas")',
               "detail": "The fix did not remove the repeated queries (11 -> 11)."},
    )
    text = describe(finding)
    assert "fix: " not in text
    assert ('proof: failed: The fix did not remove the repeated queries (11 -> 11); '
            'tried .prefetch_related("pizzas"), so no fix is shown') in text


@pytest.mark.django_db
def test_failure_message_ends_with_the_combined_fix_of_one_queryset(client):
    from shop.seed import seed

    seed(orders=5)
    with pytest.raises(AssertionError) as failure:
        with assert_no_n_plus_one():
            client.get("/combined/bad/")
    message = str(failure.value)
    assert "one fix for 1, 2, at demo/shop/views.py" in message
    assert 'select_related("customer").prefetch_related(Prefetch("pizzas"' in message
    assert "(verified on this request: 13 -> 2 queries)" in message
