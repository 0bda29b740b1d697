"""Settings and the allowlist, applied to real findings."""

from __future__ import annotations

import pytest
from django.db import connection

from ddt_prefetch_panel import detect
from ddt_prefetch_panel.conf import get_config, is_allowed
from shop.models import Customer, Order

pytestmark = pytest.mark.django_db


def _loops():
    for order in Order.objects.all():
        order.customer.name
    for customer in Customer.objects.all():
        list(customer.review_set.all())


@pytest.mark.parametrize(
    "entry, remaining",
    [
        ({"relation": "shop.Order.customer"}, ["shop.Customer.review_set"]),
        ({"relation": "shop.*.review_set"}, ["shop.Order.customer"]),
        ({"model": "shop.Customer"}, ["shop.Order.customer"]),
        ({"callsite": "tests/test_conf.py"}, []),
        ({"callsite": "*test_conf.py:17"}, ["shop.Customer.review_set"]),
        ({"sql": "*shop_review*"}, ["shop.Order.customer"]),
        ({"model": "shop.Customer", "sql": "*shop_order*"}, ["shop.Order.customer", "shop.Customer.review_set"]),
        ({"model": "shop.*", "kinds": ["duplicate"]}, ["shop.Order.customer", "shop.Customer.review_set"]),
    ],
)
def test_allowlist_entries_by_each_key(pizzeria, entry, remaining):
    with detect(ALLOW=[entry]) as report:
        _loops()
    assert sorted(f.relation for f in report.by_kind("n_plus_one")) == sorted(remaining)
    assert report.summary["allowed"] == 2 - len(remaining)


def test_kinds_setting(pizzeria, settings):
    settings.DDT_PREFETCH_PANEL = {"KINDS": ["duplicate"]}
    with detect() as report:
        _loops()
    assert report.findings == []


def test_invalid_values_fall_back_to_defaults(settings):
    settings.DDT_PREFETCH_PANEL = {"THRESHOLD": "lots", "SHOW_PARAMS": True, "UNKNOWN": 1}
    config = get_config()
    assert config["THRESHOLD"] == 2
    assert config["SHOW_PARAMS"] is True


def test_is_allowed_needs_every_key_to_match():
    finding = {"kind": "n_plus_one", "model": "shop.Order", "relation": "shop.Order.customer", "sql": "SELECT 1",
               "callsite": {"filename": "shop/views.py", "lineno": 3}, "stack": []}
    assert is_allowed(finding, [{"model": "shop.Order", "relation": "shop.Order.*"}])
    assert not is_allowed(finding, [{"model": "shop.Order", "relation": "shop.Pizza.*"}])
    assert is_allowed(finding, [{"callsite": "shop/views.py:3"}])


SECRET = "hunter2-very-secret"


def _secret_loop():
    for customer in Customer.objects.all():
        list(Order.objects.filter(customer=customer, notes=SECRET))
    with connection.cursor() as cursor:
        for _ in range(2):
            cursor.execute(f"SELECT id FROM shop_customer WHERE name = '{SECRET}'")


def test_secret_parameters_never_appear_unless_opted_in(client, pizzeria, settings):
    with detect() as report:
        _secret_loop()
    assert report.findings
    assert SECRET not in str(report.to_dict())
    assert SECRET not in report.to_markdown()
    with detect(SHOW_PARAMS=True) as report:
        _secret_loop()
    assert SECRET in str(report.to_dict())
    assert SECRET in report.to_markdown()


# --------------------------------------------------------------------------- project code (issue 12)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"PROJECT_PACKAGES": "oscar"}, "must be list or tuple"),
        ({"PROJECT_PACKAGES": ["oscar", "my-app"]}, "['PROJECT_PACKAGES'][1] must be an import name"),
        ({"PROJECT_ROOTS": ["/no/such/directory"]}, "['PROJECT_ROOTS'][0] must be an existing directory"),
        ({"PROOF_MODE": "sometimes"}, "['PROOF_MODE'] must be one of lazy, eager, off"),
    ],
)
def test_project_settings_are_validated(values, message):
    from ddt_prefetch_panel.conf import setting_errors

    [(check_id, text)] = setting_errors(values)
    assert check_id == "E001" and message in text


def test_project_settings_are_project_wide_not_per_call():
    with pytest.raises(ValueError, match="project-wide"):
        with detect(PROJECT_PACKAGES=["oscar"]):
            pass


def test_project_roots_make_code_outside_base_dir_the_projects(settings, tmp_path):
    from ddt_prefetch_panel.frames import is_library_file

    outside = tmp_path / "sibling_package" / "views.py"
    outside.parent.mkdir()
    outside.write_text("")
    assert is_library_file(str(outside))  # neither under BASE_DIR nor the current directory
    settings.DDT_PREFETCH_PANEL = {"PROJECT_ROOTS": [str(tmp_path)]}
    assert not is_library_file(str(outside))


def test_project_packages_make_an_installed_package_the_projects(settings, db):
    """A forked app installed into site-packages: its lines become rewritable origins."""
    from tests.frameworks.fakelib import ensure_installed

    ensure_installed()
    from tests.frameworks.catalog import exports
    from tests.frameworks.catalog.seed import seed

    seed(authors=3, books_per_author=2)
    with detect() as report:
        exports.export_everything()
    [finding] = report.by_kind("n_plus_one")
    assert finding.library is True and "line" not in finding.snippets
    settings.DDT_PREFETCH_PANEL = {"PROJECT_PACKAGES": ["ddtpp_fakelib"]}
    with detect() as report:
        exports.export_everything()
    [finding] = report.by_kind("n_plus_one")
    assert finding.library is False
    assert finding.origin["filename"] == "ddtpp_fakelib/__init__.py"  # its import path, as any installed file
    assert finding.snippets["line"] == 'queryset = model._default_manager.order_by("pk").select_related("author")'
