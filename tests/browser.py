"""Headless Debian Chromium for the browser tests and the screenshot script.

Only the system browser is used (never a driver download): /usr/bin/chromium and
/usr/bin/chromedriver, from the Debian packages `chromium` and `chromium-driver`
(`make browser-deps` installs them).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PANEL_ID = "PrefetchPanel"
TIMEOUT = 20

# Background networking and component updates off: this machine's network is closed, and
# Chromium would otherwise keep trying to reach its services.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)


class BrowserMissing(RuntimeError):
    pass


def check_browser() -> None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        raise BrowserMissing(
            f"{' and '.join(missing)} not found: the browser tests need Debian's chromium and "
            "chromium-driver packages (run `make browser-deps`, or apt-get install chromium chromium-driver)"
        )


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[object]:
    """A headless Chromium WebDriver (page size width x height) with a fresh profile, quit and removed on exit."""
    check_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="ddtpp-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    driver = None
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(TIMEOUT * 2)
        # --window-size counts the (invisible) window frame too: grow the window until the
        # page itself gets width x height.
        inner_width, inner_height = driver.execute_script("return [innerWidth, innerHeight]")
        outer = driver.get_window_size()
        driver.set_window_size(outer["width"] + width - inner_width, outer["height"] + height - inner_height)
        yield driver
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def toolbar(driver):
    """The toolbar's shadow root (it renders inside #djDebugRoot)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    host = WebDriverWait(driver, TIMEOUT).until(lambda d: d.find_element(By.ID, "djDebugRoot"))
    return host.shadow_root


PANEL_STATE = """
const panel = document.getElementById("djDebugRoot").shadowRoot.getElementById(arguments[0]);
if (!panel) { return null; }
return {
    open: !panel.classList.contains("djdt-hidden"),
    loaded: panel.querySelector(".djdt-scroll [data-ddtpp-root]") !== null,
};
"""

# The panel's stylesheet: linked by its HTML when rendered with the page, by panel.js when DDT
# loads the panel through AJAX (so, there, a loaded sheet also says panel.js ran).
STYLESHEET_LOADED = """
const link = document.getElementById("djDebugRoot").shadowRoot.querySelector("link[data-ddtpp-css]");
return link !== null && link.sheet !== null;
"""


def panel_state(driver, panel_id: str = PANEL_ID) -> dict | None:
    """Whether the panel is open and its content loaded (None when the toolbar has no such panel)."""
    return driver.execute_script(PANEL_STATE, panel_id)


def open_panel(driver, panel_id: str = PANEL_ID):
    """Open the panel from its sidebar link; return its content once rendered and styled."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    root = toolbar(driver)
    link = WebDriverWait(driver, TIMEOUT).until(
        lambda d: _displayed(root, f"#djdt-{panel_id} a.{panel_id}"),
        message=f"the toolbar shows no link for {panel_id}",
    )
    assert not panel_state(driver, panel_id)["open"], f"{panel_id} was open before its link was clicked"
    link.click()
    # render_panel's response replaces the loader; panel.js is an ES module loaded with it.
    WebDriverWait(driver, TIMEOUT).until(
        lambda d: panel_state(d, panel_id)["loaded"], message=f"{panel_id} content did not load"
    )
    assert panel_state(driver, panel_id)["open"], f"{panel_id} closed again after its link was clicked"
    WebDriverWait(driver, TIMEOUT).until(
        lambda d: d.execute_script(STYLESHEET_LOADED), message="panel.css was not applied (or panel.js did not run)"
    )
    return root.find_element(By.CSS_SELECTOR, f"#{panel_id} .djdt-scroll [data-ddtpp-root]")


def _displayed(root, selector: str):
    from selenium.webdriver.common.by import By

    found = root.find_elements(By.CSS_SELECTOR, selector)
    return found[0] if found and found[0].is_displayed() else False
