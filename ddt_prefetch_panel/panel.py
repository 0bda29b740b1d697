"""Stage 6, panel: the django-debug-toolbar panel.

Capture starts in ``enable_instrumentation`` and stops in ``disable_instrumentation``;
``generate_stats`` runs the analysis once and records plain data once, so DDT's history,
``render_panel`` and any store (memory or database) can render it later.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any

from debug_toolbar.panels import Panel
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils.translation import gettext_lazy as _, ngettext

from . import capture as cap
from .conf import get_config
from .editor import link_finding
from .analyze import analyze
from .findings import KIND_TITLES, Report


class PrefetchPanel(Panel):
    """N+1 and duplicate queries, grouped by call site, with the relation and the fix."""

    title = _("N+1 queries and prefetching")
    nav_title = _("Prefetch")
    template = "ddt_prefetch_panel/panel.html"
    # Capture state is a ContextVar and cursors of sync_to_async threads are wrapped on first
    # use, so ASGI requests (async views, sync views run in threads) are covered.
    is_async = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._capture: tuple | None = None

    @property
    def nav_subtitle(self) -> str:
        stats = self.get_stats()
        if stats.get("error"):
            return _("analysis failed")
        summary = (stats.get("report") or {}).get("summary") or {}
        n_plus_one = summary.get("n_plus_one", 0)
        avoidable = summary.get("avoidable", 0)
        if not n_plus_one and not avoidable:
            return _("no repeated queries")
        return "%s · %s" % (
            ngettext("%(count)d N+1", "%(count)d N+1", n_plus_one) % {"count": n_plus_one},
            ngettext("%(count)d avoidable query", "%(count)d avoidable queries", avoidable)
            % {"count": avoidable},
        )

    @classmethod
    def run_checks(cls) -> list:
        from .checks import panel_checks

        return panel_checks()

    @classmethod
    def get_urls(cls) -> list:
        from .session import session_urls

        return session_urls()  # the "All requests" tab, read from DDT's store

    @property
    def scripts(self) -> list[str]:
        scripts = super().scripts
        scripts.append(static("ddt_prefetch_panel/panel.js"))
        scripts.append(static("ddt_prefetch_panel/session.js"))
        return scripts

    def enable_instrumentation(self) -> None:
        if self._capture is None:
            # The toolbar middleware's frame stays on the stack for the whole request.
            self._capture = cap.start(propagate=True, anchor=sys._getframe(1))

    def disable_instrumentation(self) -> None:
        if self._capture is not None:
            cap.stop(*self._capture)

    def generate_stats(self, request: Any, response: Any) -> None:
        stats: dict[str, Any] = {"report": None, "error": None}
        if self._capture is None:
            stats["error"] = {"type": "NotCaptured", "message": str(_("No queries were captured for this request."))}
        else:
            try:
                stats["report"] = analyze(self._capture[0], get_config()).to_dict()
            except Exception as exc:  # the panel reports its own failure, never breaks the page
                stats["error"] = {
                    "type": type(exc).__name__,
                    "message": str(exc),
                    "traceback": traceback.format_exc(limit=8),
                }
            self._capture = None
        self.record_stats(stats)

    @property
    def content(self) -> str:
        # Rendered with the page (DDT's RENDER_PANELS), the toolbar knows the request and its
        # CSP nonce. Rendered later by DDT's AJAX views, a stored toolbar has no request: the
        # page's nonce is unknown here, and panel.js links the stylesheet with it instead.
        with_page = self.toolbar.request is not None
        return render_to_string(
            self.template,
            panel_context(
                self.get_stats(),
                csp_nonce=self.toolbar.csp_nonce if with_page else None,
                link_stylesheet=with_page,
            ),
        )


def printable(value: Any) -> Any:
    """Strings that can be encoded as UTF-8 (lone surrogates in SQL become visible escapes).

    The toolbar is inserted into the user's page: one unencodable character in a statement
    would otherwise turn the whole page into a 500.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {k: printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [printable(v) for v in value]
    return value


def panel_context(stats: dict, *, csp_nonce: str | None = None, link_stylesheet: bool = True) -> dict:
    """Template context built from stored stats alone (they may come from another process).

    ``link_stylesheet`` puts the stylesheet's ``<link>`` (with ``csp_nonce``) in the HTML;
    otherwise panel.js links it with the nonce of the page DDT was inserted into.
    """
    stats = printable(stats)
    data = stats.get("report") or {}
    error = stats.get("error")
    context: dict[str, Any] = {
        "error": error,
        "summary": data.get("summary") or {},
        "findings": [],
        "csp_nonce": csp_nonce,
        "link_stylesheet": link_stylesheet,
    }
    try:
        report = Report.from_dict(data) if data else Report()
        context["report_markdown"] = report.to_markdown()
        context["report_json"] = json.dumps(data, indent=2, sort_keys=True)
        editor = get_config().get("EDITOR_URL")
        for finding_data, finding in zip(data.get("findings", []), report.findings):
            context["findings"].append(
                {
                    **link_finding(finding_data, editor),
                    "title": finding.title,
                    "kind_label": str(KIND_TITLES.get(finding.kind, finding.kind)),
                    "markdown": finding.to_markdown(),
                }
            )
    except Exception as exc:  # stored data from an older version, or corrupted
        context["error"] = {"type": type(exc).__name__, "message": str(exc)}
    return context
