"""Install ``fakelib_src`` into the test interpreter's site-packages (a real, non-editable install).

The library-only scenarios need code that really lives where third-party code lives, so
the project-code test (BASE_DIR, site-packages) sees it exactly as it sees DRF or taggit.
"""

from __future__ import annotations

import fcntl
import importlib
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "fakelib_src"
PACKAGE = "ddtpp_fakelib"


def _installed_matches() -> bool:
    try:
        module = importlib.import_module(PACKAGE)
    except ImportError:
        return False
    installed = Path(module.__file__)
    return "site-packages" in installed.parts and installed.read_bytes() == (
        SOURCE / PACKAGE / "__init__.py"
    ).read_bytes()


def ensure_installed() -> None:
    """pip-install the package unless the same version of it is already in site-packages."""
    if _installed_matches():
        return
    # pytest-xdist workers may all get here: one installs, the others wait and re-check.
    with open(Path(sys.prefix) / ".ddtpp-fakelib.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed_matches():
            _install()


def _install() -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-index", "--no-build-isolation", "--force-reinstall", str(SOURCE)],
        check=True,
    )
    importlib.invalidate_caches()
    sys.modules.pop(PACKAGE, None)
    if not _installed_matches():
        raise RuntimeError(f"{PACKAGE} did not install into site-packages")
