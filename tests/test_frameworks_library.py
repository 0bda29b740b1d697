"""Issue 12: library-only findings (the loop and the queryset both in a package under
site-packages) are marked ``library=True``; a queryset the project built and handed to a
library loop is the project's to fix."""

from __future__ import annotations

import pytest

from tests.frameworks.fakelib import ensure_installed

ensure_installed()

import ddtpp_fakelib  # noqa: E402

from ddt_prefetch_panel import detect  # noqa: E402
from ddt_prefetch_panel.testing import assert_no_n_plus_one  # noqa: E402
from tests.frameworks.catalog import exports  # noqa: E402
from tests.frameworks.catalog.seed import seed  # noqa: E402
from tests.frameworks.lines import at  # noqa: E402

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(db):
    seed(authors=4, books_per_author=3)


def test_the_fake_library_really_lives_in_site_packages():
    assert "site-packages" in ddtpp_fakelib.__file__
    assert "/work/" not in ddtpp_fakelib.__file__.split("site-packages")[1]


def test_queryset_built_and_looped_in_the_library_is_library_only(catalog):
    with detect() as report:
        exports.export_everything()
    [finding] = [f for f in report.findings if f.kind == "n_plus_one"]
    assert finding.relation == "catalog.Book.author"
    assert finding.library is True
    # The project's call is an entry point, not a line to chain a queryset method onto.
    assert "export_model(Book" not in finding.snippets.get("line", "")
    assert finding.to_dict()["library"] is True


def test_test_mode_ignores_library_only_findings(catalog):
    with assert_no_n_plus_one():
        exports.export_everything()


def test_test_mode_reports_them_when_asked(catalog):
    with pytest.raises(AssertionError, match="catalog.Book.author"):
        with assert_no_n_plus_one(library=True):
            exports.export_everything()


def test_user_built_queryset_looped_in_the_library_is_the_projects(catalog):
    with detect() as report:
        exports.export_visible()
    [finding] = [f for f in report.findings if f.kind == "n_plus_one"]
    assert finding.relation == "catalog.Book.author"
    assert finding.library is False
    assert at(finding.origin, "catalog/exports.py", "ddtpp_fakelib.export_rows(Book.objects.visible()")
    assert finding.snippets["line"] == (
        'return ddtpp_fakelib.export_rows(Book.objects.visible().select_related("author"), ["title", "author__name"])'
    )
    assert finding.proof["status"] == "verified"


def test_duplicates_issued_by_library_code_are_library_only(catalog):
    with detect() as report:
        exports.export_typed()
    [duplicate] = report.by_kind("duplicate")
    assert duplicate.model == "contenttypes.ContentType"
    assert duplicate.library is True


def test_the_projects_own_duplicates_are_not_library_only(catalog):
    with detect() as report:
        exports.repeated_lookups()
    [duplicate] = report.by_kind("duplicate")
    assert duplicate.library is False


def test_no_index_advice_on_models_of_apps_outside_the_project(db):
    from django.contrib.auth.models import Permission

    with detect() as report:
        for codename in ("add_user", "change_user", "delete_user", "view_user"):
            list(Permission.objects.filter(name=codename))
    assert not report.by_kind("missing_index")
