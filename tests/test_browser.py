"""The panel in a real browser: the toolbar's shadow DOM, the AJAX render and the copy buttons.

Debian's Chromium runs headless against a live server on 127.0.0.1 (a secure context, so
``navigator.clipboard`` exists). The clipboard itself is replaced by recorders: headless
Chromium has no system clipboard to read back.
"""

from __future__ import annotations

import threading
import time

import pytest
from pytest_django.live_server_helper import LiveServer
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests import browser

pytestmark = pytest.mark.browser

RECORD_CLIPBOARD = """
window.__copied = [];
navigator.clipboard.writeText = (text) => {
    window.__copied.push(text);
    return Promise.resolve();
};
"""

# What a plain-http host other than localhost looks like: no navigator.clipboard, so the
# panel falls back to selecting a temporary textarea and execCommand("copy").
RECORD_EXEC_COMMAND = """
Object.defineProperty(navigator, "clipboard", {value: undefined, configurable: true});
window.__copied = [];
document.execCommand = (command) => {
    const shadow = document.getElementById("djDebugRoot").shadowRoot;
    const active = shadow.activeElement;
    const area = active && active.tagName === "TEXTAREA"
        ? active
        : [...shadow.querySelectorAll("[data-ddtpp-root] > textarea")].pop();
    window.__copied.push(command + ":" + (area ? area.value : ""));
    return true;
};
"""


@pytest.fixture(scope="module")
def live_server(django_db_setup):
    """pytest-django's live server, bound to 127.0.0.1 instead of localhost."""
    server = LiveServer("127.0.0.1:0")
    yield server
    # The browser has quit by now (the driver fixture depends on this one); let the threads that
    # served its keep-alive connections finish before the shared in-memory SQLite
    # connection stops being shareable, or they fail closing it.
    deadline = time.monotonic() + 5
    for thread in threading.enumerate():
        if "process_request_thread" in thread.name:
            thread.join(max(0.0, deadline - time.monotonic()))
    server.stop()


@pytest.fixture(scope="module")
def driver(live_server):
    # Depends on the server only so that the browser quits before the server stops.
    try:
        browser.check_browser()
    except browser.BrowserMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    with browser.chromium() as driver:
        yield driver


@pytest.fixture
def finding(live_server, driver):
    """The forward-FK page with the panel open; returns the shop.Order.customer finding."""
    from shop.seed import seed

    seed(orders=10)
    driver.get(f"{live_server.url}/forward-fk/bad/")
    content = browser.open_panel(driver)
    text = content.text
    assert "shop.Order.customer" in text, text[:2000]
    for section in content.find_elements(By.CSS_SELECTOR, "[data-ddtpp-finding]"):
        if section.find_element(By.CSS_SELECTOR, ".ddtpp-subject").text == "shop.Order.customer":
            return section
    pytest.fail(f"no finding titled shop.Order.customer in the panel:\n{text[:2000]}")


def copied(driver) -> list[str]:
    return WebDriverWait(driver, browser.TIMEOUT).until(
        lambda d: d.execute_script("return window.__copied.length ? window.__copied : null"),
        message="nothing was copied",
    )


def wait_for_label(driver, button, label: str) -> None:
    WebDriverWait(driver, browser.TIMEOUT, poll_frequency=0.05).until(
        lambda d: button.text == label, message=f"the button never showed {label!r} (it shows {button.text!r})"
    )


def test_copy_fix_snippet(driver, finding):
    snippet = finding.find_element(By.CSS_SELECTOR, '[data-ddtpp-snippet="fix"]')
    assert '.select_related("customer")' in snippet.text
    driver.execute_script(RECORD_CLIPBOARD)
    button = snippet.find_element(By.CSS_SELECTOR, "button")
    button.click()
    assert copied(driver) == ['.select_related("customer")']
    wait_for_label(driver, button, "Copied")


def test_copy_finding_as_markdown(driver, finding):
    driver.execute_script(RECORD_CLIPBOARD)
    button = finding.find_element(By.CSS_SELECTOR, 'button[data-ddtpp-copy^="finding-markdown-"]')
    assert button.text == "Copy as Markdown"
    button.click()
    [markdown] = copied(driver)
    assert "shop.Order.customer" in markdown
    assert "```python" in markdown
    assert 'select_related("customer")' in markdown
    wait_for_label(driver, button, "Copied")


def test_copy_falls_back_to_exec_command_without_clipboard_api(driver, finding):
    driver.execute_script(RECORD_EXEC_COMMAND)
    assert driver.execute_script("return navigator.clipboard") is None
    button = finding.find_element(By.CSS_SELECTOR, '[data-ddtpp-snippet="fix"] button')
    button.click()
    assert copied(driver) == ['copy:.select_related("customer")']
    wait_for_label(driver, button, "Copied")
    # The temporary textarea is gone again.
    assert not driver.execute_script(
        'return document.getElementById("djDebugRoot").shadowRoot.querySelector("[data-ddtpp-root] > textarea")'
    )


def test_origin_before_after_and_prefetch_object_copy(live_server, driver):
    """Where-to-fix: the origin line before/after, and a Prefetch(to_attr=...) fix, one click each."""
    from shop.seed import seed

    seed(orders=10)
    driver.get(f"{live_server.url}/filtered-prefetch/bad/")
    content = browser.open_panel(driver)
    [section] = [
        s for s in content.find_elements(By.CSS_SELECTOR, "[data-ddtpp-finding]")
        if s.find_element(By.CSS_SELECTOR, ".ddtpp-subject").text == "shop.Order.pizzas"
    ]
    before = section.find_element(By.CSS_SELECTOR, ".ddtpp-before").text
    after = section.find_element(By.CSS_SELECTOR, ".ddtpp-after").text
    assert "Order.objects" in before and "Prefetch(" not in before
    assert after.startswith(before.split(".order_by")[0]) and 'to_attr="vegetarian_pizzas"' in after
    fix = section.find_element(By.CSS_SELECTOR, '[data-ddtpp-snippet="fix"]').text
    assert 'Prefetch("pizzas", queryset=Pizza.objects.filter(vegetarian=True)' in fix
    driver.execute_script(RECORD_CLIPBOARD)
    button = section.find_element(By.CSS_SELECTOR, 'button[data-ddtpp-copy^="origin-after-"]')
    button.click()
    assert copied(driver) == [after]
    wait_for_label(driver, button, "Copied")
