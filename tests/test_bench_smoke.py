"""Smoke test of the benchmark (``make bench``): a --quick run in a subprocess.

The full benchmark takes minutes and does not run in CI; this only proves that the harness
still starts a worker per configuration, checks each (panels ran, queries seen, N+1
reported) on every loop shape, times the shuffled turns, runs the memory pass and the real
pages, and prints its report. The peers (django-zeal, nplusone) live in make bench's own venv: left out here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.halves import SQLITE_HALF_ONLY

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "benchmarks" / "bench.py"
# Few worker processes, so the test stays short; the lazy ones fill the store and open the panel.
CONFIGS = "none,ours,ours-lazy,default,default+ours,default+ours-lazy"
LABELS = ("no toolbar", "ours alone", "ours alone, lazy proofs", "DDT default panels", "default panels + ours")


@SQLITE_HALF_ONLY  # the benchmark's own in-memory SQLite
def test_bench_quick_run(tmp_path: Path) -> None:
    output = tmp_path / "bench.md"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--no-peers", "--configs", CONFIGS, "--pages", "demo",
         "--memory-n", "50", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    stdout = result.stdout
    assert "### N = 10\n" in stdout, stdout
    for label in LABELS:
        assert f"\n| {label} | " in stdout, f"{label!r} missing:\n{stdout}"
    assert "django-zeal alone" not in stdout and "nplusone alone" not in stdout
    assert "| *default panels + ours, over default panels* |" in stdout
    assert "### Memory: one request at N = 50" in stdout
    # Measured with DDT's store full (25 requests held for their lazy proofs), not computed.
    assert "Measured with a full store, `/orders/?n=50`" in stdout, stdout
    assert "ours alone with lazy proofs served 25 requests first" in stdout
    assert "and a full store (25 held requests, measured) / no toolbar: " in stdout
    # Opening the panel on a real page: DDT's render_panel view, the lazy proofs made then.
    assert "| demo's heaviest page `/shop/combined/bad/` | " in stdout, stdout
    assert "- demo's heaviest page: opening the panel renders in " in stdout
    assert "| demo's heaviest page, `/shop/" in stdout, stdout
    assert "### Targets (issue 15)" in stdout
    assert "### Loop shapes at N = 10\n" in stdout, stdout
    for shape in ("forward FK", "reverse FK, manager iterated", "reverse FK, len()", "M2M .all()",
                  ".count() per row", "template loop", "DRF nested serializer list"):
        assert f"\n| {shape} | " in stdout, f"loop shape {shape!r} missing:\n{stdout}"
        assert f"\n- {shape}: below both peers" in stdout, stdout
    assert "### Targets per loop shape (issue 23)" in stdout
    assert "- Machine: " in stdout and "django-debug-toolbar " in stdout
    assert output.read_text(encoding="utf-8") == stdout
