"""Stack frames: cheap raw stacks at capture time, tidy user frames at analysis time.

The bottom of the package: capture walks frames with these helpers on every statement, and
the analysis stages resolve each distinct raw stack once into :class:`Frame` objects
(library frames dropped, template render frames turned into template name and line).
"""

from __future__ import annotations

import linecache
import os
import site
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

def raw_stack(skip: int = 1) -> tuple:
    """The calling stack as ``(code, lineno)`` pairs, innermost first (not interned)."""
    return raw_from(sys._getframe(skip + 1), None)


def raw_from(frame: Any, anchor: Any) -> tuple:
    """``(code, lineno)`` per frame up to ``anchor``; template render frames also keep the
    node they render, so the template name and line are resolved later without files."""
    render_code = TEMPLATE_RENDER_CODE
    out = []
    while frame is not None:
        code = frame.f_code
        if code is render_code:
            out.append((code, frame.f_lineno, frame.f_locals.get("self")))
        else:
            out.append((code, frame.f_lineno))
        if frame is anchor:
            break
        frame = frame.f_back
    return tuple(out)


_library_codes: dict[int, bool] = {}


def is_library_code(code: Any) -> bool:
    """Whether a code object belongs to Django, DDT, this package, the stdlib or site-packages."""
    known = _library_codes.get(id(code))
    if known is None:
        known = _library_codes[id(code)] = is_library_file(code.co_filename)
    return known


def _find_template_render_code() -> Any:
    from django.template.base import Node

    return Node.render_annotated.__code__


TEMPLATE_RENDER_CODE = _find_template_render_code()


def first_user_frame(frame: Any) -> Any:
    """The first frame from ``frame`` outwards whose code is the project's."""
    while frame is not None and is_library_code(frame.f_code):
        frame = frame.f_back
    return frame


@dataclass(frozen=True, slots=True)
class Frame:
    filename: str
    lineno: int
    function: str
    code: str
    template: bool = False

    def to_dict(self) -> dict:
        return {
            "filename": self.filename,
            "lineno": self.lineno,
            "function": self.function,
            "code": self.code,
            "template": self.template,
        }


def _library_prefixes() -> tuple[str, ...]:
    import django
    import debug_toolbar

    paths = {
        os.path.dirname(django.__file__),
        os.path.dirname(debug_toolbar.__file__),
        os.path.dirname(os.path.abspath(__file__)),
        sysconfig.get_paths()["stdlib"],
        sysconfig.get_paths()["platstdlib"],
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["platlib"],
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
    }
    for getter in (site.getsitepackages, lambda: [site.getusersitepackages()]):
        try:
            paths.update(getter())
        except Exception:  # site helpers are missing in some embedded interpreters
            pass
    prefixes = {os.path.realpath(p) for p in paths if p}
    prefixes |= {os.path.abspath(p) for p in paths if p}
    return tuple(sorted(p.rstrip(os.sep) + os.sep for p in prefixes))


_LIBRARY_PREFIXES: tuple[str, ...] | None = None


@lru_cache(maxsize=4096)
def is_library_file(filename: str) -> bool:
    global _LIBRARY_PREFIXES
    if filename.startswith("<"):
        return True  # <frozen importlib._bootstrap>, <string>, ...
    if _LIBRARY_PREFIXES is None:
        _LIBRARY_PREFIXES = _library_prefixes()
    path = os.path.abspath(filename)
    if os.sep + "site-packages" + os.sep in path or os.sep + "dist-packages" + os.sep in path:
        return True
    return path.startswith(_LIBRARY_PREFIXES)


def _template_frame(node: Any) -> Frame | None:
    token = getattr(node, "token", None)
    origin = getattr(node, "origin", None)
    if token is None or origin is None:
        return None
    name = getattr(origin, "template_name", None) or getattr(origin, "name", None) or "<template>"
    contents = getattr(token, "contents", "")
    kind = getattr(getattr(token, "token_type", None), "name", "")
    if kind == "VAR":
        code = "{{ %s }}" % contents
    elif kind == "BLOCK":
        code = "{%% %s %%}" % contents
    else:
        code = contents
    return Frame(str(name), int(getattr(token, "lineno", 0) or 0), type(node).__name__, code, True)


def tidy_stack(raw: tuple) -> tuple[Frame, ...]:
    """User frames of a raw stack, innermost first; template nodes become template frames."""
    frames: list[Frame] = []
    for entry in raw:
        if len(entry) == 3:
            frame = _template_frame(entry[2])
            if frame is not None and (
                not frames or (frames[-1].filename, frames[-1].lineno) != (frame.filename, frame.lineno)
            ):
                frames.append(frame)
            continue
        code, lineno = entry
        filename = code.co_filename
        if is_library_file(filename):
            continue
        source = linecache.getline(filename, lineno).strip()
        frames.append(Frame(filename, lineno, _function_name(code), source))
    return tuple(frames)


def _function_name(code: Any) -> str:
    """``<genexpr>`` and friends read better with the function they are written in."""
    name = code.co_name
    if name.startswith("<"):
        return getattr(code, "co_qualname", name).replace(".<locals>", "")
    return name


class StackResolver:
    """Resolves each distinct raw stack once."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Frame, ...]] = {}

    def __call__(self, raw: tuple | None) -> tuple[Frame, ...]:
        if raw is None:
            return ()
        key = id(raw)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = tidy_stack(raw)
        return cached
