"""Stage 6, panel: the django-debug-toolbar panel.

Capture starts in ``enable_instrumentation`` and stops in ``disable_instrumentation``;
``generate_stats`` runs the analysis once and records plain data once, so DDT's history,
``render_panel`` and any store (memory or database) can render it later.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from debug_toolbar.panels import Panel
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils.translation import gettext_lazy as _, ngettext

from . import capture as cap
from .conf import get_config
from .editor import frame_url, link_finding
from .analyze import analyze
from .findings import KIND_TITLES, Report, note_without_proof, place_is_origin
from .frames import ELSEWHERE
from .lazy import error_of, has_fixes, prove_held
from .shared import remember
from .patch import place_frame


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
            capture = self._capture[0]
            self._capture = None
            config = get_config()
            # Lazy proofs: the page pays for the findings only; the replays wait for the panel.
            lazy = config.get("PROOFS") and config.get("PROOF_MODE") == "lazy" and self.toolbar.request_id
            try:
                report = analyze(capture, {**config, "PROOFS": False} if lazy else config)
                stats["report"] = report.to_dict()
            except Exception as exc:  # the panel reports its own failure, never breaks the page
                stats["error"] = error_of(exc)
                lazy = False
            pending = bool(lazy and has_fixes(stats["report"]))
            if pending:
                stats["proofs"] = "pending"
            if config.get("PROOFS") and self.toolbar.request_id and stats["error"] is None and capture.roots:
                # Held for its own lazy proofs, and for the fixes of other requests built on the
                # same lines (shared.py): a fix there is replayed on this request's roots too.
                remember(self.toolbar.request_id, capture, f"{request.method} {request.get_full_path()}", pending)
            else:
                capture.release()
        self.record_stats(stats)

    def prove_pending(self) -> None:
        """Run the proofs a lazy panel left for now (see :func:`prove_held`) and store them."""
        stats = self.get_stats()
        if stats.get("proofs") == "pending":
            self.record_stats(prove_held(self.toolbar.request_id, stats))

    @property
    def content(self) -> str:
        self.prove_pending()
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

    Findings and fixes of library code only (``Finding.library``: the queryset is built and
    looped by an installed package) go to ``library_findings``/``library_fixes``, which the
    template folds; every finding keeps its ``number`` (position in the report, from 1).
    """
    stats = printable(stats)
    data = stats.get("report") or {}
    error = stats.get("error")
    summary = data.get("summary") or {}
    context: dict[str, Any] = {
        "session_url": session_tab_url(),
        "error": error,
        "summary": summary,
        "findings": [],
        "fixes": [],
        "library_findings": [],
        "library_fixes": [],
        "library_packages": [],
        "disabled_hooks": [],
        "hook_failures": [],
        "csp_nonce": csp_nonce,
        "link_stylesheet": link_stylesheet,
        "proofs": stats.get("proofs"),  # "pending" (lazy, not opened yet), "opened", "expired"
    }
    try:
        context["disabled_hooks"] = disabled_hook_notes(summary.get("disabled_hooks"))
        context["hook_failures"] = disabled_hook_notes(summary.get("hook_failures"))
        report = Report.from_dict(data) if data else Report()
        context["report_markdown"] = report.to_markdown()
        context["report_json"] = json.dumps(data, indent=2, sort_keys=True)
        editor = get_config().get("EDITOR_URL")
        fixes = data.get("fixes") or []
        findings = []
        for index, (finding_data, finding) in enumerate(zip(data.get("findings", []), report.findings)):
            fix_id = finding.fix_id if isinstance(finding.fix_id, int) and 0 <= finding.fix_id < len(fixes) else None
            findings.append(
                {
                    **link_finding(finding_data, editor),
                    "act": act_here(finding_data, editor),
                    "number": index + 1,
                    "title": finding.title,
                    "kind_label": str(KIND_TITLES.get(finding.kind, finding.kind)),
                    "markdown": finding.to_markdown(),
                    "proof": proof_view(finding.proof),
                    "fix_number": None if fix_id is None else fix_id + 1,
                    "fix_partners": 0 if fix_id is None else max(0, len(fixes[fix_id].get("findings") or []) - 1),
                    "snippet_list": shown_snippets(finding_data),
                    "note": note_without_proof(finding.note, finding.proof),
                    "library": bool(finding.library),
                    "package": library_package(finding_data) if finding.library else None,
                }
            )
        for finding in findings:
            context["library_findings" if finding["library"] else "findings"].append(finding)
        for index, fix in enumerate(fixes):
            card = fix_card(index, fix, findings, editor)
            context["library_fixes" if card["library"] else "fixes"].append(card)
        context["library_packages"] = sorted({f["package"] for f in context["library_findings"] if f["package"]})
    except Exception as exc:  # stored data from an older version, or corrupted
        context["error"] = {"type": type(exc).__name__, "message": str(exc)}
    return context


# Snippets that are a fix to paste: never shown for a fix whose replay failed.
PASTEABLE_SNIPPETS = ("fix", "line", "queryset", "access", "import", "bulk", "patch")


def proof_view(proof: dict | None) -> dict | None:
    """A proof as the template shows it: its status, and whether its fix may be pasted.

    ``verified``: replayed and constant; ``failed``: the fix raised or still repeats (never
    paste-able); ``skipped``: not replayed (proofs off, budget spent, a locking queryset),
    shown as "not verified".
    """
    if not proof or not proof.get("status"):
        return None
    status = str(proof["status"])
    return {
        "status": status,
        "verified": status == "verified",
        "failed": status == "failed",
        "before": proof.get("before"),
        "after": proof.get("after"),
        "counted": isinstance(proof.get("before"), int) and isinstance(proof.get("after"), int),
        "rows": proof.get("rows") or 0,
        "opened": proof.get("when") == "opened",
        "page_before": proof.get("page_before"),
        "page_after": proof.get("page_after"),
        "detail": proof.get("detail") or "",
        "tried": proof.get("fix") or "",
    }


PLACE_LABELS = {
    "queryset": _("the line that builds the queryset"),
    "class_attr": _("a class attribute of your view or admin"),
    "override": _("a method to add in your subclass"),
    "upstream": _("inside an installed package: nothing in your project to paste"),
}


def act_here(finding: dict, editor: str | None) -> dict | None:
    """The finding's place as the template shows it, when it is not the origin line itself:
    a frame-like dict (link, code) with its kind's label, class, package and version."""
    place = finding.get("place") or {}
    if not place.get("file") or place_is_origin(place, finding.get("origin")):
        return None
    frame = {"filename": place["file"], "lineno": place.get("line"), "code": place.get("code") or ""}
    if place.get("kind") == "upstream":
        frame.update(distribution=place.get("package"), version=place.get("version"))
    elif editor:
        url = frame_url(frame, editor)
        if url:
            frame["editor_url"] = url
    return {**frame, "kind": place.get("kind"), "label": PLACE_LABELS.get(place.get("kind"), ""),
            "class": place.get("class"), "upstream": place.get("kind") == "upstream"}


def shown_snippets(finding: dict) -> list[dict]:
    """(name, code) of the snippets the finding shows, in their order; none of a failed fix.

    The origin's rewritten ``line`` is shown next to the origin (before/after) when the
    origin's source is known, so it is not repeated in the list.
    """
    snippets = finding.get("snippets") or {}
    proof = finding.get("proof") or {}
    origin = finding.get("origin") or {}
    shown = []
    for name, code in snippets.items():
        if proof.get("status") == "failed" and name in PASTEABLE_SNIPPETS:
            continue
        if name == "line" and origin.get("code"):
            continue
        if code:
            shown.append({"name": name, "code": code})
    return shown


def library_package(finding: dict) -> str | None:
    """The installed package a library finding runs in: the top-level import package of the
    first library file among its origin, call site or stack frames."""
    frames = [finding.get("origin"), finding.get("evaluated_at"), finding.get("callsite"),
              *(finding.get("callsites") or []), *(finding.get("stack") or [])]
    for frame in frames:
        if isinstance(frame, dict) and frame.get("filename") and not frame.get("template"):
            filename = str(frame["filename"])
            if frame.get("distribution") or (frame.get("library") and not filename.startswith(("<", ELSEWHERE))):
                top = filename.split("/", 1)[0]  # an import path: modelcluster/fields.py
                return top[:-3] if top.endswith(".py") else top
            package = site_package(filename)  # stored before paths were shown relative
            if package:
                return package
    return None


def site_package(filename: str) -> str | None:
    """``rest_framework`` of ``.../site-packages/rest_framework/serializers.py``, or None."""
    parts = filename.replace("\\", "/").split("/")
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            position = len(parts) - 1 - parts[::-1].index(marker)
            if position + 1 < len(parts):
                name = parts[position + 1]
                return name[:-3] if name.endswith(".py") else name
    return None


def fix_card(index: int, fix: dict, findings: list[dict], editor: str | None) -> dict:
    """One ``report.fixes`` entry for the template: the combined fix, where it goes, its proof
    and the findings it serves (``library`` when all of them are library-only)."""
    members = [findings[i] for i in fix.get("findings") or [] if isinstance(i, int) and 0 <= i < len(findings)]
    # The card's before/after is the line the fix goes on: the place (a view's model = line, its
    # queryset = line) when there is one, else the origin.
    origin = place_frame(fix) or fix.get("origin")
    if isinstance(origin, dict) and editor:
        url = frame_url(origin, editor)
        origin = {**origin, "editor_url": url} if url else origin
    proof = proof_view(fix.get("proof"))
    return {
        "number": index + 1,
        "origin": origin,
        "fix": fix.get("fix") or "",
        "line": fix.get("line"),
        "import": fix.get("import") or "",
        # Loop lines the fix changes too (to_attr lists, annotations): proven together.
        "access": [a for a in fix.get("access") or [] if isinstance(a, dict) and a.get("line")],
        "lookups": list(fix.get("lookups") or []),
        "proof": proof,
        # Analysis only keeps fixes whose replay did not fail; a failed one is not paste-able.
        "pasteable": not (proof and proof["failed"]),
        "findings": [
            {"number": f["number"], "kind": f["kind"], "kind_label": f["kind_label"],
             "subject": f.get("relation") or f.get("model") or "", "library": f["library"]}
            for f in members
        ],
        "library": bool(members) and all(f["library"] for f in members),
    }


def disabled_hook_notes(disabled: Any) -> list[dict]:
    """``summary["disabled_hooks"]`` or ``["hook_failures"]`` (hook -> reason) with what the
    panel cannot see without that hook."""
    if not isinstance(disabled, dict) or not disabled:
        return []
    from .hooks import HOOKS, third_party_relation_hooks

    detects = {spec.name: spec.detects for spec in HOOKS + third_party_relation_hooks()}
    # An optional app that is not installed (contenttypes) has nothing to detect: as the
    # system check (W002), only hooks a Django release broke are named.
    return [
        {"name": name, "reason": str(reason), "detects": detects.get(name)}
        for name, reason in sorted(disabled.items())
        if not str(reason).endswith("is not in INSTALLED_APPS")
    ]


def session_tab_url() -> str | None:
    """The "All requests" tab's URL under the toolbar's URLs, or None where they are not routed
    (a project without debug_toolbar_urls(), or no URLconf at all): then the tab is not shown."""
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse("djdt:ddtpp_session")
    except (NoReverseMatch, AttributeError, ImportError):
        return None

