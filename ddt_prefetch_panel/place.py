"""Stage 4, place: where in the project's own code to act on a finding.

relate names the relation and the root queryset the loop iterated; that root may have been
built where nothing can be pasted: in a template (``{% for post in object.posts.all %}``),
or by a library (Django's ``ListView.get_queryset`` for ``model = Thread``, a CMS's child
relation). This stage decides, from ORM metadata and the captured stacks only:

* :func:`climb`: when the root was built in a template or by a library the project cannot
  override there, the root is re-rooted on the queryset its parent object came from
  (``object`` of a ``DetailView`` -> the view's queryset) with the longer lookup
  (``posts__author``), as long as that parent is replayable;
* :func:`place_of`: the :class:`Place` to act on. A project line that builds the queryset
  (``"queryset"``); a class attribute of the project's view or admin (``"class_attr"``:
  ``queryset =``, ``model =``, ``list_select_related``); a method to add in the project's
  subclass (``"override"``); or, when nothing in the project can change the query,
  ``"upstream"``: the package, its version and its line, with no paste-able line.

A place is never a template, a site-packages file or ``manage.py``. A finding whose loop and
queryset are a test module's own code (a setup loop) is :func:`test_code`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from typing import Any

from .capture import Root
from .frames import (
    BuildSite,
    Frame,
    build_site,
    class_body,
    declaration_line,
    is_library_file,
    is_project_class,
    is_site_file,
    is_test_file,
    shown_location,
)
from .relate import Relation, changelist_admin, describe_path

# Library methods that build a view's queryset from ``model =`` when ``queryset`` is not set:
# Django's generic views (MultipleObjectMixin / SingleObjectMixin). Checked by class, not name.
_MODEL_DRIVEN = (
    ("django.views.generic.list", "MultipleObjectMixin"),
    ("django.views.generic.detail", "SingleObjectMixin"),
)


@dataclass(frozen=True)
class Place:
    """Where to act. ``frame`` is the project line (for ``"upstream"``, the library's line)."""

    kind: str  # "queryset" | "class_attr" | "override" | "upstream"
    frame: Frame | None
    owner: type | None = None  # class_attr / override: the project class to change
    attr: str = ""  # class_attr: "queryset" | "model" | "list_select_related"; override: the method
    params: tuple[str, ...] = ()  # override: the method's parameters, self first
    note: str = ""  # why the fix goes here, for the finding's note

    @property
    def pasteable(self) -> bool:
        return self.kind != "upstream" and self.frame is not None

    @property
    def rewritable(self) -> bool:
        """The line itself takes the fix (a queryset built there, or ``queryset =`` on a class)."""
        return self.kind == "queryset" or (self.kind == "class_attr" and self.attr in ("", "queryset"))

    def to_dict(self) -> dict:
        """``{"file", "line", "code", "kind"}``, plus ``class`` for a class attribute or an
        override and ``package``/``version`` for upstream (paths as exports show them)."""
        data: dict[str, Any] = {"file": None, "line": None, "code": None, "kind": self.kind}
        if self.frame is not None:
            location = shown_location(self.frame.filename)
            data.update(file=location.path, line=self.frame.lineno, code=self.frame.code)
            if self.kind == "upstream":
                data.update(package=location.distribution or location.path.split("/")[0],
                            version=location.version)
        if self.owner is not None:
            data["class"] = self.owner.__name__
        if self.attr:
            data["attr"] = self.attr
        return data


# --------------------------------------------------------------------------- climbing


def owned(site: BuildSite) -> bool:
    """Whether the project can change the queryset where it was built: a project Python line
    (not a template), a GraphQL field of the project's type (its ``get_queryset``),
    or a library method of a project subclass (override it, or set the class attribute it reads)."""
    frame = site.frame
    if frame is None:
        return False
    if site.library:
        return overridable_frame(frame)
    if frame.template:
        return False
    if frame.declares:
        return isinstance(frame.detail, tuple) and frame.detail[0] in ("strawberry", "graphene")
    return True


def climb(relation: Relation) -> Relation:
    """Re-root a relation whose root the project cannot change where it was built.

    ``{% for post in object.posts.all %}{{ post.author }}`` iterates a queryset the template
    built from ``object``: the fix belongs on the queryset that loaded ``object``
    (``prefetch_related("posts__author")``), which the replay proofs can re-run. Stops at the
    first root the project owns, or where the longer path is not a relation chain.
    """
    root, path, hops = relation.root, relation.path, relation.hops
    if root is None or relation.per_instance or not path or len(hops) != len(path):
        return relation
    climbed = False
    while root.via is not None and not owned(build_site(root.origin)):
        parent = root.via.root
        longer = tuple(root.via.path) + tuple(path)
        described = describe_path(parent.model, longer)
        if not described or parent.query is None or not _replayable_parent(parent):
            break
        root, path, hops, climbed = parent, longer, described, True
    if not climbed:
        return relation
    via = relation.root.via
    return replace(relation, root=root, model=root.model, path=path, hops=list(hops),
                   model_admin=changelist_admin(root), climbed_from="__".join(via.path) if via else None)


def _replayable_parent(root: Root) -> bool:
    return root.queryset_class is not None and root.rows >= 1


# --------------------------------------------------------------------------- deciding


def place_of(relation: Relation | None, callsite: Frame | None) -> Place | None:
    """The place to act for a finding on ``relation`` (without a root: its own loop line)."""
    root = relation.root if relation is not None else None
    if relation is not None and relation.model_admin is not None and is_project_class(type(relation.model_admin)):
        return admin_place(type(relation.model_admin), all(hop.single for hop in relation.hops))
    site = build_site(root.origin) if root is not None else BuildSite(None, False)
    frame = site.frame
    if owned(site):
        if site.library:
            return view_place(frame)
        if frame.declares:
            return Place("override", frame, note="")
        inherited = inherited_method(frame)
        if inherited is not None:
            return inherited
        return Place("class_attr" if is_class_body(frame) else "queryset", frame, note=shared_note(frame))
    if root is None and callsite is not None and not callsite.template and not callsite.declares:
        return Place("queryset", callsite)  # a hand-written loop or a write loop: its own line
    if frame is not None and site.library and installed(frame):
        return Place("upstream", frame, note=upstream_note(frame))
    return None


def installed(frame: Frame) -> bool:
    """A file of an installed package (not code typed in a shell or run with ``python -c``)."""
    return bool(shown_location(frame.filename).distribution) or is_site_file(frame.filename)


def test_code(place: Place | None, callsite: Frame | None, write: bool) -> bool:
    """The repeat is a test's own setup: a write loop (objects created or saved one by one) in a
    test module's body or fixtures, not in a view the test called (whose lines are innermost)."""
    if not write or callsite is None or callsite.template or not is_test_file(callsite.filename):
        return False
    return place is not None and place.frame is not None and is_test_file(place.frame.filename)


def inherited_method(frame: Frame) -> Place | None:
    """A method of a project mixin or base class built the queryset for a subclass
    (``PublishedMixin.get_queryset`` run for ``PostList``): every class that inherits it shares
    that line, so the fix goes on this subclass, as an override chained onto ``super()``."""
    detail = frame.detail
    if not (isinstance(detail, tuple) and detail[0] == "self" and isinstance(detail[1], type)):
        return None
    cls = detail[1]
    owner_name, _, method = frame.qualname.rpartition(".")
    if not owner_name or "<" in frame.qualname or cls.__qualname__ == owner_name or not is_project_class(cls):
        return None
    if not any(klass.__qualname__ == owner_name for klass in cls.__mro__[1:]):
        return None
    line = class_line(cls)
    params = _parameters(getattr(cls, method, None))
    if line is None or params is None:
        return None
    return Place("override", line, cls, method, params, note=(
        f"{frame.qualname}() builds the queryset and every class that inherits it shares that line: "
        f"override {method}() in {cls.__name__} so the fix changes this view only."))


def shared_note(frame: Frame) -> str:
    """A queryset built in a model's method is built for every caller of that method: the proof
    covers the stored requests that ran it (shared.py), not the pages not opened yet."""
    detail = frame.detail
    if not (isinstance(detail, tuple) and detail[0] == "self" and isinstance(detail[1], type)):
        return ""
    from django.db import models

    if not issubclass(detail[1], models.Model) or "." not in frame.qualname:
        return ""
    return (f"This line is in {frame.qualname}(), which other views may call too: the fix changes it for "
            "every caller. It is replayed on the other requests the toolbar still stores that ran this line "
            "(the proof names them), not on pages nobody has opened yet.")


def _parameters(function: Any) -> tuple[str, ...] | None:
    code = getattr(function, "__code__", None)
    if code is None or code.co_flags & 0x0C:  # *args / **kwargs: not chained onto super() here
        return None
    names = code.co_varnames[: code.co_argcount]
    return tuple(names) if names and names[0] == "self" else None


def is_class_body(frame: Frame) -> bool:
    """A line of a class body (``queryset = Book.objects.all()`` on a view), run at import."""
    return isinstance(frame.detail, tuple) and frame.detail[0] == "class_body"


def overridable_frame(frame: Frame) -> bool:
    detail = frame.detail
    return isinstance(detail, tuple) and detail[0] == "override" and is_project_class(detail[1])


def view_place(frame: Frame) -> Place:
    """A library method built the queryset for a project subclass (``ListView.get_queryset``
    of ``ThreadList``): the subclass's own ``queryset =``, else its ``model =`` where the library
    builds from it, else the method to override."""
    _, owner, method, params = frame.detail
    library = f"{frame.function}()"
    if method == "get_queryset" and _model_driven(frame):
        declared = project_declaration(owner, "queryset")
        if declared is not None:
            return Place("class_attr", declared, owner, "queryset",
                         note=f"{owner.__name__}.queryset is what {library} starts from: the fix goes there.")
        declared = project_declaration(owner, "model")
        if declared is not None:
            return Place("class_attr", declared, owner, "model", note=(
                f"{library} builds the queryset from {owner.__name__}.model: declare the queryset "
                "on the class (keep model =)."))
    line = class_line(owner)
    if line is None:
        return Place("upstream", frame, note=upstream_note(frame)) if installed(frame) else None
    return Place("override", line, owner, method, tuple(params), note=(
        f"{library} builds the queryset: override {method}() in {owner.__name__} and chain the fix onto super()."))


def admin_place(cls: type, joinable: bool) -> Place | None:
    """The project's ModelAdmin: its ``list_select_related`` for single-valued relations, else a
    ``get_queryset`` to add (the admin's own changelist builds and loops the queryset)."""
    if joinable:
        declared = project_declaration(cls, "list_select_related")
        if declared is not None:
            return Place("class_attr", declared, cls, "list_select_related")
    line = class_line(cls)
    if line is None:
        return None
    if joinable:
        return Place("class_attr", line, cls, "list_select_related")
    return Place("override", line, cls, "get_queryset", ("self", "request"))


def project_declaration(cls: type, name: str) -> Frame | None:
    """The line of ``cls`` or a project base class that sets ``name``; None when only a
    library class does (``ListView.queryset = None``)."""
    found = declaration_line(cls, name)
    if found is None or is_library_file(found[0]):
        return None
    filename, lineno, code = found
    if code.split("=", 1)[-1].strip() in ("None", ""):
        return None
    return Frame(filename, lineno, cls.__name__, code, qualname=cls.__name__)


def class_line(cls: type) -> Frame | None:
    """The ``class`` statement of a project class (where a method is added)."""
    body = class_body(cls)
    if body is None or is_library_file(body[0]):
        return None
    filename, start, lines, _ = body
    for offset, line in enumerate(lines):
        if line.lstrip().startswith("class "):
            return Frame(filename, start + offset, cls.__name__, line.strip(), qualname=cls.__name__)
    return None


def _model_driven(frame: Frame) -> bool:
    """The library method that built the queryset is Django's own generic ``get_queryset``
    (which reads ``queryset``, else ``model``), not a subclass's override that ignores them."""
    for module_name, name in _MODEL_DRIVEN:
        base = getattr(sys.modules.get(module_name), name, None)
        code = getattr(getattr(base, "get_queryset", None), "__code__", None)
        if code is not None and frame.qualname == code.co_qualname and \
                os.path.abspath(frame.filename) == os.path.abspath(code.co_filename):
            return True
    return False


def upstream_where(frame: Frame) -> str:
    """``Built and looped inside <package> <version> (<path>:<line>)``."""
    location = shown_location(frame.filename)
    package = location.distribution or location.path.split("/")[0]
    version = f" {location.version}" if location.version else ""
    return f"Built and looped inside {package}{version} ({location.path}:{frame.lineno})"


def upstream_note(frame: Frame) -> str:
    return (f"{upstream_where(frame)}; no line of your project builds this queryset, so there is nothing to "
            "paste here. Report it upstream, or replace the view or tag with your own.")
