"""Regenerate docs/screenshot.png: the demo's combined-fix page (one verified fix for three
relations of one queryset) with the panel open.

    make screenshot            # or: .venv/bin/python tests/screenshot.py [output.png]

Runs the demo project in this process on a free port of 127.0.0.1, with a freshly migrated
and seeded SQLite database in a temporary directory (demo/db.sqlite3 is left alone), and
photographs it with headless Debian Chromium at 1400x1000.
"""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
PAGE = "/combined/bad/"
SIZE = (1400, 1000)


@contextmanager
def demo_in_browser(size: tuple[int, int] = SIZE) -> Iterator[tuple[object, str]]:
    """The demo on a free port of 127.0.0.1 (a fresh, seeded SQLite database in a temporary
    directory) and a headless Chromium: yields the driver and the base URL."""
    sys.path[:0] = [str(ROOT), str(ROOT / "demo")]
    from tests import browser

    browser.check_browser()
    with tempfile.TemporaryDirectory(prefix="ddtpp-screenshot-") as tmp:
        os.environ["DJANGO_SETTINGS_MODULE"] = "demo_project.settings"
        from django.conf import settings

        settings.DATABASES["default"]["NAME"] = str(Path(tmp) / "db.sqlite3")

        import django

        django.setup()
        from django.contrib.staticfiles.handlers import StaticFilesHandler
        from django.core.management import call_command
        from django.test.testcases import LiveServerThread

        call_command("migrate", verbosity=0, interactive=False)
        call_command("seed_demo")

        server = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
        server.daemon = True
        server.start()
        server.is_ready.wait()
        if server.error:
            raise server.error
        try:
            with browser.chromium(*size) as driver:
                yield driver, f"http://127.0.0.1:{server.port}"
        finally:
            server.terminate()


def save(driver, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(output)):
        raise RuntimeError(f"could not write {output}")
    print(f"wrote {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")


def main(output: Path) -> None:
    with demo_in_browser() as (driver, base):
        from selenium.webdriver.support.ui import WebDriverWait

        from tests import browser

        driver.get(base + PAGE)
        content = browser.open_panel(driver)
        assert "N+1" in content.text, content.text[:1000]
        assert combined_verified_fix(content), "the page shows no verified fix for several findings"
        # The panel's stylesheet is linked from its content and loads after it.
        WebDriverWait(driver, browser.TIMEOUT).until(
            lambda d: d.execute_script(
                "const link = document.getElementById('djDebugRoot').shadowRoot"
                ".querySelector('link[data-ddtpp-css]');"
                "return link !== null && link.sheet !== null && document.fonts.status === 'loaded';"
            ),
            message="panel.css did not load",
        )
        save(driver, output)


def combined_verified_fix(content) -> bool:
    """Whether the panel shows a fix card, verified, that serves more than one finding."""
    from selenium.webdriver.common.by import By

    return any(
        card.find_elements(By.CSS_SELECTOR, ".ddtpp-proof-verified")
        and len(card.find_elements(By.CSS_SELECTOR, "[data-ddtpp-goto^='finding-']")) > 1
        for card in content.find_elements(By.CSS_SELECTOR, "[data-ddtpp-fix]")
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "docs" / "screenshot.png")
