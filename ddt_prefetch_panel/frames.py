"""Stack frames: cheap raw stacks at capture time, the project's frames at analysis time.

The bottom of the package: capture walks frames with these helpers on every statement, and
the analysis stages resolve each distinct raw stack once into :class:`Frame` objects.

*Project code* is what the user can edit: files under ``BASE_DIR`` (or the current
directory, or a ``PROJECT_ROOTS`` entry) that are not in site-packages, the stdlib, Django,
the toolbar or this package; modules named in ``PROJECT_PACKAGES`` count as the project's
wherever they are installed (forked apps, monorepos). Everything else is a library.

Frameworks loop on the user's behalf (a DRF serializer, a GraphQL executor, a form widget),
so the frame that repeats is theirs while the line to act on is the user's declaration.
:func:`register` marks such library code objects: the raw stack keeps a small payload from
the frame (the serializer field being rendered, the GraphQL type and field), and
:func:`tidy_stack` turns it into a *declaration frame* that points at the user's class
body line. Jinja2 template frames become the template's name and line.

A raw stack entry is one of:

* ``(code, lineno)``: a Python frame;
* ``(code, lineno, node)``: Django's ``Node.render_annotated`` and the node it renders;
* ``(code, lineno, kind, payload)``: a registered framework frame (:class:`FrameKind`).
"""

from __future__ import annotations

import importlib.metadata
import inspect
import linecache
import os
import re
import site
import sys
import sysconfig
import weakref
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

# --------------------------------------------------------------------------- raw stacks


@dataclass(frozen=True, eq=False)
class FrameKind:
    """A library code object whose frame says which user declaration is being processed.

    ``extract(frame)`` runs at capture time, at most once per statement for keyed kinds
    (it must be cheap and must not raise); ``resolve(payload, code, lineno)`` runs at
    analysis time and returns a project :class:`Frame` or ``None``.
    """

    name: str
    extract: Callable[[Any], Any]
    resolve: Callable[[Any, Any, int], "Frame | None"]
    keyed: bool = True  # the payload tells apart stacks that share every code position
    # A stable object for the stack key when the payload is built fresh on each call.
    key: Callable[[Any], Any] | None = None


_KINDS: dict[int, FrameKind] = {}  # id(code) -> kind; registered codes belong to imported functions
_CODES: list[Any] = []  # keeps registered code objects alive, so their ids stay theirs
_KEYED: dict[int, Callable[[Any], Any]] = {}  # id(code) -> extract, for the stack key


def register(code: Any, kind: FrameKind) -> None:
    """Mark ``code`` (a library function's ``__code__``) as a framework frame of ``kind``."""
    _CODES.append(code)
    _KINDS[id(code)] = kind
    if kind.keyed:
        _KEYED[id(code)] = kind.key or kind.extract


def _find_template_render_code() -> Any:
    from django.template.base import Node

    return Node.render_annotated.__code__


TEMPLATE_RENDER_CODE = _find_template_render_code()
_KEYED[id(TEMPLATE_RENDER_CODE)] = lambda frame: frame.f_locals.get("self")

# The awaiting coroutine's raw stack while asgiref runs sync code for it in a thread
# (``await Model.objects.aget(...)``): set by the SyncToAsync hook, spliced in by raw_from.
awaiting: ContextVar[tuple | None] = ContextVar("ddt_prefetch_panel_awaiting", default=None)
ASYNC_BOUNDARY = FrameKind("async", lambda frame: None, lambda payload, code, lineno: None, keyed=False)
# A method of a user-defined manager or queryset: never where a queryset is "built".
MANAGER = FrameKind("manager", lambda frame: None, lambda payload, code, lineno: None, keyed=False)
# The innermost library frame that built a queryset, with the runtime class of its ``self``.
OWNER = FrameKind("owner", lambda frame: None, lambda payload, code, lineno: None, keyed=False)


def stack_key(frame: Any, anchor: Any) -> tuple:
    """An interning key for the stack from ``frame`` up to ``anchor``: ints only.

    Code ids and instruction offsets, plus the identity of the payload of keyed frames
    (template nodes, serializer fields, GraphQL fields: one code position serves many of
    them) and of the awaiting coroutine's stack.
    """
    key = []
    append = key.append
    keyed = _KEYED
    while frame is not None:
        code_id = id(frame.f_code)
        append(code_id)
        append(frame.f_lasti)
        if code_id in keyed:  # cheaper than keyed.get() on the frames that are not
            append(id(keyed[code_id](frame)))
        if frame is anchor:
            break
        frame = frame.f_back
    waiting = awaiting.get()
    if waiting is not None:
        append(id(waiting))
    return tuple(key)


def raw_stack(skip: int = 1) -> tuple:
    """The calling stack as raw entries, innermost first (not interned)."""
    return raw_from(sys._getframe(skip + 1), None)


def raw_from(frame: Any, anchor: Any, owners: tuple = ()) -> tuple:
    """Raw entries per frame up to ``anchor`` (see the module docstring).

    ``owners`` are frames of the walk whose ``self``'s class is kept (the library frame that
    built a queryset, the project method it was built in). At asgiref's thread boundary the
    awaiting coroutine's stack follows.
    """
    render_code = TEMPLATE_RENDER_CODE
    kinds = _KINDS
    out: list[tuple] = []
    while frame is not None:
        code = frame.f_code
        kind = kinds.get(id(code))
        if code is render_code:
            out.append((code, frame.f_lineno, frame.f_locals.get("self")))
        elif kind is ASYNC_BOUNDARY and awaiting.get() is not None:
            out.append((code, frame.f_lineno))
            out.extend(awaiting.get())
            break
        elif kind is not None and kind is not ASYNC_BOUNDARY:
            try:
                payload = kind.extract(frame)
            except Exception:  # a framework changed its locals: keep the plain frame
                out.append((code, frame.f_lineno))
            else:
                out.append((code, frame.f_lineno, kind, payload))
        elif owners and frame in owners:
            instance = frame.f_locals.get("self")
            out.append((code, frame.f_lineno, OWNER, type(instance) if instance is not None else None))
        elif not code.co_filename.endswith(".py") and "__jinja_template__" in frame.f_globals:
            out.append((code, frame.f_lineno, JINJA, frame.f_globals["__jinja_template__"]))
        else:
            out.append((code, frame.f_lineno))
        if frame is anchor:
            break
        frame = frame.f_back
    return tuple(out)


def build_stack(start: Any, anchor: Any, interned: dict | None = None) -> tuple:
    """The raw stack from ``start`` up to where a queryset was built or evaluated.

    The walk stops at the first project frame (or template render frame, or the anchor);
    the library frames on the way are kept, and the innermost one outside the ORM keeps
    its ``self``'s class (``BookListView`` for Django's ``MultipleObjectMixin.get_queryset``).
    Methods of the project's own managers and querysets are walked through: the origin is
    the call of the manager, never the manager's body.

    With ``interned`` (a capture's dict), a stack seen before is returned from it: the walk
    builds a key of ints (as :func:`stack_key`, plus the classes of the frames whose ``self``
    is kept) and the entries, whose line numbers and payloads cost most, are built once.
    """
    frame = start
    owner = None
    render_code = TEMPLATE_RENDER_CODE
    keyed = _KEYED
    key: list = []
    append = key.append
    while frame is not None:
        code = frame.f_code
        if interned is not None:  # every frame the raw stack will hold, the stop frame included
            code_id = id(code)
            append(code_id)
            append(frame.f_lasti)
            if code_id in keyed:
                append(id(keyed[code_id](frame)))
        if frame is anchor or code is render_code or _KINDS.get(id(code)) is ASYNC_BOUNDARY:
            break
        if not is_library_code(code):
            if not _is_manager_code(frame):
                break
        elif owner is None and not is_orm_code(code) and not _is_manager_code(frame):
            # A library's manager or queryset (mptt's TreeManager, polymorphic's) is the ORM
            # too: the owner is the class that asked it (CategoryListView's get_queryset).
            owner = frame
        frame = frame.f_back
    owners = (owner,) if owner is not None else ()
    if frame is not None and frame is not anchor and _is_method(frame.f_code):
        owners += (frame,)  # the project method that built it (a viewset's get_queryset)
    if interned is None:
        return raw_from(start, frame, owners)
    for kept in owners:
        append(id(type(kept.f_locals.get("self"))))
    waiting = awaiting.get()
    if waiting is not None:
        append(id(waiting))
    lookup = tuple(key)
    raw = interned.get(lookup)
    if raw is None:
        raw = interned[lookup] = raw_from(start, frame, owners)
    return raw


def _is_method(code: Any) -> bool:
    return code.co_argcount > 0 and code.co_varnames[0] == "self"


class PerCode:
    """Answers cached per code object, by id and checked against a weak reference: code
    that is freed and whose id is reused (exec'd or generated code) never inherits one."""

    def __init__(self) -> None:
        self._data: dict[int, tuple[Any, bool]] = {}

    def get(self, code: Any) -> bool | None:
        entry = self._data.get(id(code))
        if entry is not None and entry[0]() is code:
            return entry[1]
        return None

    def set(self, code: Any, value: bool) -> bool:
        self._data[id(code)] = (weakref.ref(code), value)
        return value


_manager_codes = PerCode()


def _is_manager_code(frame: Any) -> bool:
    """Whether a project frame is a method of a manager or queryset (decided once per code)."""
    code = frame.f_code
    known = _manager_codes.get(code)
    if known is None:
        from django.db.models.manager import BaseManager
        from django.db.models.query import QuerySet

        instance = frame.f_locals.get("self")
        known = _manager_codes.set(code, isinstance(instance, (BaseManager, QuerySet)))
        if known:
            _CODES.append(code)
            _KINDS[id(code)] = MANAGER
    return known


def first_builder_frame(frame: Any) -> Any:
    """The first project frame from ``frame`` outwards that is not a method of the project's
    own managers or querysets: the code that asked for the queryset."""
    while frame is not None and (is_library_code(frame.f_code) or _is_manager_code(frame)):
        frame = frame.f_back
    return frame


def first_user_frame(frame: Any) -> Any:
    """The first frame from ``frame`` outwards whose code is the project's."""
    while frame is not None and is_library_code(frame.f_code):
        frame = frame.f_back
    return frame


# --------------------------------------------------------------------------- project or library


# Both answers depend on a code object's file name only: cached by file name (a few hundred
# strings, their hashes cached), which is cheaper per frame than a per-code cache.
_library_files: dict[str, bool] = {}
_orm_files: dict[str, bool] = {}


def is_library_code(code: Any) -> bool:
    """Whether a code object is outside the project (see :func:`is_library_file`)."""
    filename = code.co_filename
    known = _library_files.get(filename)
    if known is None:
        known = _library_files[filename] = is_library_file(filename)
    return known


def is_orm_code(code: Any) -> bool:
    """Django's ORM and database layer, asgiref's thread hop, the toolbar's cursor wrapper and
    this package: frames that never decide a query."""
    filename = code.co_filename
    known = _orm_files.get(filename)
    if known is None:
        known = _orm_files[filename] = os.path.abspath(filename).startswith(_orm_prefixes())
    return known


@lru_cache(maxsize=1)
def _orm_prefixes() -> tuple[str, ...]:
    import asgiref
    import debug_toolbar
    import django

    django_dir = os.path.dirname(os.path.abspath(django.__file__))
    return (
        os.path.join(django_dir, "db") + os.sep,
        os.path.dirname(os.path.abspath(asgiref.__file__)) + os.sep,
        os.path.dirname(os.path.abspath(debug_toolbar.__file__)) + os.sep,  # its cursor wrapper
        os.path.dirname(os.path.abspath(__file__)) + os.sep,
    )


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


@dataclass(frozen=True)
class ProjectRules:
    roots: tuple[str, ...]  # BASE_DIR and PROJECT_ROOTS, each ending with a separator
    extra_roots: tuple[str, ...]  # PROJECT_ROOTS only: project even inside site-packages
    packages: tuple[str, ...]  # PROJECT_PACKAGES as path fragments ("oscar/", "myco/shop/")


_rules: ProjectRules | None = None


def project_rules() -> ProjectRules:
    """``BASE_DIR`` plus the ``PROJECT_ROOTS`` / ``PROJECT_PACKAGES`` settings (read raw here:
    conf.py validates them, and this bottom module imports nothing of the package)."""
    global _rules
    if _rules is None:
        from django.conf import settings

        raw = getattr(settings, "DDT_PREFETCH_PANEL", None)
        options = {k.upper(): v for k, v in raw.items() if isinstance(k, str)} if isinstance(raw, dict) else {}
        extra = _strings(options.get("PROJECT_ROOTS"))
        base = getattr(settings, "BASE_DIR", None)
        roots = ([str(base)] if base else []) + extra
        _rules = ProjectRules(
            roots=tuple(_dir_prefix(r) for r in roots),
            extra_roots=tuple(_dir_prefix(r) for r in extra),
            packages=tuple(p.replace(".", "/") for p in _strings(options.get("PROJECT_PACKAGES"))),
        )
    return _rules


def _strings(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if isinstance(v, (str, os.PathLike))]
    return []


def _dir_prefix(path: Any) -> str:
    return os.path.abspath(os.fspath(path)).rstrip(os.sep) + os.sep


def reset_caches() -> None:
    """Forget every project/library decision (settings changed, e.g. in a test)."""
    global _rules, _LIBRARY_PREFIXES
    _rules = None
    _LIBRARY_PREFIXES = None
    is_library_file.cache_clear()
    _shown_location.cache_clear()
    _library_files.clear()


_LIBRARY_PREFIXES: tuple[str, ...] | None = None
# Scripts that only start the project (a management command's ``execute_from_command_line``):
# never a call site, an origin or a place, whatever directory they are in.
ENTRY_POINT_FILES = frozenset({"manage.py"})
_TEST_FILE = re.compile(r"^(test_.*|.*_tests?|tests|conftest)\.py$")


def is_test_file(filename: str) -> bool:
    """A test module by the names pytest and Django's runner collect (``test_*.py``,
    ``*_test.py``, ``tests.py``, ``conftest.py``): its loops are a test's own setup."""
    return bool(_TEST_FILE.match(os.path.basename(filename)))


CO_NEWLOCALS = inspect.CO_NEWLOCALS  # a function's frame; a class or module body has none
_SITE_DIRS = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)
_OWN_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


@lru_cache(maxsize=8192)
def is_library_file(filename: str) -> bool:
    """Whether a file is outside the project's own code (see the module docstring)."""
    global _LIBRARY_PREFIXES
    if filename.startswith("<"):
        return True  # <frozen importlib._bootstrap>, <string>, ...
    path = os.path.abspath(filename)
    if path.startswith(_OWN_DIR) or os.path.basename(path) in ENTRY_POINT_FILES:
        return True
    rules = project_rules()
    if rules.packages and _in_packages(path, rules.packages):
        return False
    if rules.extra_roots and path.startswith(rules.extra_roots):
        return False
    if _LIBRARY_PREFIXES is None:
        _LIBRARY_PREFIXES = _library_prefixes()
    if is_site_file(path) or path.startswith(_LIBRARY_PREFIXES):
        return True
    if rules.roots:
        # Outside BASE_DIR: a library checked out elsewhere (pip install -e), unless it is
        # where the process runs from (scripts, a test session's temporary project).
        return not path.startswith(rules.roots + (_dir_prefix(os.getcwd()),))
    return False


def is_site_file(filename: str) -> bool:
    """A file under a site-packages (or dist-packages) directory: an installed package's."""
    return any(marker in os.path.abspath(filename) for marker in _SITE_DIRS)


def _in_packages(path: str, packages: tuple[str, ...]) -> bool:
    posix = path.replace(os.sep, "/")
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in posix:
            inside = posix.split(marker, 1)[1]
            return any(inside.startswith(p + "/") or inside == p + ".py" for p in packages)
    return any(f"/{p}/" in posix for p in packages)


# --------------------------------------------------------------------------- paths as users see them

STDLIB = "<python>"  # stands for the interpreter's standard library directory
ELSEWHERE = "…"  # stands for the directory of a file under no known root: only its name is shown


@dataclass(frozen=True)
class Location:
    """A file as exports show it: never an absolute path of this machine.

    ``path`` is relative to the project root (``BASE_DIR``, the current directory or a
    ``PROJECT_ROOTS`` entry), or a library file's import path (``modelcluster/fields.py``,
    relative to its site-packages or ``sys.path`` directory) with its ``distribution`` and
    ``version`` when installed metadata names them, or ``<python>/json/decoder.py``.
    """

    path: str
    distribution: str | None = None
    version: str | None = None


def shown_location(filename: str) -> Location:
    """Where a file is, as users see it (see :class:`Location`); a template name, a relative
    path or ``<frozen ...>`` is returned as it is."""
    if filename.startswith("<") or not os.path.isabs(filename):
        return Location(filename)
    return _shown_location(filename, os.getcwd())


def _project_roots(cwd: str) -> tuple[str, ...]:
    """``BASE_DIR``, the current directory, then the ``PROJECT_ROOTS`` entries."""
    rules = project_rules()
    return rules.roots[:1] + (_dir_prefix(cwd),) + rules.roots[1:]


@lru_cache(maxsize=8192)
def _shown_location(filename: str, cwd: str) -> Location:
    path = os.path.abspath(filename)
    for root in _project_roots(cwd):
        if path.startswith(root):
            relative = path[len(root):]
            if not _in_site_dir(relative):  # not a virtualenv kept inside the project
                return Location(relative.replace(os.sep, "/"))
    inside = _after_site_dir(path)
    if inside is not None:
        return _library_location(inside)
    for directory in _stdlib_dirs():
        if path.startswith(directory):
            return Location(f"{STDLIB}/" + path[len(directory):].replace(os.sep, "/"))
    for directory in _import_dirs():
        if path.startswith(directory):
            return _library_location(path[len(directory):])
    return Location(f"{ELSEWHERE}/{os.path.basename(path)}")


def _in_site_dir(relative: str) -> bool:
    parts = relative.split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts


def _after_site_dir(path: str) -> str | None:
    """The part of ``path`` after its last site-packages/dist-packages directory, or None."""
    parts = path.split(os.sep)
    for index in range(len(parts) - 2, -1, -1):
        if parts[index] in ("site-packages", "dist-packages"):
            return os.sep.join(parts[index + 1:])
    return None


def _library_location(relative: str) -> Location:
    shown = relative.replace(os.sep, "/")
    top = shown.split("/", 1)[0]
    if "/" not in shown:  # a single-file module: six.py, _cffi_backend.cpython-311-x86_64-linux-gnu.so
        top = top.split(".", 1)[0]
    found = _installed_distribution(top, shown)
    return Location(shown, *found) if found else Location(shown)


@lru_cache(maxsize=1)
def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {p for key in ("stdlib", "platstdlib") if (p := paths.get(key))}
    return tuple(sorted({_dir_prefix(p) for p in dirs} | {os.path.realpath(p).rstrip(os.sep) + os.sep for p in dirs},
                        key=len, reverse=True))


def _import_dirs() -> tuple[str, ...]:
    """``sys.path`` directories, longest first (a package's directory before its parent's)."""
    dirs = {_dir_prefix(p) for p in sys.path if p and os.path.isabs(p)}
    return tuple(sorted(dirs - {os.sep}, key=len, reverse=True))


@lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    """Import package -> distributions, read once (a scan of every installed distribution)."""
    try:
        return importlib.metadata.packages_distributions()
    except Exception:  # broken metadata of one distribution: versions are a nicety
        return {}


@lru_cache(maxsize=1024)
def _installed_distribution(top_level: str, shown: str) -> tuple[str, str] | None:
    """(distribution, version) that installs the import package ``top_level``; of several
    (namespace packages), the one whose files include ``shown``."""
    names = list(dict.fromkeys(_packages_distributions().get(top_level) or ()))
    if len(names) > 1 and shown:
        owning = [n for n in names if _ships(n, shown)]
        names = owning or names
    for name in names:
        try:
            return name, importlib.metadata.version(name)
        except Exception:  # metadata removed since the scan
            continue
    return None


def _ships(distribution: str, shown: str) -> bool:
    try:
        files = importlib.metadata.distribution(distribution).files or ()
    except Exception:
        return False
    return any(str(f).replace(os.sep, "/") == shown for f in files)


def source_file(shown: str, library: bool = False) -> str | None:
    """The absolute path of a file shown by :func:`shown_location` (for editor links, patches
    and SARIF locations), or None when it is not found. ``library``: look among the installed packages
    (``sys.path``) instead of the project's roots."""
    if os.path.isabs(shown):
        return shown if os.path.exists(shown) else None
    if shown.startswith(f"{STDLIB}/"):
        candidates = [os.path.join(d, shown[len(STDLIB) + 1:]) for d in _stdlib_dirs()]
    elif shown.startswith(("<", ELSEWHERE)):
        return None
    elif library:
        site_dirs = [d for d in sys.path if d and os.path.isabs(d)]
        candidates = [os.path.join(d, shown) for d in site_dirs]
    else:
        candidates = [os.path.join(root, shown) for root in _project_roots(os.getcwd())]
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    return None


def _on_setting_changed(setting: str, **kwargs: Any) -> None:
    if setting in ("DDT_PREFETCH_PANEL", "BASE_DIR"):
        reset_caches()


def _connect_setting_changed() -> None:
    from django.core.signals import setting_changed

    setting_changed.connect(_on_setting_changed, dispatch_uid="ddt_prefetch_panel.frames")


_connect_setting_changed()


# --------------------------------------------------------------------------- project frames


@dataclass(frozen=True, slots=True)
class Frame:
    filename: str
    lineno: int
    function: str
    code: str
    template: bool = False
    # Analysis-only details (not in to_dict): the code's qualified name for Python frames,
    # and for a declaration frame the class that declares what the framework processed.
    qualname: str = ""
    declares: str = ""
    detail: Any = field(default=None, compare=False)  # framework data for fix locations

    def to_dict(self) -> dict:
        return {
            "filename": self.filename,
            "lineno": self.lineno,
            "function": self.function,
            "code": self.code,
            "template": self.template,
        }


def _template_frame(node: Any) -> Frame | None:
    token = getattr(node, "token", None)
    origin = getattr(node, "origin", None)
    if token is None or origin is None:
        return None
    path = getattr(origin, "name", None)
    if isinstance(path, str) and os.path.isabs(path) and is_library_file(path):
        return None  # a library's own template (admin, DRF's browsable API, form widgets)
    name = getattr(origin, "template_name", None) or path or "<template>"
    contents = getattr(token, "contents", "")
    kind = getattr(getattr(token, "token_type", None), "name", "")
    if kind == "VAR":
        code = "{{ %s }}" % contents
    elif kind == "BLOCK":
        code = "{%% %s %%}" % contents
    else:
        code = contents
    return Frame(str(name), int(getattr(token, "lineno", 0) or 0), type(node).__name__, code, True)


def _jinja_frame(template: Any, code: Any, lineno: int) -> Frame | None:
    """The template name and line of a compiled Jinja2 template's frame (its debug info)."""
    filename = getattr(template, "filename", None) or code.co_filename
    if is_library_file(filename):
        return None
    try:
        line = template.get_corresponding_lineno(lineno)
    except Exception:  # an old or unusual template object: fall back to the Python line
        line = lineno
    source = linecache.getline(filename, line).strip()
    return Frame(str(getattr(template, "name", None) or filename), line, code.co_name, source, True)


JINJA = FrameKind("jinja2", lambda frame: frame.f_globals.get("__jinja_template__"), _jinja_frame, keyed=False)


def resolve_entry(entry: tuple) -> Frame | None:
    """The project frame a raw entry stands for, or ``None`` for a library frame."""
    if len(entry) == 3:
        return _template_frame(entry[2])
    code, lineno = entry[0], entry[1]
    if len(entry) == 4:
        kind = entry[2]
        if kind not in (MANAGER, OWNER):
            try:
                return kind.resolve(entry[3], code, lineno)
            except Exception:  # a framework object we cannot read: no frame rather than no report
                return None
    if is_library_code(code):
        return None
    source = linecache.getline(code.co_filename, lineno).strip()
    if len(entry) == 4 and entry[2] is OWNER:
        detail: Any = ("self", entry[3])
    elif not code.co_flags & CO_NEWLOCALS and code.co_name != "<module>":
        detail = ("class_body", None)  # run once at import: ``queryset = Book.objects.all()``
    else:
        detail = None
    return Frame(code.co_filename, lineno, _function_name(code), source,
                 qualname=getattr(code, "co_qualname", code.co_name), detail=detail)


def tidy_stack(raw: tuple) -> tuple[Frame, ...]:
    """Project frames of a raw stack, innermost first: user code, project templates, and the
    declarations (serializer fields, GraphQL fields, form fields) frameworks processed."""
    frames: list[Frame] = []
    for entry in raw:
        frame = resolve_entry(entry)
        if frame is None:
            continue
        if frames and (frame.template or frame.declares) and (
            (frames[-1].filename, frames[-1].lineno) == (frame.filename, frame.lineno)
        ):
            continue  # one template line or declaration seen through several frames
        frames.append(frame)
    return tuple(frames)


def callsite_of(frames: tuple[Frame, ...]) -> Frame | None:
    """The frame that repeats, as the user sees it.

    The innermost project frame, except that a framework declaration beats project code the
    framework merely called (a model's ``__str__`` under a form field, a property under a
    serializer field): the declaration made the library loop. The declaring class's own
    methods (``get_display`` of a ``SerializerMethodField``, a resolver) stay the call site.
    """
    for index, frame in enumerate(frames):
        if not frame.declares:
            continue
        inner = frames[:index]
        own = [f for f in inner if f.qualname.startswith(frame.declares + ".")]
        if own:
            return own[0]
        if inner and inner[0].template:
            return inner[0]
        return frame
    if not frames:
        return None
    call = tag_call(frames)
    return frames[call] if call is not None else frames[0]


# Django's nodes for tags registered with @register.inclusion_tag / simple_tag / simple_block_tag.
TAG_NODES = frozenset({"InclusionNode", "SimpleNode", "SimpleBlockNode"})


def in_templatetags(filename: str) -> bool:
    """A template tag or filter library: Django finds them only in an app's ``templatetags`` package."""
    return f"{os.sep}templatetags{os.sep}" in filename


def tag_call(frames: tuple[Frame, ...]) -> int | None:
    """The index of the template line that calls a tag or filter whose own code (its Python
    function, or the template an inclusion tag renders) issued the query, or None.

    The loop that repeats is the one around that template line: the tag's own line stays in the
    stack as the next frame.
    """
    for index, frame in enumerate(frames[1:], start=1):
        if not frame.template:
            if not in_templatetags(frame.filename):
                return None
            continue
        inner = frames[:index]
        if frame.function in TAG_NODES or any(not f.template for f in inner):
            return index
    return None


@dataclass(frozen=True)
class BuildSite:
    """Where a queryset was built (or evaluated), as analysis reads a ``build_stack``."""

    frame: Frame | None  # the project frame to act on, or the library frame that decided it
    library: bool  # built by library code the project only called into
    manager: str = ""  # the project's manager or queryset method the build went through


def build_site(raw: tuple | None) -> BuildSite:
    """The project frame that built a queryset, or the library frame that did.

    The first entry outside the ORM decides: project code (or a project template) built it;
    otherwise a library did, unless a project template or declaration drove the library (a
    ``{% for %}`` loop, a GraphQL field, a serializer field), which is then the site. A project frame reached only
    through library frames is an entry point (a test's ``client.get``, a call into a
    library), never the site.
    """
    if not raw:
        return BuildSite(None, False)
    decider = None
    for entry in raw:
        code = entry[0]
        if len(entry) == 4 and entry[2] is MANAGER:
            continue
        if len(entry) == 3 or not is_orm_code(code):
            decider = entry
            break
    if decider is None:
        return BuildSite(None, False)
    manager = next((getattr(e[0], "co_qualname", e[0].co_name) for e in raw
                    if len(e) == 4 and e[2] is MANAGER and not is_library_code(e[0])), "")
    frame = resolve_entry(decider)
    if frame is not None:
        return BuildSite(frame, False, manager)
    for entry in raw[raw.index(decider):]:
        if len(entry) == 3 or (len(entry) == 4 and entry[2] not in (MANAGER, OWNER)):
            declared = resolve_entry(entry)  # a project template or declaration drove the library
            if declared is not None:
                return BuildSite(declared, False)
        elif len(entry) == 2 and not is_library_code(entry[0]):
            break  # the entry point
    return BuildSite(_library_frame(decider), True)


def _library_frame(entry: tuple) -> Frame:
    code, lineno = entry[0], entry[1]
    owner = entry[3] if len(entry) == 4 and entry[2] is OWNER else None
    source = linecache.getline(code.co_filename, lineno).strip()
    qualname = getattr(code, "co_qualname", code.co_name)
    if not isinstance(owner, type):
        return Frame(code.co_filename, lineno, _function_name(code), source, qualname=qualname)
    # A method the project can override in its own subclass (ListView.get_queryset of BookListView).
    detail = ("override", owner, code.co_name, code.co_varnames[: code.co_argcount])
    return Frame(code.co_filename, lineno, f"{owner.__name__}.{code.co_name}", source,
                 qualname=qualname, detail=detail)


def is_project_class(cls: type) -> bool:
    """Whether a class is defined in the project's code."""
    module = sys.modules.get(getattr(cls, "__module__", ""))
    filename = getattr(module, "__file__", None)
    return filename is not None and not is_library_file(filename)


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


# --------------------------------------------------------------------------- class bodies


@lru_cache(maxsize=2048)
def class_body(cls: type) -> tuple[str, int, tuple[str, ...], str] | None:
    """(file, first line, lines, body indentation) of a class's source, or None."""
    try:
        lines, start = inspect.getsourcelines(cls)
        filename = inspect.getsourcefile(cls)
    except (OSError, TypeError):
        return None
    if filename is None:
        return None
    indent = None
    header_done = False
    for line in lines:
        stripped = line.split("#")[0].strip()
        if not header_done:
            # Decorators, then a class statement (possibly over several lines) ending with ":".
            header_done = stripped.endswith(":") and not stripped.startswith("@")
            continue
        if stripped:
            indent = line[: len(line) - len(line.lstrip())]
            break
    return filename, start, tuple(lines), indent or "    "


def declaration_line(cls: type, name: str) -> tuple[str, int, str] | None:
    """(file, line, source) of ``name`` declared in a class body (``name = ...``,
    ``name: ...`` or ``def name(``), searched through the MRO; None if not found."""
    pattern = None
    for klass in getattr(cls, "__mro__", (cls,)):
        if klass is object:
            continue
        body = class_body(klass)
        if body is None:
            continue
        filename, start, lines, indent = body
        pattern = re.compile(r"^%s(?:%s\s*[:=]|def %s\s*\()" % (re.escape(indent), re.escape(name), re.escape(name)))
        for offset, line in enumerate(lines):
            if pattern.match(line):
                return filename, start + offset, line.strip()
    return None


def mentioned_line(cls: type, name: str) -> tuple[str, int, str] | None:
    """(file, line, source) of the first line of a class body that names ``name`` as a
    string (``fields = ["id", "author"]``), else the ``class`` line itself."""
    body = class_body(cls)
    if body is None:
        return None
    filename, start, lines, _ = body
    quoted = re.compile(r"""["']%s["']""" % re.escape(name))
    for offset, line in enumerate(lines):
        if quoted.search(line):
            return filename, start + offset, line.strip()
    for offset, line in enumerate(lines):
        if line.lstrip().startswith("class "):
            return filename, start + offset, line.strip()
    return None


# --------------------------------------------------------------------------- who loops

_COMPREHENSIONS = frozenset({"<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"})


def library_loops(raw: tuple) -> bool:
    """Whether a library frame between the statement and the project's first frame is inside a
    loop (a ``for``/``while`` body or a comprehension): then the library repeats it, whatever the
    project line that called it once. ORM frames are not counted (they loop over rows, not calls)."""
    for entry in raw:
        code = entry[0]
        if not hasattr(code, "co_filename") or is_orm_code(code):
            continue
        if not is_library_code(code):
            return False
        if code.co_name in _COMPREHENSIONS or _in_loop(code.co_filename, code.co_firstlineno, entry[1]):
            return True
    return False


@lru_cache(maxsize=1024)
def _in_loop(filename: str, first_line: int, line: int) -> bool:
    """Whether ``line`` of the function starting at ``first_line`` is inside one of its loops."""
    import ast

    parsed = source_tree(filename)
    if parsed is None:
        return False
    for node in ast.walk(parsed[1]):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and first_line in (
                node.lineno, *(d.lineno for d in node.decorator_list)):
            return any(loop_holds(inner, line) for inner in ast.walk(node))
    return False


@lru_cache(maxsize=256)
def source_tree(filename: str) -> tuple[str, Any] | None:
    """(source, ``ast`` module) of a Python file, parsed once per process; None if unreadable."""
    import ast

    try:
        source = "".join(linecache.getlines(filename)) or open(filename, encoding="utf-8").read()
        return source, ast.parse(source)
    except (OSError, SyntaxError, ValueError):
        return None


def loop_holds(node: Any, line: int) -> bool:
    """Whether ``node`` is a ``for``/``while`` whose body (not its header) holds ``line``."""
    import ast

    return isinstance(node, (ast.For, ast.AsyncFor, ast.While)) and bool(node.body) and \
        node.body[0].lineno <= line <= (node.end_lineno or node.lineno)
