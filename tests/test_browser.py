"""The panel in a real browser: the toolbar's shadow DOM, the AJAX render and the copy buttons.

Debian's Chromium runs headless against a live server on 127.0.0.1 (a secure context, so
``navigator.clipboard`` exists). The clipboard itself is replaced by recorders: headless
Chromium has no system clipboard to read back.
"""

from __future__ import annotations

import threading
import time

import django
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


def test_act_here_on_a_generic_views_model_line_and_copy_it(live_server, driver):
    """A ListView with ``model = Order``: the panel's "Act here" names the view's line and copies
    the two lines that go there (model kept, queryset declared)."""
    from shop.seed import seed

    seed(orders=10)
    driver.get(f"{live_server.url}/generic-views/bad/")
    content = browser.open_panel(driver)
    [section] = [
        s for s in content.find_elements(By.CSS_SELECTOR, "[data-ddtpp-finding]")
        if s.find_element(By.CSS_SELECTOR, ".ddtpp-subject").text == "shop.Order.customer"
    ]
    place = section.find_element(By.CSS_SELECTOR, '[data-ddtpp-place="class_attr"]')
    assert "demo/shop/views.py:" in place.text and "OrderListBad" in place.text
    assert place.find_element(By.CSS_SELECTOR, ".ddtpp-before").text == "model = Order"
    after = place.find_element(By.CSS_SELECTOR, ".ddtpp-after").text
    assert after == 'model = Order\nqueryset = Order.objects.select_related("customer")'
    driver.execute_script(RECORD_CLIPBOARD)
    button = place.find_element(By.CSS_SELECTOR, 'button[data-ddtpp-copy^="place-after-"]')
    button.click()
    assert copied(driver) == [after]
    wait_for_label(driver, button, "Copied")


# Colours the panel's stylesheet gives a finding, and what DDT's variables and ours resolve to in
# the toolbar's current theme (a probe element resolves var(...) the way the browser does).
FINDING_COLOURS = """
const shadow = document.getElementById("djDebugRoot").shadowRoot;
const djDebug = shadow.getElementById("djDebug");
const section = arguments[0];
function resolve(name) {
    const probe = document.createElement("span");
    probe.style.color = `var(${name})`;
    section.appendChild(probe);
    const colour = getComputedStyle(probe).color;
    probe.remove();
    return colour;
}
const style = getComputedStyle(section);
const badge = getComputedStyle(section.querySelector(".ddtpp-badge"));
return {
    theme: djDebug.dataset.theme,
    border_width: style.borderLeftWidth,
    border: style.borderLeftColor,
    background: style.backgroundColor,
    text: getComputedStyle(section.closest("[data-ddtpp-root]")).color,
    badge: badge.backgroundColor,
    badge_text: badge.color,
    kind_variable: resolve("--ddtpp-n-plus-one-color"),
    ddt_background: resolve("--djdt-background-color"),
    ddt_font: resolve("--djdt-font-color"),
};
"""


def n_plus_one_section(content, subject: str = "shop.Order.customer"):
    for section in content.find_elements(By.CSS_SELECTOR, "section.ddtpp-kind-n_plus_one"):
        if section.find_element(By.CSS_SELECTOR, ".ddtpp-subject").text == subject:
            return section
    pytest.fail(f"no N+1 finding on {subject} in the panel:\n{content.text[:2000]}")


def colours_in_theme(driver, url: str, theme: str) -> dict:
    """The forward-FK finding's colours with DDT's theme switch set to ``theme``."""
    driver.get(url)
    driver.execute_script("localStorage.setItem('djdt.user-theme', arguments[0])", theme)
    try:
        driver.get(url)
        section = n_plus_one_section(browser.open_panel(driver))
        return driver.execute_script(FINDING_COLOURS, section)
    finally:
        driver.execute_script("localStorage.removeItem('djdt.user-theme')")


def test_dark_theme_colours_come_from_the_toolbar_variables(live_server, driver):
    from shop.seed import seed

    seed(orders=10)
    url = f"{live_server.url}/forward-fk/bad/"
    light = colours_in_theme(driver, url, "light")
    dark = colours_in_theme(driver, url, "dark")
    assert (light["theme"], dark["theme"]) == ("light", "dark")
    for colours in (light, dark):
        # The kind's colour on the border and the badge, DDT's own colours behind and on the text.
        assert colours["border_width"] == "4px", colours
        assert colours["border"] == colours["badge"] == colours["kind_variable"], colours
        assert colours["background"] == colours["ddt_background"] == colours["badge_text"], colours
        assert colours["text"] == colours["ddt_font"], colours
    for key in ("border", "background", "text"):
        assert light[key] != dark[key], (key, light[key])


def test_copy_in_dark_theme_and_listener_installed_once(live_server, driver):
    """Copy works in the dark theme; DDT inserting panel.js again does not add a second listener."""
    from shop.seed import seed

    seed(orders=10)
    url = f"{live_server.url}/forward-fk/bad/"
    driver.get(url)
    driver.execute_script("localStorage.setItem('djdt.user-theme', 'dark')")
    try:
        driver.get(url)
        section = n_plus_one_section(browser.open_panel(driver))
        assert driver.execute_script(FINDING_COLOURS, section)["theme"] == "dark"
        # What DDT's $$.executeScripts does each time it renders a panel through AJAX.
        driver.execute_script(
            """
            const el = document.createElement("script");
            el.type = "module";
            el.src = arguments[0];
            document.head.appendChild(el);
            """,
            driver.execute_script(
                "return [...document.scripts].find((s) => s.src.endsWith('ddt_prefetch_panel/panel.js')).src"
            ),
        )
        driver.execute_script(RECORD_CLIPBOARD)
        button = section.find_element(By.CSS_SELECTOR, '[data-ddtpp-snippet="fix"] button')
        button.click()
        wait_for_label(driver, button, "Copied")
        assert driver.execute_script("return window.__copied") == ['.select_related("customer")']
    finally:
        driver.execute_script("localStorage.removeItem('djdt.user-theme')")


# Every CSP violation of the page, recorded before any of its scripts runs.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
    window.__violations.push(`${event.effectiveDirective} ${event.blockedURI}`);
});
"""

NONCES = """
const shadow = document.getElementById("djDebugRoot").shadowRoot;
const ddt = shadow.querySelector("script[src$='debug_toolbar/js/toolbar.js']");
const ours = shadow.querySelector("link[data-ddtpp-css]");
return {ddt: ddt.nonce, stylesheet: ours.nonce, sheet: ours.sheet !== null};
"""

UNNONCED_STYLESHEET_BLOCKED = """
const done = arguments[arguments.length - 1];
const link = document.createElement("link");
link.rel = "stylesheet";
link.href = arguments[0];
link.onload = () => done("loaded");
link.onerror = () => done("blocked");
document.getElementById("djDebugRoot").shadowRoot.append(link);
"""


def csp_settings(source: str) -> dict:
    """Settings that put a nonce policy on every response: tests.csp's middleware (the nonce as
    django-csp exposes it) or Django 6's own ContentSecurityPolicyMiddleware."""
    from django.conf import settings

    if source == "request.csp_nonce":
        return {"MIDDLEWARE": ["tests.csp.NonceCSPMiddleware", *settings.MIDDLEWARE]}
    from django.utils.csp import CSP

    return {
        "MIDDLEWARE": [
            "django.middleware.csp.ContentSecurityPolicyMiddleware",
            "tests.csp.UseDjangoNonceMiddleware",
            *settings.MIDDLEWARE,
        ],
        "SECURE_CSP": {
            "default-src": [CSP.SELF],
            "script-src": [CSP.NONCE, CSP.STRICT_DYNAMIC],
            "style-src": [CSP.NONCE],
            "img-src": [CSP.SELF, "data:"],
        },
    }


@pytest.fixture(
    params=[
        ("request.csp_nonce", False),
        ("request.csp_nonce", True),
        pytest.param(
            ("django", False),
            marks=pytest.mark.skipif(django.VERSION < (6, 0), reason="Django's own CSP middleware is new in 6.0"),
        ),
    ],
    ids=["ajax-panels", "render-panels", "django-csp-middleware"],
)
def csp_server(request, live_server, driver):
    """A second live server whose responses carry a nonce Content-Security-Policy.

    Parametrised by where the nonce comes from and by DDT's RENDER_PANELS: panels loaded by
    DDT's AJAX view (its default), or rendered with the page.
    """
    from django.conf import settings
    from django.test import override_settings

    source, render_panels = request.param
    with override_settings(
        **csp_settings(source),
        DEBUG_TOOLBAR_CONFIG={**settings.DEBUG_TOOLBAR_CONFIG, "RENDER_PANELS": render_panels},
    ):
        server = LiveServer("127.0.0.1:0")
        try:
            yield server
        finally:
            driver.get("about:blank")
            server.stop()


def test_panel_under_a_nonce_content_security_policy(csp_server, driver):
    from shop.seed import seed

    seed(orders=10)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    driver.get(f"{csp_server.url}/forward-fk/bad/")
    section = n_plus_one_section(browser.open_panel(driver))
    nonces = driver.execute_script(NONCES)
    assert nonces["ddt"] and nonces["stylesheet"] == nonces["ddt"], nonces
    assert driver.execute_script(FINDING_COLOURS, section)["border_width"] == "4px"
    violations = driver.execute_script("return window.__violations")
    assert not [v for v in violations if "ddt_prefetch_panel" in v], violations
    # The policy is enforced: the same stylesheet without the nonce is refused.
    href = driver.execute_script("return arguments[0].closest('[data-ddtpp-root]').dataset.ddtppStylesheet", section)
    assert driver.execute_async_script(UNNONCED_STYLESHEET_BLOCKED, href) == "blocked"

    driver.execute_script(RECORD_CLIPBOARD)
    button = section.find_element(By.CSS_SELECTOR, 'button[data-ddtpp-copy^="finding-markdown-"]')
    button.click()
    [markdown] = copied(driver)
    assert "shop.Order.customer" in markdown
    wait_for_label(driver, button, "Copied")


def test_demo_index_is_usable_on_load(live_server, driver):
    """A new user's first page: nothing covers the index, a scenario link opens its page, and the
    toolbar's Prefetch link opens and closes the panel (no script of the demo fights it)."""
    from shop.seed import seed

    seed(orders=10)
    driver.get(f"{live_server.url}/")
    root = browser.toolbar(driver)
    WebDriverWait(driver, browser.TIMEOUT).until(
        lambda d: browser._displayed(root, f"#djdt-{browser.PANEL_ID} a"), message="the toolbar did not show"
    )
    time.sleep(1)  # the demo used to open the panel a moment after load
    assert not root.find_elements(By.CSS_SELECTOR, ".djdt-panelContent:not(.djdt-hidden)")
    link = driver.find_element(By.LINK_TEXT, "bad")
    assert driver.execute_script(
        """
        const box = arguments[0].getBoundingClientRect();
        return document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2) === arguments[0];
        """,
        link,
    ), "the first scenario link is covered"
    link.click()

    WebDriverWait(driver, browser.TIMEOUT).until(lambda d: d.current_url.endswith("/forward-fk/bad/"))
    assert "Prefetch" in driver.find_element(By.CSS_SELECTOR, "[data-hint=panel]").text
    time.sleep(1)
    assert browser.panel_state(driver)["open"] is False
    content = browser.open_panel(driver)
    assert "shop.Order.customer" in content.text
    time.sleep(1)
    assert browser.panel_state(driver)["open"] is True, "the panel closed by itself"
    browser.toolbar(driver).find_element(By.CSS_SELECTOR, f"#djdt-{browser.PANEL_ID} a").click()
    WebDriverWait(driver, browser.TIMEOUT).until(
        lambda d: browser.panel_state(d)["open"] is False, message="the Prefetch link did not close the panel"
    )


# --------------------------------------------------------------------------- proven fixes

FOCUSED_ANCHOR = """
const active = document.getElementById("djDebugRoot").shadowRoot.activeElement;
return active ? active.dataset.ddtppAnchor || null : null;
"""


def combined_fixes() -> list[dict]:
    """``report.fixes`` of the demo's combined page, from ``detect()`` around its view."""
    from django.test import RequestFactory
    from shop import views

    from ddt_prefetch_panel import detect

    with detect() as report:
        views.combined_bad(RequestFactory().get("/combined/bad/"))
    return report.fixes


def test_copy_the_combined_fix_and_read_its_proof(live_server, driver):
    """The demo's combined page: one card for three relations of one queryset, its proof in
    words, and one click for the rewritten line or the call."""
    from shop.seed import seed

    seed(orders=10)
    [expected] = combined_fixes()
    fix, line, proven = expected["fix"], expected["line"], expected["proof"]
    assert fix.startswith('.select_related("customer").prefetch_related(') and line.endswith(fix)
    driver.get(f"{live_server.url}/combined/bad/")
    content = browser.open_panel(driver)
    [card] = content.find_elements(By.CSS_SELECTOR, "[data-ddtpp-fix]")
    proof = card.find_element(By.CSS_SELECTOR, ".ddtpp-proof-line")
    assert proof.is_displayed()
    assert proof.text.startswith(
        f"Verified on this request: {proven['before']} → {proven['after']} queries for these loops"
    ), proof.text
    assert card.find_element(By.CSS_SELECTOR, ".ddtpp-proof-verified").text.startswith("verified ")

    driver.execute_script(RECORD_CLIPBOARD)
    button = card.find_element(By.CSS_SELECTOR, 'button[data-ddtpp-copy="fix-1-fix"]')
    button.click()
    assert copied(driver) == [fix]
    wait_for_label(driver, button, "Copied")

    driver.execute_script(RECORD_CLIPBOARD)
    card.find_element(By.CSS_SELECTOR, 'button[data-ddtpp-copy="fix-1-line"]').click()
    assert copied(driver) == [line]

    # The card links to its findings; each finding links back to the card.
    links = card.find_elements(By.CSS_SELECTOR, "[data-ddtpp-goto^='finding-']")
    assert len(links) == 2
    links[-1].click()
    target = links[-1].get_attribute("data-ddtpp-goto")
    WebDriverWait(driver, browser.TIMEOUT).until(lambda d: d.execute_script(FOCUSED_ANCHOR) == target)
    section = content.find_element(By.CSS_SELECTOR, f'[data-ddtpp-anchor="{target}"]')
    section.find_element(By.CSS_SELECTOR, ".ddtpp-fix-link").click()
    WebDriverWait(driver, browser.TIMEOUT).until(lambda d: d.execute_script(FOCUSED_ANCHOR) == "fix-1")
    assert driver.current_url.endswith("/combined/bad/"), "a panel link changed the page's URL"


def test_failed_proof_shows_the_reason_and_no_fix_to_copy(live_server, driver, monkeypatch):
    from shop.seed import seed

    from tests.test_panel import wrong_advice

    seed(orders=10)
    wrong_advice(monkeypatch)
    driver.get(f"{live_server.url}/forward-fk/bad/")
    content = browser.open_panel(driver)
    section = n_plus_one_section(content)
    assert section.find_element(By.CSS_SELECTOR, ".ddtpp-proof").text.startswith("failed")
    proof = section.find_element(By.CSS_SELECTOR, ".ddtpp-proof-line")
    assert proof.is_displayed()
    assert "Failed on this request's data, so no fix is shown." in proof.text
    assert 'Tried: .prefetch_related("pizzas")' in proof.text
    assert "did not remove the repeated queries" in proof.text
    assert not content.find_elements(By.CSS_SELECTOR, "[data-ddtpp-fix]")
    assert not section.find_elements(By.CSS_SELECTOR, "[data-ddtpp-snippet], .ddtpp-after")
    buttons = section.find_elements(By.CSS_SELECTOR, "button[data-ddtpp-copy]")
    assert [b.text for b in buttons] == ["Copy as Markdown"]


def test_library_findings_are_folded_with_nothing_to_copy(live_server, driver):
    """A queryset built and looped by an installed package: its finding sits in a closed "In
    library code" group, with no fix card and nothing to copy (its fix would go upstream);
    opening the group shows it."""
    from tests.frameworks.catalog.seed import seed
    from tests.frameworks.fakelib import ensure_installed

    ensure_installed()
    seed(authors=4, books_per_author=3)
    driver.get(f"{live_server.url}/fw/exports/library/")
    content = browser.open_panel(driver)
    group = content.find_element(By.CSS_SELECTOR, "details[data-ddtpp-library]")
    assert group.get_attribute("open") is None
    summary = group.find_element(By.CSS_SELECTOR, "summary")
    assert summary.text.startswith("In library code (1): ddtpp_fakelib"), summary.text
    section = group.find_element(By.CSS_SELECTOR, "[data-ddtpp-finding]")
    assert not section.is_displayed()
    assert not content.find_elements(By.CSS_SELECTOR, "[data-ddtpp-findings] [data-ddtpp-finding]")
    assert not content.find_elements(By.CSS_SELECTOR, "[data-ddtpp-fix]")  # upstream: no card
    summary.click()
    WebDriverWait(driver, browser.TIMEOUT).until(lambda d: section.is_displayed())
    assert group.get_attribute("open") is not None
    assert not section.find_elements(By.CSS_SELECTOR, "[data-ddtpp-snippet]")
    assert "nothing to paste" in section.text
