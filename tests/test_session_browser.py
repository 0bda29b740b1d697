"""The "All requests" tab in a real browser: three requests (one AJAX), history switching,
Copy as patch, and editor links."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests import browser
from tests.test_browser import RECORD_CLIPBOARD, copied, driver, live_server  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

AJAX = """
const done = arguments[arguments.length - 1];
fetch("/api/orders/bad/", {headers: {"X-Requested-With": "XMLHttpRequest", "Accept": "application/json"}})
    .then((response) => response.text()).then(() => done(true), (error) => done(String(error)));
"""


def _session(driver, content):
    content.find_element(By.CSS_SELECTOR, '[data-ddtpp-tab="session"]').click()
    area = content.find_element(By.CSS_SELECTOR, "[data-ddtpp-session-area]")
    WebDriverWait(driver, browser.TIMEOUT).until(
        lambda d: area.find_elements(By.CSS_SELECTOR, "[data-ddtpp-session-content]"),
        message=f"the session tab did not load: {area.text[:500]}",
    )
    return area


def _entries(area) -> list[tuple[str, bool]]:
    return [
        (section.find_element(By.CSS_SELECTOR, ".ddtpp-subject").text, "ddtpp-current" in section.get_attribute("class"))
        for section in area.find_elements(By.CSS_SELECTOR, "[data-ddtpp-session-finding]")
    ]


def _switch_history(driver, path: str) -> None:
    root = browser.toolbar(driver)
    root.find_element(By.CSS_SELECTOR, "#djdt-HistoryPanel a.HistoryPanel").click()
    button = WebDriverWait(driver, browser.TIMEOUT).until(
        lambda d: next((row.find_element(By.CSS_SELECTOR, ".switchHistory")
                        for row in root.find_elements(By.CSS_SELECTOR, "#djdtHistoryRequests tr[data-request-id]")
                        if path in row.text), False),
        message=f"no history row for {path}",
    )
    request_id = button.get_attribute("data-request-id")
    button.click()
    WebDriverWait(driver, browser.TIMEOUT).until(
        lambda d: root.find_element(By.ID, "djDebug").get_attribute("data-request-id") == request_id,
        message="the toolbar did not switch to the earlier request",
    )
    root.find_element(By.CSS_SELECTOR, "#HistoryPanel .djDebugClose").click()


def test_session_tab_across_requests_and_history(live_server, driver, settings):  # noqa: F811
    from debug_toolbar.store import get_store
    from shop.seed import seed

    settings.DDT_PREFETCH_PANEL = {"EDITOR_URL": "vscode"}
    seed(orders=10)
    get_store().clear()
    driver.get(f"{live_server.url}/forward-fk/bad/")
    browser.toolbar(driver)
    assert driver.execute_async_script(AJAX) is True
    driver.get(f"{live_server.url}/m2m/bad/")

    content = browser.open_panel(driver)
    area = _session(driver, content)
    entries = _entries(area)
    subjects = [subject for subject, _ in entries]
    # The page and the AJAX view read the customer from two call sites: two entries.
    assert subjects.count("shop.Order.customer") == 2 and "shop.Pizza.toppings" in subjects
    assert [subject for subject, current in entries if current] == ["shop.Pizza.toppings"]
    assert "3 stored requests" in area.text
    # The request view is hidden while the session is shown, and comes back.
    request_findings = content.find_elements(By.CSS_SELECTOR, "[data-ddtpp-finding]")
    assert request_findings and not any(f.is_displayed() for f in request_findings)

    link = area.find_element(By.CSS_SELECTOR, "a.ddtpp-editor-link")
    assert link.get_attribute("href").startswith("vscode://file/")

    driver.execute_script(RECORD_CLIPBOARD)
    customer = next(s for s in area.find_elements(By.CSS_SELECTOR, "[data-ddtpp-session-finding]")
                    if s.find_element(By.CSS_SELECTOR, ".ddtpp-subject").text == "shop.Order.customer")
    customer.find_element(By.CSS_SELECTOR, 'button[data-ddtpp-copy^="session-patch-"]').click()
    [patch] = copied(driver)
    assert patch.startswith("--- a/demo/shop/views.py\n+++ b/demo/shop/views.py\n")
    assert '.select_related("customer")' in patch

    content.find_element(By.CSS_SELECTOR, '[data-ddtpp-tab="request"]').click()
    assert all(f.is_displayed() for f in request_findings) and not area.is_displayed()

    # History: back to the first page; the panel re-renders for it, and so does the session mark.
    root = browser.toolbar(driver)
    root.find_element(By.CSS_SELECTOR, "#PrefetchPanel .djDebugClose").click()
    _switch_history(driver, "/forward-fk/bad/")
    content = browser.open_panel(driver)
    assert "shop.Order.customer" in content.text and "shop.Pizza.toppings" not in content.text
    area = _session(driver, content)
    current = [subject for subject, is_current in _entries(area) if is_current]
    assert current == ["shop.Order.customer"]
