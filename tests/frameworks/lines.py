"""Find the line a scenario's assertion is about, by its text (robust to edits above it)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def line_of(relative: str, text: str) -> int:
    """1-based number of the only line of ``tests/frameworks/<relative>`` that contains ``text``."""
    lines = (ROOT / relative).read_text().splitlines()
    matches = [number for number, line in enumerate(lines, 1) if text in line]
    assert len(matches) == 1, (relative, text, matches)
    return matches[0]


def at(frame: dict | None, relative: str, text: str) -> bool:
    """Whether a finding's frame dict is that line of that file."""
    return (
        frame is not None
        and frame["filename"].endswith("tests/frameworks/" + relative)
        and frame["lineno"] == line_of(relative, text)
    )
