"""The demo's own suite (``demo/shop/tests.py``) against the baseline checked in beside this file
(``tests/demo_baseline.json``): CI fails the day someone adds an N+1 to the demo, while the
bad pages' N+1s, recorded there, are known.

After a deliberate change to the demo's pages, record the baseline again::

    cd demo && python -m pytest -p no:randomly --n-plus-one-report=../tests/demo_baseline.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.halves import SQLITE_HALF_ONLY

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "tests" / "demo_baseline.json"
# The demo's suite uses the demo's SQLite settings in both halves of `make test`: the SQLite half runs it.
pytestmark = SQLITE_HALF_ONLY


def _demo_suite(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "demo")])}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the demo's pytest.ini names its own settings
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:xdist", *args],
                          cwd=ROOT / "demo", env=env, capture_output=True, text=True, timeout=120)


def test_the_demo_suite_adds_no_n_plus_one_to_its_baseline(tmp_path):
    report = tmp_path / "demo.md"
    result = _demo_suite(f"--n-plus-one-report={report}", f"--n-plus-one-baseline={BASELINE}", "--n-plus-one-fail")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    recorded = json.loads(BASELINE.read_text())
    known = len(recorded["findings"])
    assert known >= 20  # every bad page's N+1
    assert report.read_text().splitlines()[0] == f"## ddt-prefetch-panel: 0 new N+1 problems, 0 fixed, {known} known"


def test_an_n_plus_one_missing_from_the_baseline_fails_the_demo_suite(tmp_path):
    """What CI sees the day the demo gains an N+1: one the baseline does not know."""
    recorded = json.loads(BASELINE.read_text())
    dropped = next(f for f in recorded["findings"] if f["relation"] == "shop.Pizza.toppings")
    recorded["findings"].remove(dropped)
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(recorded))
    result = _demo_suite(f"--n-plus-one-baseline={baseline}", "--n-plus-one-fail")
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout[-4000:]
    assert "--n-plus-one-fail: 1 new N+1 problem" in result.stdout
    new = result.stdout.split("\nNew:\n")[1].split("\nKnown, still there:")[0]
    assert new.startswith(f"N+1 shop.Pizza.toppings at {dropped['callsite']['filename']}:")
