"""ddt-prefetch-panel: find N+1 and duplicate queries, name the relation, and fix them.

Public API::

    from ddt_prefetch_panel import detect

    with detect() as report:
        run_code_that_queries()
    report.findings  # list[Finding], most avoidable queries first
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Finding", "Report", "detect", "__version__"]

if TYPE_CHECKING:
    from .analyze import detect
    from .findings import Finding, Report


def __getattr__(name: str) -> Any:
    # Lazy, so importing the package (e.g. from settings) never imports Django's models.
    if name == "detect":
        from .analyze import detect

        return detect
    if name in ("Finding", "Report"):
        from . import findings

        return getattr(findings, name)
    raise AttributeError(name)
