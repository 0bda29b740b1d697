"""Smoke test of the benchmark (``make bench``): a --quick run in a subprocess.

The full benchmark takes minutes and does not run in CI; this only proves the script
still sets Django up, drives all four configurations and prints its report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "benchmarks" / "bench.py"
CONFIGURATIONS = ("no toolbar", "SQL only", "SQL + ours", "ours only")


def test_bench_quick_run(tmp_path: Path) -> None:
    output = tmp_path / "bench.md"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--sizes", "10", "--rows", "200", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    stdout = result.stdout
    assert "| N | no toolbar | SQL only | SQL + ours | ours only |" in stdout, stdout
    for label in CONFIGURATIONS:
        assert f"| {label} |" in stdout, f"{label!r} missing from the memory table:\n{stdout}"
    assert "\n| 10 | " in stdout, stdout
    assert "### Targets" in stdout
    assert output.read_text(encoding="utf-8") == stdout
