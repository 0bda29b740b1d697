"""Regenerate docs/session.png: the panel's "All requests" tab after browsing the demo.

    .venv/bin/python tests/session_screenshot.py [output.png]

Like tests/screenshot.py: the demo project on a free port of 127.0.0.1 with a freshly migrated
and seeded SQLite database in a temporary directory, photographed by headless Debian Chromium.
Five pages and one AJAX call are visited first, so the session has several requests.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("/forward-fk/bad/", "/template-loop/bad/", "/filtered-prefetch/bad/", "/count-per-row/bad/")
AJAX = ("const done = arguments[arguments.length - 1];"
        "fetch('/api/orders/bad/', {headers: {'X-Requested-With': 'XMLHttpRequest'}}).then(() => done());")
LAST = "/nested/bad/"
SIZE = (1400, 1000)


def main(output: Path) -> None:
    sys.path[:0] = [str(ROOT), str(ROOT / "demo")]
    from tests.screenshot import demo_in_browser, save

    with demo_in_browser(SIZE) as (driver, base):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        from tests import browser

        for page in PAGES:
            driver.get(base + page)
            browser.toolbar(driver)
        driver.execute_async_script(AJAX)
        driver.get(base + LAST)
        content = browser.open_panel(driver)
        content.find_element(By.CSS_SELECTOR, '[data-ddtpp-tab="session"]').click()
        area = content.find_element(By.CSS_SELECTOR, "[data-ddtpp-session-area]")
        WebDriverWait(driver, browser.TIMEOUT).until(
            lambda d: area.find_elements(By.CSS_SELECTOR, "[data-ddtpp-session-content]"),
            message="the session tab did not load",
        )
        save(driver, output)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "docs" / "session.png")
