"""Stage 5, report: the public API in one place, and the exports built on findings.

``detect()`` and ``analyze()`` live in ``analyze.py``, the data classes in ``findings.py``;
this module is the top of the import graph (nothing in the package imports it), so exports
that need both (session reports, SARIF, patches) can grow here without creating circles.
"""

from __future__ import annotations

from .analyze import analyze, detect
from .findings import KIND_TITLES, Finding, Report, display_path, frame_dict, where

__all__ = ["KIND_TITLES", "Finding", "Report", "analyze", "detect", "display_path", "frame_dict", "where"]
