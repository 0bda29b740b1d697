"""Stage 4, advise: turn a related group into a validated, copyable fix.

Every lookup is checked with the ORM's own machinery before a snippet is produced
(``select_related`` lookups are compiled, ``prefetch_related`` paths are walked through
the models' relation descriptors); an unvalidated snippet is never returned.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import FieldDoesNotExist, FieldError
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Prefetch

from .relate import Relation, describe_path


@dataclass
class Advice:
    method: str | None
    snippets: dict[str, str] = field(default_factory=dict)
    after_queries: int = 0  # statements the group still needs once fixed
    note: str | None = None


def manager_expr(model: type) -> str:
    manager = model._default_manager.name if model._default_manager else "objects"
    return f"{model.__name__}.{manager}"


def validate_lookup(model: type, lookup: str, method: str) -> bool:
    """True when the ORM accepts ``getattr(queryset, method)(lookup)`` for ``model``."""
    if method == "select_related":
        try:
            # Compiling the query makes the ORM resolve every select_related name.
            model._base_manager.select_related(lookup).query.get_compiler(DEFAULT_DB_ALIAS).as_sql()
        except (FieldError, FieldDoesNotExist, ValueError, TypeError):
            return False
        hops = describe_path(model, lookup.split("__"))
        return bool(hops) and all(h.single for h in hops)
    if method == "prefetch_related":
        hops = describe_path(model, lookup.split("__"))
        return bool(hops) and all(h.kind != "deferred" for h in hops)
    return False


def advise_relation(relation: Relation, origin_code: str | None) -> Advice:
    """Recommended fix for an N+1 on ``relation`` (its path from the root model)."""
    if relation.model is None or not relation.hops or not relation.path:
        return Advice(None, note=relation.note)
    last = relation.last
    if last.kind == "deferred":
        return _advise_deferred(relation, origin_code)
    hops = relation.hops
    lookup = relation.lookup
    if len(hops) != len(relation.path):
        return Advice(None, note=relation.note)
    method = "select_related" if all(h.single for h in hops) else "prefetch_related"
    if not validate_lookup(relation.model, lookup, method):
        return Advice(None, note=f"{method}({lookup!r}) did not validate against the models.")
    call = f'.{method}("{lookup}")'
    snippets = {
        "fix": call,
        "queryset": f"{manager_expr(relation.model)}{call}",
    }
    root = relation.root
    existing = _existing_lookups(root, method) if root is not None else []
    if origin_code:
        after = rewrite_line(origin_code, relation.model.__name__, method, lookup, existing)
        if after and after != origin_code.strip():
            snippets["line"] = after
    levels = 0 if method == "select_related" else sum(1 for h in hops if not h.single) + _single_after_many(hops)
    return Advice(method, snippets, after_queries=levels)


def _single_after_many(hops) -> int:
    """prefetch_related issues one statement per level, single-valued levels included."""
    seen_many = False
    extra = 0
    for hop in hops:
        if not hop.single:
            seen_many = True
        elif seen_many:
            extra += 1
    return extra


def _existing_lookups(root: Any, method: str) -> list[str]:
    if method == "prefetch_related":
        out = []
        for item in root.prefetch_lookups:
            out.append(item.prefetch_to if isinstance(item, Prefetch) else str(item))
        return out
    selected = root.select_related
    if isinstance(selected, dict):
        return list(_flatten(selected))
    return []


def _flatten(tree: dict, prefix: str = ""):
    for key, sub in tree.items():
        path = f"{prefix}__{key}" if prefix else key
        if sub:
            yield from _flatten(sub, path)
        else:
            yield path


def _advise_deferred(relation: Relation, origin_code: str | None) -> Advice:
    root = relation.root
    name = relation.path[-1]
    if root is None or len(relation.path) != 1:
        return Advice(None, note=f"{name!r} was deferred when its instances were loaded.")
    names, defer = root.deferred
    if defer:
        args = sorted(n for n in names if n != name)
        method = "defer"
        call = f'.defer({", ".join(_quote(n) for n in args)})' if args else ""
        fix = call or f"# remove .defer({_quote(name)})"
    else:
        args = sorted(set(names) | {name})
        method = "only"
        call = f'.only({", ".join(_quote(n) for n in args)})'
        fix = call
    snippets = {"fix": fix}
    if call:
        snippets["queryset"] = f"{manager_expr(relation.model)}{call}"
    if origin_code and call:
        after = rewrite_line(origin_code, relation.model.__name__, method, None, [], replace_args=args)
        if after and after != origin_code.strip():
            snippets["line"] = after
    return Advice(method, snippets, after_queries=0)


# --------------------------------------------------------------------------- line rewriting


def rewrite_line(code: str, model_name: str, method: str, lookup: str | None,
                 existing: list[str], replace_args: list[str] | None = None) -> str | None:
    """The origin line with the fix applied, or None if the line cannot be read.

    Finds the queryset chain that starts at ``Model.<manager>`` (or the statement's value),
    then extends an existing ``method(...)`` call in it, or appends one at its end.
    """
    text = code.strip()
    tree, suffix = _parse(text)
    if tree is None:
        return None
    chain = _find_chain(tree, model_name)
    if chain is None:
        return None
    encoded = (text + suffix).encode()
    existing_call = _call_in_chain(chain, method)
    if existing_call is not None:
        args = replace_args if replace_args is not None else _merge_args(existing_call, lookup, existing)
        if args is None:
            return None
        start = existing_call.func.end_col_offset
        rendered = "(" + ", ".join(_quote(a) for a in args) + ")"
        new = encoded[:start] + rendered.encode() + encoded[existing_call.end_col_offset:]
    else:
        args = replace_args if replace_args is not None else [lookup]
        rendered = f".{method}(" + ", ".join(_quote(a) for a in args) + ")"
        end = chain.end_col_offset
        new = encoded[:end] + rendered.encode() + encoded[end:]
    result = new.decode()
    return result[: len(result) - len(suffix)] if suffix else result


def _quote(value: str) -> str:
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')


def _parse(text: str) -> tuple[ast.AST | None, str]:
    for suffix in ("", " pass", ")"):
        try:
            return ast.parse(text + suffix), suffix
        except SyntaxError:
            continue
    return None, ""


def _find_chain(tree: ast.AST, model_name: str) -> ast.expr | None:
    parents: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    start = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _names_model(node.value, model_name):
            start = node
            break
    if start is None:
        # No "Model.manager" on the line: use the value of an assignment, return or for.
        for node in ast.walk(tree):
            value = getattr(node, "value", None) if isinstance(node, (ast.Assign, ast.AnnAssign, ast.Return)) else None
            if isinstance(node, ast.For):
                value = node.iter
            if isinstance(value, ast.Call):
                return value
        return None
    node: ast.expr = start
    while True:
        parent = parents.get(id(node))
        if isinstance(parent, ast.Call) and parent.func is node:
            node = parent
        elif isinstance(parent, ast.Attribute) and parent.value is node:
            grand = parents.get(id(parent))
            if isinstance(grand, ast.Call) and grand.func is parent:
                node = grand
            else:
                return node
        else:
            return node


def _names_model(node: ast.expr, model_name: str) -> bool:
    if isinstance(node, ast.Name):
        return node.id == model_name
    if isinstance(node, ast.Attribute):
        return node.attr == model_name
    return False


def _call_in_chain(chain: ast.expr, method: str) -> ast.Call | None:
    node: Any = chain
    while isinstance(node, (ast.Call, ast.Attribute)):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr == method:
                return node
            node = node.func
        else:
            node = node.value
    return None


def _merge_args(call: ast.Call, lookup: str | None, existing: list[str]) -> list[str] | None:
    args: list[str] = []
    for arg in call.args:
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            return None  # Prefetch objects or variables: cannot be rewritten safely
        args.append(arg.value)
    if lookup is None:
        return args
    merged = [a for a in args if not (lookup == a or lookup.startswith(a + "__"))]
    merged.append(lookup)
    return merged
