"""SARIF 2.1.0 export, so code-review tools show each finding on the offending line.

One result per finding: located at the call site (the line that repeats), with the origin
(where the queryset is built, where the fix goes) as a related location, and the proven fix
as a SARIF ``fix`` whose replacements are the lines of the patch (``patch.py``). Paths are
relative to ``BASE_DIR``, which the log names as the ``PROJECTROOT`` base (without its
absolute path: no machine path leaves in a log). Library files get no location.
"""

from __future__ import annotations

import difflib
import os
from typing import Any, Iterable

from .editor import frame_path
from .findings import finding_fingerprint
from .patch import PROJECT_PLACES, base_dir, combined_fix, file_changes, finding_edits, place_frame, relative_path

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
ROOT_ID = "PROJECTROOT"
# Finding.fingerprint: the same value baselines compare (v2: no line, no directory in it).
FINGERPRINT_KEY = "ddtPrefetchPanel/v2"

# ruleId -> (name, short description, full description, default level)
RULES: dict[str, tuple[str, str, str, str]] = {
    "n_plus_one": (
        "NPlusOneQueries",
        "N+1 queries",
        "The same query runs once per row of a parent queryset. Eager loading (select_related, "
        "prefetch_related, Prefetch, annotate) on the parent queryset makes the count constant.",
        "warning",
    ),
    "duplicate": (
        "DuplicateQueries",
        "Duplicate queries",
        "The same statement with the same parameters runs more than once in one request; reuse the first result.",
        "note",
    ),
    "missing_index": (
        "MissingIndex",
        "Missing index",
        "A repeated or slow query filters or orders on columns no index covers.",
        "note",
    ),
    "unused_prefetch": (
        "UnusedPrefetch",
        "Unused eager loading",
        "A select_related or prefetch_related lookup loads rows that the request never reads.",
        "note",
    ),
}


def to_sarif(findings: Iterable[dict], root: str | None = None, fixes: list[dict] | None = None,
             tool_version: str | None = None) -> dict:
    """A SARIF 2.1.0 log (plain JSON data) of finding dicts (``Finding.to_dict()`` or session
    entries); ``fixes`` is the report's combined fixes (``report.fixes``) the findings refer to."""
    from . import __version__

    root = os.path.abspath(root or base_dir())
    rule_ids = list(RULES)
    results = [_result(finding, root, rule_ids, fixes) for finding in findings]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "ddt-prefetch-panel",
                "version": tool_version or __version__,
                "rules": [_rule(rule_id) for rule_id in rule_ids],
            }},
            # No uri: the root is a path of this machine; the tool reading the log knows its checkout.
            "originalUriBaseIds": {ROOT_ID: {"description": {"text": "The project root (BASE_DIR)."}}},
            "results": results,
        }],
    }


def _rule(rule_id: str) -> dict:
    name, short, full, level = RULES[rule_id]
    return {
        "id": rule_id,
        "name": name,
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "defaultConfiguration": {"level": level},
    }


def _result(finding: dict, root: str, rule_ids: list[str], fixes: list[dict] | None) -> dict:
    kind = finding.get("kind") or "n_plus_one"
    rule_id = kind if kind in RULES else "n_plus_one"
    result: dict[str, Any] = {
        "ruleId": rule_id,
        "ruleIndex": rule_ids.index(rule_id),
        "level": RULES[rule_id][3],
        "message": {"text": message(finding, combined_fix(finding, fixes))},
    }
    # The result sits on the place to act (a line of the project), else on the call site.
    place = _location(place_frame(finding, PROJECT_PLACES), root, "act here: the fix goes on this line")
    callsite = _location(finding.get("callsite"), root)
    origin = _location(finding.get("origin"), root, "queryset built here")
    primary = place or callsite or origin
    if primary is not None:
        result["locations"] = [primary]
    related = [location for location in (callsite, origin) if location is not None and location is not primary]
    if place is not None and origin is not None and place["physicalLocation"] == origin["physicalLocation"]:
        related.remove(origin)
    definition = _location(finding.get("defined_at"), root, "relation defined here")
    if definition is not None:
        related.append(definition)
    for number, location in enumerate(related, 1):
        location["id"] = number
    if related:
        result["relatedLocations"] = related
    fix = _fix(finding, root, fixes)
    if fix is not None:
        result["fixes"] = [fix]
    if finding.get("baseline_state"):  # compared with a baseline (baseline.py)
        result["baselineState"] = "new" if finding["baseline_state"] == "new" else "unchanged"
    result["partialFingerprints"] = {FINGERPRINT_KEY: finding.get("fingerprint") or finding_fingerprint(finding)}
    result["properties"] = {
        key: finding[key]
        for key in ("relation", "lookup", "method", "count", "avoidable", "proof", "requests", "pages", "tests")
        if finding.get(key) is not None
    }
    return result


def message(finding: dict, combined: dict | None = None) -> str:
    """What, how often, and the proven fix, in one paragraph (review tools show plain text)."""
    kind = finding.get("kind") or "n_plus_one"
    subject = finding.get("relation") or finding.get("model") or "a query"
    text = f"{RULES.get(kind, RULES['n_plus_one'])[1]} on {subject}: {finding.get('count', 0)} queries, " \
           f"{finding.get('avoidable', 0)} avoidable."
    seen = finding.get("requests") or finding.get("tests")
    if seen:
        text += f" Seen in {len(seen)} {'requests' if finding.get('requests') else 'tests'}."
    snippets = finding.get("snippets") or {}
    fix = (combined or {}).get("line") or snippets.get("line") or snippets.get("fix")
    proof = (combined or {}).get("proof") or finding.get("proof") or {}
    if fix and proof.get("status") != "failed":
        text += f" Fix: {fix.splitlines()[0]}"
        if proof.get("status") == "verified":
            text += f" (verified on this request's data: {proof.get('before')} -> {proof.get('after')} queries"
            if proof.get("page_after") is not None:
                text += f"; this page: {proof['page_before']} -> {proof['page_after']}"
            text += ")"
        text += "."
    elif finding.get("note"):
        text += f" {finding['note']}"
    return text


def _location(frame: dict | None, root: str, text: str | None = None) -> dict | None:
    if not frame or not frame.get("lineno"):
        return None
    path = frame_path(frame, libraries=False)  # review tools show the project's files only
    relative = relative_path(path, root) if path else None
    if relative is None:
        return None
    region: dict[str, Any] = {"startLine": int(frame["lineno"])}
    if frame.get("code"):
        region["snippet"] = {"text": str(frame["code"])}
    location: dict[str, Any] = {"physicalLocation": {
        "artifactLocation": {"uri": relative, "uriBaseId": ROOT_ID},
        "region": region,
    }}
    if text:
        location["message"] = {"text": text}
    return location


def _fix(finding: dict, root: str, fixes: list[dict] | None) -> dict | None:
    edits, imports = finding_edits(finding, fixes)
    changes = file_changes(edits, {edits[0].path: imports}, root) if edits else None
    if not changes:
        return None
    artifact_changes = []
    for relative, before, after in changes:
        replacements = []
        matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            # Whole lines: from column 1 of the first replaced line to column 1 of the line after
            # (or past the end of the last line when the change reaches the end of the file).
            end = {"endLine": i2 + 1, "endColumn": 1}
            if i2 == len(before) and i2 > i1:
                end = {"endLine": i2, "endColumn": len(before[i2 - 1]) + 1}
            replacements.append({
                "deletedRegion": {"startLine": i1 + 1, "startColumn": 1, **end},
                "insertedContent": {"text": "".join(after[j1:j2])},
            })
        artifact_changes.append({"artifactLocation": {"uri": relative, "uriBaseId": ROOT_ID},
                                 "replacements": replacements})
    snippets = finding.get("snippets") or {}
    return {"description": {"text": f"Apply {finding.get('method') or 'the fix'}: {snippets.get('fix', '')}".strip()},
            "artifactChanges": artifact_changes}
