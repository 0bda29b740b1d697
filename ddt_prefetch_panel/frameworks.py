"""Frameworks that loop on the user's behalf: where their frames point in the user's code.

Each entry of :data:`FRAMEWORK_FRAMES` names one library function whose frame knows which
user declaration it is processing, what to keep from the frame at capture time (cheap:
one local variable) and how analysis turns that into a declaration frame in the user's
class body:

* Django REST framework: ``Serializer.to_representation`` renders one ``field`` at a time
  -> ``BookSerializer.author`` (``author = AuthorSerializer()``), with the nesting path;
* graphql-core (strawberry-django, graphene-django): ``ExecutionContext.execute_field``
  resolves one field of one type -> ``AuthorType.publisher`` / ``BookNode.author``;
* Django forms: ``BoundField.as_widget`` renders one form field -> ``CopyForm.book``.

asgiref's thread hop is registered too: the sync half of ``await Model.objects.aget()``
runs in another thread, and its stack continues in the awaiting coroutine.

A framework that is not installed is skipped; one whose function moved leaves that entry
off (the frames then simply read as library code, as before).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import linecache
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable

from .frames import (
    ASYNC_BOUNDARY,
    BuildSite,
    Frame,
    FrameKind,
    declaration_line,
    is_library_file,
    is_project_class,
    mentioned_line,
    register,
)


@dataclass(frozen=True)
class FrameworkFrame:
    function: str  # "module:Class.method" whose __code__ is registered
    kind: FrameKind
    nested: str = ""  # or the code of the function of this name defined inside it


def _local(name: str) -> Callable[[Any], Any]:
    return lambda frame: frame.f_locals.get(name)


def _declared(cls: type, name: str, function: str, detail: Any = None) -> Frame | None:
    """A declaration frame for ``name`` in ``cls``'s body (or the line naming it), if the
    class is the project's."""
    site = declaration_line(cls, name) or mentioned_line(cls, name)
    if site is None or is_library_file(site[0]):
        return None
    filename, lineno, code = site
    return Frame(filename, lineno, function, code, declares=cls.__name__, detail=detail)


# --------------------------------------------------------------------------- DRF


def _drf_frame(field: Any, code: Any, lineno: int) -> Frame | None:
    parent = getattr(field, "parent", None)
    name = getattr(field, "field_name", None)
    if parent is None or not name:
        return None
    cls = type(parent)
    path = _serializer_path(parent)
    function = f"{path} → {name}" if path else f"{cls.__name__}.{name}"
    return _declared(cls, name, function)


def _serializer_path(serializer: Any) -> str:
    """``AuthorSerializer.books`` for a serializer nested in another one, else ``""``."""
    names = []
    owner = None
    node = serializer
    while getattr(node, "parent", None) is not None:
        if getattr(node, "field_name", ""):  # a list's child has no name of its own
            names.append(node.field_name)
            owner = node.parent  # the serializer that declares the outermost named field
        node = node.parent
    if owner is None:
        return ""
    return f"{type(owner).__name__}." + ".".join(reversed(names))


# --------------------------------------------------------------------------- GraphQL


def _graphql_payload(frame: Any) -> tuple[Any, str]:
    local = frame.f_locals
    return local["parent_type"], local["path"].key


def _graphql_key(frame: Any) -> Any:
    """The schema's field object: stable across requests, one per type and field."""
    local = frame.f_locals
    return local["parent_type"].fields.get(local["path"].key)


def _graphql_info_payload(frame: Any) -> tuple[Any, str]:
    info = frame.f_locals["info"]
    return info.parent_type, info.field_name


def _graphql_info_key(frame: Any) -> Any:
    info = frame.f_locals["info"]
    return info.parent_type.fields.get(info.field_name)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _graphql_frame(payload: tuple[Any, str], code: Any, lineno: int) -> Frame | None:
    parent_type, name = payload
    owner = graphql_owner(parent_type, name)
    if owner is None:
        return None
    cls, python_name, detail = owner
    site = declaration_line(cls, python_name) or declaration_line(cls, f"resolve_{python_name}")
    if site is None:
        return _declared(cls, python_name, f"{cls.__name__}.{python_name}", detail)
    if is_library_file(site[0]):
        return None
    return Frame(site[0], site[1], f"{cls.__name__}.{python_name}", site[2], declares=cls.__name__, detail=detail)


def graphql_owner(parent_type: Any, name: str) -> tuple[type, str, Any] | None:
    """(Python class, attribute name, framework detail) behind a GraphQL type's field.

    strawberry keeps its type definition in the GraphQL type's extensions; graphene keeps
    the ObjectType class on the GraphQL type. Field names are matched as declared or
    camel-cased, as both frameworks name them by default.
    """
    definition = (getattr(parent_type, "extensions", None) or {}).get("strawberry-definition")
    if definition is not None:
        for field in getattr(definition, "fields", ()):
            python_name = getattr(field, "python_name", None)
            if name in (python_name, getattr(field, "graphql_name", None), _camel(python_name or "")):
                return definition.origin, python_name, ("strawberry", field)
        return None
    graphene_type = getattr(parent_type, "graphene_type", None)
    if graphene_type is not None:
        fields = getattr(getattr(graphene_type, "_meta", None), "fields", None) or {}
        for python_name, field in fields.items():
            if name in (python_name, _camel(python_name)):
                return graphene_type, python_name, ("graphene", field)
    return None


# --------------------------------------------------------------------------- forms


def _form_frame(bound_field: Any, code: Any, lineno: int) -> Frame | None:
    form = getattr(bound_field, "form", None)
    name = getattr(bound_field, "name", None)
    if form is None or not name:
        return None
    cls = type(form)
    declared = _declared(cls, name, f"{cls.__name__}.{name}")
    if declared is not None:
        return declared
    admin = admin_of_form(form)  # a form the admin built from the project's ModelAdmin or inline
    if admin is None:
        return None
    return _declared(admin, name, f"{admin.__name__}.{name}", detail=("admin_form", admin, name))


def changelist_counting(model: type | None, raw: tuple) -> Any:
    """The ModelAdmin whose changelist ran this ``COUNT``: Django's ``ChangeList.get_results``
    counts the filtered rows and, with ``show_full_result_count``, all of them, which is the same
    statement when no filter is applied."""
    if model is None or not any(getattr(entry[0], "co_name", None) == "get_results"
                                and entry[0].co_filename.endswith(f"admin{os.sep}views{os.sep}main.py")
                                for entry in raw):
        return None
    return registered_admin(model)


def registered_admin(model: type) -> Any:
    """The ModelAdmin instance registered for ``model`` on any admin site, else None."""
    from django.contrib.admin.sites import all_sites

    return next((site._registry[model] for site in list(all_sites) if model in site._registry), None)


def registration_line(model: type | None) -> Frame | None:
    """The project line that registers ``model`` with the admin (``admin.site.register(...)``
    naming it, in its app's ``admin`` module), when it is the project's."""
    if model is None:
        return None
    module = sys.modules.get(f"{model._meta.app_config.name}.admin")
    filename = getattr(module, "__file__", None)
    if filename is None or is_library_file(filename):
        return None
    name = re.compile(r"\b%s\b" % re.escape(model.__name__))
    for number, line in enumerate(linecache.getlines(filename), 1):
        if "register(" in line and name.search(line):
            return Frame(filename, number, "<module>", line.strip())
    return None


def admin_of_form(form: Any) -> type | None:
    """The project's ``ModelAdmin`` (a change form) or ``InlineModelAdmin`` (a form of an inline
    formset, whose prefix has a ``-``) whose model the form edits, when exactly one does."""
    from django.apps import apps

    model = getattr(getattr(form, "_meta", None), "model", None)
    if model is None or not apps.is_installed("django.contrib.admin"):
        return None
    from django.contrib.admin.sites import all_sites

    inline = "-" in (getattr(form, "prefix", None) or "")
    found = set()
    for site in list(all_sites):
        for model_admin in site._registry.values():
            if inline:
                found.update(cls for cls in getattr(model_admin, "inlines", ()) if getattr(cls, "model", None) is model)
            elif model_admin.model is model:
                found.add(type(model_admin))
    return found.pop() if len(found) == 1 else None


DRF = FrameKind("drf", _local("field"), _drf_frame)
GRAPHQL = FrameKind("graphql", _graphql_payload, _graphql_frame, key=_graphql_key)
# An async resolver's field: execute_field has returned, its await_result() coroutine holds info.
GRAPHQL_ASYNC = FrameKind("graphql", _graphql_info_payload, _graphql_frame, key=_graphql_info_key)
FORM = FrameKind("form", _local("self"), _form_frame)

FRAMEWORK_FRAMES: list[FrameworkFrame] = [
    FrameworkFrame("rest_framework.serializers:Serializer.to_representation", DRF),
    FrameworkFrame("graphql.execution.execute:ExecutionContext.execute_field", GRAPHQL),
    FrameworkFrame("graphql.execution.execute:ExecutionContext.execute_field", GRAPHQL_ASYNC, nested="await_result"),
    FrameworkFrame("django.forms.boundfield:BoundField.as_widget", FORM),
    FrameworkFrame("asgiref.sync:SyncToAsync.thread_handler", ASYNC_BOUNDARY),
]

_status: dict[str, str | None] = {}


def install() -> dict[str, str | None]:
    """Register every installed framework's frames once; never raises."""
    for entry in FRAMEWORK_FRAMES:
        name = entry.function + (f".<locals>.{entry.nested}" if entry.nested else "")
        if name in _status:
            continue
        module_name, _, dotted = entry.function.partition(":")
        if importlib.util.find_spec(module_name.split(".")[0]) is None:
            _status[name] = "not installed"
            continue
        try:
            target: Any = importlib.import_module(module_name)
            for part in dotted.split("."):
                target = getattr(target, part)
            code = target.__code__
            if entry.nested:
                code = next(c for c in code.co_consts if getattr(c, "co_name", None) == entry.nested)
            register(code, entry.kind)
        except Exception as exc:  # a framework release moved the function: that entry is off
            _status[name] = f"{type(exc).__name__}: {exc}"
        else:
            _status[name] = None
    return dict(_status)


# --------------------------------------------------------------------------- where the fix goes


def fix_snippets(origin: Frame | None, fix: str | None) -> dict[str, str]:
    """Framework-specific places for a proven ``fix`` (``.select_related("a__b")``).

    strawberry-django builds the root queryset itself from a field declaration: the fix
    goes into the type's ``get_queryset`` (works as is) or into the field's optimizer hints
    (with ``DjangoOptimizerExtension`` on the schema).
    """
    if origin is None or not fix or not isinstance(origin.detail, tuple):
        return {}
    if origin.detail[0] == "override":
        return override_snippets(origin.detail, fix)
    framework, field = origin.detail
    if framework == "graphene":
        return _graphene_snippets(field, fix)
    if framework != "strawberry":
        return {}
    snippets: dict[str, str] = {}
    django_type = getattr(field, "django_type", None)
    type_name = getattr(django_type, "__name__", "YourType")
    snippets["get_queryset"] = (
        f"# in {type_name}\n"
        "@classmethod\n"
        "def get_queryset(cls, queryset, info, **kwargs):\n"
        f"    return queryset{fix}"
    )
    calls = _hint_calls(fix)
    if not calls:
        return snippets  # annotate() and friends have no field hint: get_queryset only
    hints = ", ".join(f"{method}=[{args}]" for method, args in calls)
    code = origin.code
    if code.rstrip().endswith("strawberry_django.field()"):
        snippets["hints"] = code.rstrip()[: -len("()")] + f"({hints})"
    else:
        snippets["hints"] = f"strawberry_django.field({hints})"
    snippets["hints"] += "  # with DjangoOptimizerExtension() in the schema's extensions"
    return snippets


def _graphene_snippets(field: Any, fix: str) -> dict[str, str]:
    """graphene-django built the queryset for a field (``DjangoListField(BookNode)``): the
    node type's ``get_queryset`` classmethod is where every such field's queryset passes."""
    node = getattr(field, "type", None)
    while node is not None and not hasattr(getattr(node, "_meta", None), "model"):
        node = getattr(node, "of_type", None)  # NonNull(List(NonNull(BookNode)))
    if not isinstance(node, type) or not is_project_class(node):
        return {}
    return {"get_queryset": (
        f"# in {node.__name__}\n"
        "@classmethod\n"
        "def get_queryset(cls, queryset, info):\n"
        f"    return queryset{fix}"
    )}


def override_snippets(detail: tuple, fix: str) -> dict[str, str]:
    """A library method built the queryset for a project subclass (Django's ``ListView``,
    a framework's view or admin): override it there and chain the fix onto ``super()``."""
    _, owner, method, params = detail
    if not is_project_class(owner):
        return {}
    names = list(params)
    if not names or names[0] != "self":
        return {}
    call = ", ".join(names[1:])
    return {"override": (
        f"# in {owner.__name__}\n"
        f"def {method}({', '.join(names)}):\n"
        f"    return super().{method}({call}){fix}"
    )}


def overridable(site: BuildSite) -> bool:
    """The library built the queryset in a method of a project subclass."""
    detail = site.frame.detail if site.frame is not None else None
    return isinstance(detail, tuple) and detail[0] == "override" and is_project_class(detail[1])


def _hint_calls(fix: str) -> list[tuple[str, str]]:
    """``.select_related("a").prefetch_related(Prefetch(...))`` -> [(method, argument source)]
    for the methods strawberry-django takes as field hints; [] if anything else is chained."""
    source = "qs" + fix
    try:
        node: Any = ast.parse(source, mode="eval").body
    except SyntaxError:
        return []
    calls = []
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr not in ("select_related", "prefetch_related", "only") or node.keywords:
            return []
        args = ", ".join(ast.get_source_segment(source, a) or "" for a in node.args)
        calls.append((node.func.attr, args))
        node = node.func.value
    return list(reversed(calls)) if isinstance(node, ast.Name) and node.id == "qs" else []


def _model_method(frame: Any) -> bool:
    """A method of a model: every view that calls it shares its queryset (place.shared_note)."""
    from django.db import models

    detail = frame.detail
    return isinstance(detail, tuple) and detail[0] == "self" and isinstance(detail[1], type) \
        and issubclass(detail[1], models.Model)


def place_note(site: BuildSite) -> str | None:
    """Where the fix goes when the origin is a method (a viewset's ``get_queryset``) or went
    through the project's own manager: the choice between one view and every caller."""
    frame = site.frame
    if frame is None or site.library or frame.declares or frame.template:
        return None
    parts = []
    if "." in frame.qualname and "<" not in frame.qualname and not _model_method(frame):
        parts.append(f"Put the fix in {frame.qualname}(): it changes this queryset only.")
    if site.manager:
        parts.append(f"Putting it in {site.manager}() instead would affect every caller of the manager.")
    return " ".join(parts) or None


def unused_snippets(origin: Frame | None, method: str, lookup: str) -> tuple[dict[str, str], str] | None:
    """An eager load nobody read in this request, built in a DRF view's method.

    One viewset serves several actions, serializers and modes (``?brief=1``): a prefetch
    unused here may feed another of them, so the advice is to make it conditional in
    ``get_queryset()``, never to remove it. Returns (snippets, note) or None.
    """
    detail = origin.detail if origin is not None else None
    if not (isinstance(detail, tuple) and detail[0] == "self" and _is_drf_view(detail[1])):
        return None
    view = detail[1].__name__
    snippets = {
        "fix": f'# in {view}.get_queryset(): .{method}("{lookup}") only where it is read',
        "conditional": (
            f"# in {view}\n"
            "def get_queryset(self):\n"
            f"    queryset = ...  # as now, without .{method}(\"{lookup}\")\n"
            f"    if ...:  # the action, serializer or mode that reads {lookup}, e.g. not self.request.query_params.get(\"brief\")\n"
            f"        queryset = queryset.{method}(\"{lookup}\")\n"
            "    return queryset"
        ),
    }
    note = (f"{view} serves several actions, serializers or modes: removing it would bring the N+1 back "
            f"where {lookup!r} is read. Load it only there.")
    return snippets, note


def _is_drf_view(cls: Any) -> bool:
    import sys

    generics = sys.modules.get("rest_framework.generics")
    return generics is not None and isinstance(cls, type) and issubclass(cls, generics.GenericAPIView)
