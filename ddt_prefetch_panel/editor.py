"""Editor links: ``file:line`` references that open the user's editor.

The ``EDITOR_URL`` setting is a URL pattern with ``{path}`` (absolute, URL-quoted) and
``{line}``, or the name of a preset. Frame dicts carry paths relative to ``BASE_DIR``, a
template name, or a library's import path, never an absolute one, so links are built from the
project root, Django's template loaders or ``sys.path``.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from .frames import STDLIB, source_file

PRESETS: dict[str, str] = {
    "vscode": "vscode://file/{path}:{line}",
    "vscode-insiders": "vscode-insiders://file/{path}:{line}",
    "cursor": "cursor://file/{path}:{line}",
    "pycharm": "pycharm://open?file={path}&line={line}",
    "idea": "idea://open?file={path}&line={line}",
    "sublime": "subl://open?url=file://{path}&line={line}",
    "textmate": "txmt://open?url=file://{path}&line={line}",
    "emacs": "emacs://open?url=file://{path}&line={line}",
    "macvim": "mvim://open?url=file://{path}&line={line}",
}

# Frame dicts of a finding dict that get a link.
FRAME_KEYS = ("callsite", "origin", "defined_at", "evaluated_at")
FRAME_LIST_KEYS = ("stack", "callsites")


def editor_pattern(value: str | None) -> str | None:
    """The URL pattern of a setting value (a preset name or a pattern), or None when unset."""
    if not value:
        return None
    return PRESETS.get(value.lower(), value)


def pattern_error(value: Any) -> str | None:
    """Why an ``EDITOR_URL`` value cannot be used, or None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if value.lower() in PRESETS:
        return None
    if "{path}" not in value:
        return f"must be one of {sorted(PRESETS)} or a URL pattern containing {{path}} (and usually {{line}})"
    try:
        value.format(path="p", line=1)
    except (KeyError, IndexError, ValueError) as exc:
        return f"is not a valid pattern ({exc!r}); only {{path}} and {{line}} are filled in"
    return None


def template_path(name: str) -> str | None:
    """Absolute path of a template name, found through the project's template loaders."""
    from django.template import TemplateDoesNotExist, engines

    for engine in engines.all():
        try:
            template = engine.get_template(name)
        except TemplateDoesNotExist:
            continue
        except Exception:  # a template that fails to compile still has no path worth linking
            continue
        path = getattr(getattr(template, "origin", None), "name", None)
        if isinstance(path, str) and os.path.isabs(path) and os.path.exists(path):
            return path
    return None


def frame_path(frame: dict, libraries: bool = True) -> str | None:
    """Absolute path of the file a frame dict points at (``abspath`` wins when analysis stored it).

    Frame dicts never hold this machine's paths: a project file is found under ``BASE_DIR``
    (or the current directory, or a ``PROJECT_ROOTS`` entry), a template through the template
    loaders, and, with ``libraries``, an installed package's file (``distribution`` set, or
    found nowhere in the project) on ``sys.path`` and the standard library's under ``<python>/``.
    """
    if frame.get("abspath"):
        return str(frame["abspath"])
    filename = frame.get("filename")
    if not filename:
        return None
    filename = str(filename)
    if frame.get("template"):
        return template_path(filename) or source_file(filename)
    if frame.get("distribution"):
        return source_file(filename, library=True) if libraries else None
    if filename.startswith(f"{STDLIB}/"):
        return source_file(filename) if libraries else None
    found = source_file(filename)
    if found is None and libraries:
        found = source_file(filename, library=True)
    return found


def frame_url(frame: dict | None, pattern: str | None) -> str | None:
    """The editor URL of a frame dict (``pattern``: a URL pattern or a preset name), or None
    (no pattern, no file, no line)."""
    pattern = editor_pattern(pattern)
    if not frame or not pattern or not frame.get("lineno"):
        return None
    path = frame_path(frame)
    if path is None:
        return None
    return pattern.format(path=quote(path.replace(os.sep, "/"), safe="/:"), line=int(frame["lineno"]))


def link_finding(finding: dict, pattern: str | None) -> dict:
    """A copy of a finding dict whose frames carry ``editor_url`` (when a pattern is set)."""
    pattern = editor_pattern(pattern)
    if not pattern:
        return finding
    paths: dict[tuple, str | None] = {}

    def link(frame: Any) -> Any:
        if not isinstance(frame, dict):
            return frame
        key = (frame.get("filename"), frame.get("template"), frame.get("lineno"), frame.get("abspath"))
        if key not in paths:
            paths[key] = frame_url(frame, pattern)
        return {**frame, "editor_url": paths[key]} if paths[key] else frame

    linked = dict(finding)
    for key in FRAME_KEYS:
        linked[key] = link(finding.get(key))
    for key in FRAME_LIST_KEYS:
        linked[key] = [link(frame) for frame in finding.get(key) or []]
    return linked
