"""A fix as a unified diff that ``git apply`` accepts, paths relative to ``BASE_DIR``.

The diff replaces the origin line with the fixed line (``snippets["line"]``), the loop's
access line where the fix renames what it reads (``snippets["access"]``), and adds the
imports the fix needs (``snippets["import"]``). Every edited line is checked against the
source text the analysis saw: a file that changed since gives no patch rather than a wrong one.
"""

from __future__ import annotations

import ast
import difflib
import os
from dataclasses import dataclass
from typing import Iterable

from django.conf import settings

from .editor import frame_path


@dataclass(frozen=True)
class LineEdit:
    """Replace line ``lineno`` (1-based) of ``path``, whose stripped text is ``expected``, by ``new``."""

    path: str
    lineno: int
    expected: str
    new: str


def base_dir() -> str:
    base = getattr(settings, "BASE_DIR", None)
    return os.path.abspath(str(base) if base else os.getcwd())


def finding_edits(finding: dict, fixes: list[dict] | None = None) -> tuple[list[LineEdit], list[str]]:
    """The line edits and import statements of one finding dict (empty when it has no pasteable fix).

    A finding that is part of a combined fix for its root queryset (``fix_id`` into ``fixes``, or
    that fix embedded as ``combined_fix``) gets the combined line at the combined fix's origin.
    """
    snippets = finding.get("snippets") or {}
    combined = combined_fix(finding, fixes) or {}
    line = combined.get("line") or snippets.get("line")
    proof = combined.get("proof") or finding.get("proof") or {}
    if proof.get("status") == "failed" or not line:
        return [], []
    origin = place_frame(combined) or place_frame(finding) or combined.get("origin") or finding.get("origin") or {}
    if (combined.get("place") or finding.get("place") or {}).get("kind") in ("override", "upstream"):
        return [], []  # a method to add, or nothing in the project to change: no line edit
    edits = []
    origin_edit = _edit(origin, line)
    if origin_edit is None:
        return [], []
    edits.append(origin_edit)
    # A combined fix is proven with every loop line it changes: they go in together.
    if combined:
        accesses = [(a.get("callsite") or {}, a.get("line")) for a in combined.get("access") or []]
    else:
        accesses = [(finding.get("access_at") or finding.get("callsite") or {}, snippets.get("access"))]
    for callsite, line in accesses:
        if not line:
            continue
        access_edit = _edit(callsite, line)
        if access_edit is None or (access_edit.path, access_edit.lineno) == (origin_edit.path, origin_edit.lineno):
            return [], []  # the fixed origin line alone would read a renamed attribute that is not there
        edits.append(access_edit)
    imports = [i for i in (combined.get("import"), snippets.get("import")) if i]
    imports += _model_imports(finding, edits)
    return edits, imports


LINE_PLACES = ("queryset", "class_attr")  # places whose own line takes the fix
PROJECT_PLACES = (*LINE_PLACES, "override")  # places in the project's code (not upstream)


def place_frame(data: dict, kinds: tuple[str, ...] = LINE_PLACES) -> dict | None:
    """The line a finding's or fix's ``place`` names, as a frame dict, when its kind is one of
    ``kinds`` (by default the places whose line is edited)."""
    place = data.get("place") or {}
    if place.get("kind") not in kinds or not place.get("file"):
        return None
    return {"filename": place["file"], "lineno": place["line"], "code": place["code"]}


def combined_fix(finding: dict, fixes: list[dict] | None = None) -> dict | None:
    """The report-level fix (``report.fixes[finding["fix_id"]]``) this finding is part of, if any."""
    if finding.get("combined_fix"):
        return finding["combined_fix"]
    index = finding.get("fix_id")
    if fixes and isinstance(index, int) and 0 <= index < len(fixes):
        return fixes[index]
    return None


def embed_fixes(report: dict) -> list[dict]:
    """The finding dicts of a report dict, each carrying its combined fix as ``combined_fix`` (so
    findings of many reports can be exported together)."""
    fixes = report.get("fixes") or []
    return [{**f, "combined_fix": combined_fix(f, fixes)} if combined_fix(f, fixes) else f
            for f in report.get("findings") or []]


def _model_imports(finding: dict, edits: list[LineEdit]) -> list[str]:
    """``from app.models import Model`` for models the fixed lines name and the old ones did not
    (``Prefetch("pizzas", queryset=Pizza.objects...)``); add_imports skips names already bound."""
    from django.apps import apps

    introduced = set().union(*(_names(e.new) - _names(e.expected) for e in edits))
    statements = []
    for label in (finding.get("model"), finding.get("related_model")):
        try:
            model = apps.get_model(label) if label else None
        except (LookupError, ValueError):
            continue
        if model is not None and model.__name__ in introduced:
            statements.append(f"from {model.__module__} import {model.__name__}")
            introduced.discard(model.__name__)
    return statements


def _names(code: str) -> set[str]:
    """Names a line reads (``for x in Model.objects...:`` parses once given a body)."""
    for suffix in ("", " pass", ")"):
        try:
            tree = ast.parse(code.strip() + suffix)
        except SyntaxError:
            continue
        return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return set()


def _edit(frame: dict, new: str) -> LineEdit | None:
    if not frame.get("lineno") or not frame.get("code"):
        return None
    path = frame_path(frame, libraries=False)  # only the project's files are patched
    if path is None:
        return None
    return LineEdit(path, int(frame["lineno"]), str(frame["code"]).strip(), new.strip())


def attach_patches(findings: list, fixes: list[dict] | None = None) -> None:
    """``snippets["patch"]`` on each finding (dataclass instances) that has a pasteable fix."""
    for finding in findings:
        text = finding_patch(vars(finding), fixes=fixes)
        if text:
            finding.snippets["patch"] = text


def finding_patch(finding: dict, root: str | None = None, fixes: list[dict] | None = None) -> str | None:
    """``snippets["patch"]`` of a finding dict: a unified diff, or None when none can be made."""
    edits, imports = finding_edits(finding, fixes)
    if not edits:
        return None
    return build_patch(edits, {edits[0].path: imports}, root)


def report_patch(findings: Iterable[dict], root: str | None = None, fixes: list[dict] | None = None) -> str | None:
    """One diff for many findings (e.g. a whole session); a line two fixes want to change
    differently keeps the first (findings come most avoidable first), the other fix is left out."""
    accepted: list[LineEdit] = []
    imports: dict[str, list[str]] = {}
    claimed: dict[tuple[str, int], str] = {}
    for finding in findings:
        edits, needed = finding_edits(finding, fixes)
        if not edits:
            continue
        if any(claimed.get((e.path, e.lineno), e.new) != e.new for e in edits):
            continue
        for edit in edits:
            if (edit.path, edit.lineno) not in claimed:
                claimed[(edit.path, edit.lineno)] = edit.new
                accepted.append(edit)
        in_file = imports.setdefault(edits[0].path, [])
        in_file += [i for i in needed if i not in in_file]
    return build_patch(accepted, imports, root) if accepted else None


def build_patch(edits: list[LineEdit], imports: dict[str, list[str]], root: str | None = None) -> str | None:
    """The unified diff of ``edits`` plus ``imports`` (import statements by file path).

    Every request of a page asks for the same patches: they are remembered while the edited
    files keep their size and modification time (parsing a module and diffing it cost
    milliseconds per finding).
    """
    try:
        stats = tuple(_file_stamp(path) for path in sorted({edit.path for edit in edits}))
        key = (tuple(edits), tuple(sorted((path, tuple(names)) for path, names in imports.items())),
               os.path.abspath(root or base_dir()), stats)
        hash(key)
    except (OSError, TypeError):
        key = None
    if key is not None and key in _patches:
        return _patches[key]
    changes = file_changes(edits, imports, root)
    patch = "".join(_unified(before, after, relative) for relative, before, after in changes or ()) or None
    if key is not None:
        if len(_patches) >= PATCH_CACHE_SIZE:
            _patches.clear()  # a page's patches are recomputed once; no per-entry bookkeeping
        _patches[key] = patch
    return patch


PATCH_CACHE_SIZE = 256
_patches: dict = {}


def _file_stamp(path: str) -> tuple[str, int, int]:
    stat = os.stat(path)
    return path, stat.st_mtime_ns, stat.st_size


def file_changes(edits: list[LineEdit], imports: dict[str, list[str]], root: str | None = None
                 ) -> list[tuple[str, list[str], list[str]]] | None:
    """``(path relative to root, lines before, lines after)`` per edited file, or None when
    a file is outside ``root``, unreadable, or no longer has the lines the analysis saw."""
    root = os.path.abspath(root or base_dir())
    by_path: dict[str, list[LineEdit]] = {}
    for edit in edits:
        by_path.setdefault(edit.path, []).append(edit)
    changes = []
    for path, file_edits in by_path.items():
        relative = relative_path(path, root)
        if relative is None:
            return None
        try:
            with open(path, encoding="utf-8", newline="") as handle:
                before = handle.read().splitlines(keepends=True)
        except (OSError, UnicodeDecodeError):
            return None
        after = list(before)
        for edit in file_edits:
            if not 1 <= edit.lineno <= len(after) or after[edit.lineno - 1].strip() != edit.expected:
                return None  # the file changed since the request: a stale patch would not apply
            old = after[edit.lineno - 1]
            indent = old[: len(old) - len(old.lstrip())]
            ending = old[len(old.rstrip("\r\n")):]
            after[edit.lineno - 1] = "".join(indent + part + ending for part in edit.new.split("\n"))
        after = "".join(after).splitlines(keepends=True)  # an edit of one line into two (model = + queryset =)
        if imports.get(path) and path.endswith(".py"):
            patched = add_imports("".join(after), imports[path])
            if patched is None:
                return None
            after = patched.splitlines(keepends=True)
        changes.append((relative, before, after))
    return changes


def relative_path(path: str, root: str) -> str | None:
    absolute = os.path.abspath(path)
    if not absolute.startswith(root.rstrip(os.sep) + os.sep):
        return None
    return os.path.relpath(absolute, root).replace(os.sep, "/")


def _unified(before: list[str], after: list[str], relative: str) -> str:
    lines = difflib.unified_diff(before, after, f"a/{relative}", f"b/{relative}", n=3)
    out = []
    for line in lines:
        if line.startswith(("---", "+++")):
            out.append(line.rstrip("\n") + "\n")
        elif not line.endswith("\n"):
            out.append(line + "\n\\ No newline at end of file\n")
        else:
            out.append(line)
    return "".join(out)


def add_imports(source: str, statements: list[str]) -> str | None:
    """``source`` with the names of ``from x import a, b`` statements imported (once).

    A missing name joins an existing one-line ``from x import ...`` of the same module; otherwise
    a new line goes after the module's last top-level import.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    lines = source.splitlines(keepends=True)
    bound = _module_names(tree)
    for statement in statements:
        try:
            wanted = ast.parse(statement.strip()).body
        except SyntaxError:
            return None
        for node in wanted:
            if not isinstance(node, ast.ImportFrom):
                return None
            missing = [a.name for a in node.names if (a.asname or a.name) not in bound]
            if not missing:
                continue
            bound.update(missing)
            existing = next(
                (n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == node.module
                 and n.level == node.level and n.lineno == n.end_lineno and not any(a.name == "*" for a in n.names)
                 and "(" not in lines[n.lineno - 1] and "\\" not in lines[n.lineno - 1]),
                None,
            )
            if existing is not None:
                old = lines[existing.lineno - 1]
                body = old.rstrip("\r\n")
                ending = old[len(body):] or "\n"
                comment = ""
                if "#" in body:
                    body, comment = body[: body.index("#")].rstrip(), "  " + body[body.index("#"):]
                lines[existing.lineno - 1] = body + "".join(f", {name}" for name in missing) + comment + ending
            else:
                dots = "." * node.level
                new = f"from {dots}{node.module or ''} import {', '.join(missing)}\n"
                lines.insert(_import_line(tree, lines), new)
            tree = ast.parse("".join(lines))
    return "".join(lines)


def _module_names(tree: ast.Module) -> set[str]:
    """Names bound at module level (imports, classes, functions, assignments)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _import_line(tree: ast.Module, lines: list[str]) -> int:
    """Index (0-based) where a new import line goes: after the last top-level import, else after
    the docstring and ``from __future__`` imports, else at the top."""
    last = None
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            last = node
    if last is not None:
        return last.end_lineno
    first = tree.body[0] if tree.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first.end_lineno
    return 0
