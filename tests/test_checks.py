"""System checks: each id is triggered by a bad setting and silent on a good one."""

from __future__ import annotations

import pytest
from django.core import checks
from django.test import override_settings

from ddt_prefetch_panel.checks import check_panel_configured, check_settings, check_toolbar_urls, panel_checks


def _ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_valid_settings_pass():
    with override_settings(DDT_PREFETCH_PANEL={"THRESHOLD": 3, "ALLOW": [{"relation": "shop.Order.customer"}]}):
        assert check_settings() == []


@pytest.mark.parametrize(
    "value, code, words",
    [
        ([1, 2], "E001", "must be a dict"),
        ({"TRESHOLD": 3}, "E001", "Unknown key 'TRESHOLD'"),
        ({"THRESHOLD": "3"}, "E001", "must be int"),
        ({"THRESHOLD": 0}, "E001", "at least 1"),
        ({"SHOW_PARAMS": "yes"}, "E001", "must be bool"),
        ({"KINDS": ["n_plus_one", "n_plus_two"]}, "E001", "Unknown kinds ['n_plus_two']"),
        ({"ALLOW": ["shop.Order"]}, "E002", "non-empty dict"),
        ({"ALLOW": [{"modle": "shop.Order"}]}, "E002", "unknown keys ['modle']"),
        ({"ALLOW": [{"model": 3}]}, "E002", "string pattern"),
        ({"ALLOW": [{"relation": "shop.Order.customer", "kinds": ["bad"]}]}, "E002", "'kinds'"),
        ({"ALLOW": [{"model": "shop.Nope"}]}, "E003", "matches no installed model"),
        ({"ALLOW": [{"relation": "shop.Order.pizas"}]}, "E003", "matches no model field or relation"),
    ],
)
def test_bad_settings_are_reported(value, code, words):
    with override_settings(DDT_PREFETCH_PANEL=value):
        messages = check_settings()
    assert f"ddt_prefetch_panel.{code}" in _ids(messages)
    assert any(words in m.msg for m in messages), [m.msg for m in messages]
    assert all(m.level == checks.ERROR for m in messages)


def test_allowlist_patterns_accept_reverse_accessors_and_wildcards():
    entries = [{"relation": "shop.Customer.review_set"}, {"relation": "shop.Topping.customer_set"},
               {"model": "shop.*"}, {"relation": "shop.Order.*"}, {"callsite": "*/legacy/*"}]
    with override_settings(DDT_PREFETCH_PANEL={"ALLOW": entries}):
        assert check_settings() == []


def test_panel_missing_from_the_toolbar_is_a_warning(settings):
    settings.DEBUG_TOOLBAR_PANELS = ["debug_toolbar.panels.sql.SQLPanel"]
    [message] = check_panel_configured()
    assert message.id == "ddt_prefetch_panel.W001"
    settings.DEBUG_TOOLBAR_PANELS = ["ddt_prefetch_panel.panel.PrefetchPanel"]
    assert check_panel_configured() == []


def test_panel_configured_without_the_app_is_an_error():
    assert panel_checks() == []
    with override_settings(INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "debug_toolbar"]):
        [message] = panel_checks()
    assert message.id == "ddt_prefetch_panel.E004"


def test_checks_are_registered_with_django():
    with override_settings(DDT_PREFETCH_PANEL={"THRESHOLD": 0}):
        messages = checks.run_checks()
    assert "ddt_prefetch_panel.E001" in _ids(messages)


@pytest.mark.parametrize("urlconf", ["tests.urlconfs.catchall_last", "tests.urlconfs.path_catchall_last"])
def test_toolbar_urls_behind_a_catch_all_are_a_warning(urlconf):
    with override_settings(ROOT_URLCONF=urlconf):
        [message] = check_toolbar_urls()
    assert message.id == "ddt_prefetch_panel.W003"
    assert message.level == checks.WARNING
    assert "/__debug__/render_panel/" in message.msg
    assert "tests.urlconfs.page_view" in message.msg
    assert "before" in message.hint


def test_toolbar_urls_before_a_catch_all_pass():
    with override_settings(ROOT_URLCONF="tests.urlconfs.catchall_first"):
        assert check_toolbar_urls() == []
    assert check_toolbar_urls() == []  # the suite's own URLconf


def test_the_session_tab_url_is_checked_too():
    with override_settings(ROOT_URLCONF="tests.urlconfs.session_shadowed"):
        [message] = check_toolbar_urls()
    assert message.id == "ddt_prefetch_panel.W003"
    assert "/__debug__/prefetch/session/" in message.msg
    assert "render_panel" not in message.msg


@pytest.mark.parametrize("urlconf", ["tests.urlconfs.no_toolbar", "tests.urlconfs.broken", "tests.urlconfs.missing"])
def test_no_toolbar_urls_or_a_broken_urlconf_is_not_our_warning(urlconf):
    # Without the djdt namespace the toolbar reports it itself; an URLconf that does not
    # import is Django's error to report, never an exception from our check.
    with override_settings(ROOT_URLCONF=urlconf):
        assert check_toolbar_urls() == []


def test_url_check_is_registered_with_django():
    with override_settings(ROOT_URLCONF="tests.urlconfs.catchall_last"):
        messages = checks.run_checks(tags=[checks.Tags.urls])
    assert "ddt_prefetch_panel.W003" in _ids(messages)


def test_a_hook_that_failed_at_run_time_is_named_by_w002(monkeypatch):
    from ddt_prefetch_panel import hooks
    from ddt_prefetch_panel.checks import check_hooks_installed

    monkeypatch.setattr(hooks, "_failures", {hooks.DO_UPDATE: "TypeError: unexpected"})
    [warning] = check_hooks_installed()
    assert warning.id == "ddt_prefetch_panel.W002"
    assert f"hook on {hooks.DO_UPDATE} failed" in warning.msg and "TypeError: unexpected" in warning.msg
    assert "which fields a save() in a loop changes" in warning.msg
