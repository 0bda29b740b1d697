"""Stage 4, advise: turn a related group into a validated, copyable fix.

Every lookup is checked with the ORM's own machinery before a snippet is produced
(``select_related`` lookups are compiled, ``prefetch_related`` paths are walked through
the models' relation descriptors); an unvalidated snippet is never returned.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field, replace
from typing import Any

from django.core.exceptions import FieldDoesNotExist, FieldError
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Prefetch
from django.utils.text import smart_split

from .capture import Call
from .frames import loop_holds, source_tree
from .frameworks import registered_admin
from .place import Place
from .pysource import literal_imports, python_literal
from .relate import Relation, describe_path


@dataclass
class Advice:
    method: str | None
    snippets: dict[str, str] = field(default_factory=dict)
    after_queries: int = 0  # statements the group still needs once fixed
    note: str | None = None
    origin: dict | None = None  # replaces the finding's origin (e.g. the ModelAdmin class)
    # How the loop reads the result once fixed, for the replay proof: a Prefetch(to_attr=...)
    # list, or an annotation, instead of the related manager.
    to_attr: str | None = None
    annotation: str | None = None
    # The queryset call that the proof evaluates when "fix" is not one (the admin's
    # list_select_related is proven as the select_related it amounts to).
    proof_call: str | None = None
    # Next candidates, tried in order when the replay proves this one wrong.
    fallbacks: list[Advice] = field(default_factory=list)
    # Names the snippet uses for the loop's filter values (the user's own variables, or
    # placeholders): the proof binds them to this request's values, the text never shows them.
    bindings: dict[str, Any] = field(default_factory=dict)


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


def advise_relation(relation: Relation, origin_code: str | None, callsite_code: str | None = None) -> Advice:
    """Recommended fix for an N+1 on ``relation`` (its path from the root model)."""
    advice = _advise(relation, origin_code, callsite_code)
    if relation.model_admin is not None and advice.method is not None:
        return _advise_admin(relation, advice)
    return advice


def _advise(relation: Relation, origin_code: str | None, callsite_code: str | None) -> Advice:
    if relation.refetch is not None:
        return _advise_refetch(relation, origin_code, callsite_code)
    if relation.model is None or not relation.hops or not relation.path:
        return Advice(None, note=relation.note)
    last = relation.last
    if relation.per_instance:
        return _advise_prefetch_objects(relation, origin_code)
    if last.kind == "deferred":
        return _advise_deferred(relation, origin_code)
    if len(relation.hops) != len(relation.path):
        return Advice(None, note=relation.note)
    if relation.call is not None and relation.call.reads and relation.aggregate is None:
        return Advice(None, note=(
            f"The loop reads {last.label} through {relation.call.reads}, which runs its own query every time: "
            f"no prefetch can serve it. Read .all() instead (the rows are one {last.model.__name__}'s, and "
            f'Python can do the rest), then prefetch_related("{relation.lookup}") on the outer queryset serves it.'))
    if any(h.kind == "generic_fk" for h in relation.hops[:-1]):
        return _advise_generic(relation, origin_code)
    bindings: dict[str, Any] = {}
    if relation.call is not None and not relation.call.unreadable:
        rendered, bindings = render_call(relation.call, callsite_code)
        relation = replace(relation, call=rendered)
    advice = None
    if not last.single and relation.aggregate in ("count", "exists", "sum", "avg", "min", "max"):
        advice = _advise_annotate(relation, origin_code, callsite_code, bindings)
    elif not last.single and relation.call is not None:
        advice = _advise_prefetch_object(relation, origin_code, callsite_code)
    if advice is not None:
        advice.bindings = bindings
        if bindings and advice.method:
            names = ", ".join(sorted(bindings))
            advice.note = ((advice.note + " ") if advice.note else "") + (
                f"The fix uses {names} for the value(s) your loop filters by: define them where the queryset is built.")
        return advice
    return _advise_lookup(relation, origin_code, callsite_code)


def _advise_refetch(relation: Relation, origin_code: str | None, callsite_code: str | None) -> Advice:
    """Rows the loop re-fetches one by one as a child model (``page.specific``), and the relations
    it reads off them: query the child model at the looped queryset's line, with the same calls
    (``ArticlePage.objects.filter(live=True)`` for ``Page.objects.filter(live=True)``), plus the
    eager loads of the relations read off it. A select_related on the parent cannot help: the
    loop loads the row again anyway. ``proof_call`` is what the replay applies to the rebased root.
    """
    refetch = relation.refetch
    if refetch.rebased is None:  # loaded by a foreign key's value: the fix goes through that key
        return _advise(replace(relation, refetch=None), origin_code, callsite_code)
    swapped = swap_model(origin_code, refetch.outer.model.__name__, refetch.model.__name__) if origin_code else None
    if relation.path:
        advice = _advise(replace(relation, refetch=None), swapped, callsite_code)
        if advice.method is None:
            return advice
    else:
        advice = Advice("select_related", {"fix": ".all()", "queryset": f"{manager_expr(refetch.model)}.all()"},
                        proof_call=".all()")
        if swapped:
            advice.snippets["line"] = swapped
    if not swapped:
        advice.snippets.pop("line", None)
    return advice


def swap_model(code: str, model_name: str, new_name: str) -> str | None:
    """The line with its queryset's ``Model.<manager>`` naming another model (``Page.objects...`` ->
    ``ArticlePage.objects...``), or None when the line has no manager of ``model_name``."""
    text = code.strip()
    tree, suffix = _parse(text)
    if tree is None:
        return None
    manager = _manager_of(tree, model_name)
    if manager is None:
        return None
    node = manager.value
    end = node.end_col_offset
    return _splice(text + suffix, suffix, end - len(model_name.encode()), end, new_name)


def queryset_expression(line: str, model_name: str) -> str | None:
    """The queryset-producing expression of a line (``ArticlePage.objects.filter(live=True)`` of
    ``pages = ArticlePage.objects.filter(live=True)``)."""
    text = line.strip()
    tree, suffix = _parse(text)
    chain = _find_chain(tree, model_name) if tree is not None else None
    if chain is None:
        return None
    return ast.get_source_segment(text + suffix, chain)


def _advise_prefetch_objects(relation: Relation, origin_code: str | None) -> Advice:
    """``prefetch_related_objects([obj], "posts")`` once per instance: one call on the whole list.

    The replay proves the queryset form, ``.prefetch_related("posts")`` on the loop's queryset,
    which is what one call on all its instances amounts to.
    """
    lookup = relation.lookup
    if not validate_lookup(relation.model, lookup, "prefetch_related"):
        return Advice(None, note=f"prefetch_related({lookup!r}) did not validate against the models.")
    name = (_assigned_name(origin_code) if origin_code else None) or f"{relation.model.__name__.lower()}_list"
    call = f'.prefetch_related("{lookup}")'
    snippets = {
        "fix": f'prefetch_related_objects({name}, "{lookup}")',
        "queryset": f"{manager_expr(relation.model)}{call}",
        "import": "from django.db.models import prefetch_related_objects",
    }
    if origin_code and "iterator(" not in origin_code:
        after = rewrite_line(origin_code, relation.model.__name__, "prefetch_related", lookup,
                             _existing_lookups(relation.root, "prefetch_related") if relation.root else [])
        if after and after != origin_code.strip():
            snippets["line"] = after
    note = ("prefetch_related_objects() is called once per instance, which runs its queries once per "
            f"instance: call it once on the whole list before the loop ({snippets['fix']}), or prefetch "
            "on the queryset. With .iterator(chunk_size=...), call it once per chunk.")
    return Advice("prefetch_related_objects", snippets, after_queries=prefetch_levels(relation.hops), note=note,
                  proof_call=call)


@dataclass
class BulkGet:
    """A hand-written ``Model.objects.get(field=value)`` per row: what ``in_bulk`` replaces."""

    model: type
    field: str  # field name compared per row ("pk" for the primary key)
    values: list  # sample values of this request, for the replay
    per: str | None = None  # what the loop iterates, from its variable (``hit`` for ``for hit_id in ids``)


def advise_in_bulk(bulk: BulkGet, callsite: Any = None) -> Advice:
    """One ``in_bulk()`` before the loop, a dict lookup in it (the rewritten loop line).

    ``callsite`` is the loop line's :class:`~.frames.Frame`: when the looked-up value is the
    loop's own variable (``for hit_id in ids: Product.objects.get(pk=hit_id)``), the fix loads
    that loop's iterable (``in_bulk(ids)``) and :attr:`BulkGet.per` names what it iterates.
    """
    model = bulk.model
    name = f"{model.__name__.lower()}_by_{bulk.field}"
    code = callsite.code if callsite is not None else None
    access, value = _bulk_access(code, model.__name__, name) if code else (None, None)
    loop = bulk_loop(callsite, value) if value else None
    values = loop[1] if loop else "values"
    if loop:
        bulk.per = _item_name(loop[0])
    field_arg = "" if bulk.field == "pk" else f", field_name={_quote(bulk.field)}"
    snippets = {
        "fix": f"{name} = {manager_expr(model)}.in_bulk({values}{field_arg})  # once, before the loop",
        "bulk": f"{manager_expr(model)}.filter({bulk.field}__in={values})",
    }
    if access:
        snippets["access"] = access
    note = (f"{manager_expr(model)} is queried once per row by {bulk.field}: load them all at once with "
            f"in_bulk() on the values the loop reads ({values}), then read {name}[value] in the loop.")
    return Advice("in_bulk", snippets, after_queries=1, note=note)


def bulk_loop(callsite: Any, value: str) -> tuple[str, str] | None:
    """(loop variable, iterable source) of the loop whose variable is the looked-up ``value``:
    a comprehension on the call site's line, or the innermost ``for`` around it."""
    if callsite is None or getattr(callsite, "template", False) or not value.isidentifier():
        return None
    parsed = source_tree(callsite.filename)
    if parsed is None:
        return None
    source, tree = parsed
    line = callsite.lineno
    found = None
    for node in ast.walk(tree):
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)) and \
                node.lineno <= line <= (node.end_lineno or node.lineno):
            generators = [g for g in node.generators if isinstance(g.target, ast.Name) and g.target.id == value]
            if generators:
                found = generators[0].iter
        elif loop_holds(node, line) and isinstance(node, (ast.For, ast.AsyncFor)) and \
                isinstance(node.target, ast.Name) and node.target.id == value and found is None:
            found = node.iter
    # Only a name (``ids``, ``self.hits``) is read twice as it was read once: an expression
    # (a generator, a query) would be consumed, or run again, by the in_bulk() before the loop.
    if not isinstance(found, (ast.Name, ast.Attribute)):
        return None
    return value, ast.get_source_segment(source, found)


def _item_name(variable: str) -> str:
    """What one loop variable stands for: ``hit_id`` -> ``hit``."""
    for suffix in ("_ids", "_id", "_pks", "_pk"):
        if variable.endswith(suffix) and len(variable) > len(suffix):
            return variable[: -len(suffix)]
    return variable


def _bulk_access(code: str, model_name: str, name: str) -> tuple[str | None, str | None]:
    """``Model.objects.get(pk=x)`` (or ``.filter(pk=x).first()``) in the loop line -> (``name[x]``, ``x``)."""
    found = _single_get(code, model_name)
    if found is None:
        return None, None
    source, suffix, start, end, keyword = found
    inner = ast.get_source_segment(source, keyword.value)
    return _splice(source, suffix, start, end, f"{name}[{inner}]"), inner


def refetch_access(code: str, model: type) -> str | None:
    """``article = ArticlePage.objects.get(id=page.id)`` -> ``article = page``: the loop's row is
    already the ``model`` row once the loop's queryset queries ``model``. Only for a load by the
    row's own key (``pk``, the primary key's name or attname, read off one name)."""
    found = _single_get(code, model.__name__)
    if found is None:
        return None
    source, suffix, start, end, keyword = found
    value = keyword.value
    keys = {"pk", model._meta.pk.name, model._meta.pk.attname}
    for parent in model._meta.get_parent_list():
        keys |= {parent._meta.pk.name, parent._meta.pk.attname}
    if keyword.arg not in keys or not (isinstance(value, ast.Attribute) and value.attr in keys
                                       and isinstance(value.value, ast.Name)):
        return None
    return _splice(source, suffix, start, end, value.value.id)


def _single_get(code: str, model_name: str) -> tuple[str, str, int, int, ast.keyword] | None:
    """(source, parse suffix, start, end, keyword) of ``Model.objects.get(key=x)`` (or
    ``.filter(key=x).first()``) on a line: the span of the chain giving one object, and its one filter."""
    text = code.strip()
    tree, suffix = _parse(text)
    if tree is None:
        return None
    chain = _manager_of(tree, model_name)
    if chain is None:
        return None
    parents = _parent_map(tree)
    node: ast.expr = chain
    keyword = None
    single = False  # the chain ends in .get() / .first(): one object
    while True:
        parent = parents.get(id(node))
        if isinstance(parent, ast.Attribute) and parent.value is node:
            node = parent
        elif isinstance(parent, ast.Call) and parent.func is node:
            if isinstance(node, ast.Attribute) and node.attr in ("get", "filter") and len(parent.keywords) == 1:
                keyword = parent.keywords[0]
            elif isinstance(node, ast.Attribute) and node.attr not in ("all", "first", "using"):
                return None  # values(), select_related()...: not the plain object
            node = parent
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "first"):
                single = True
                break
        else:
            break
    if keyword is None or not single:
        return None  # list(Model.objects.filter(pk=x)) is a list, not one object
    return text + suffix, suffix, chain.value.col_offset, node.end_col_offset, keyword


@dataclass
class Write:
    """The same INSERT / UPDATE / DELETE run once per row from one call site."""

    verb: str  # "INSERT" | "UPDATE" | "DELETE"
    model: type
    fields: list[str] = field(default_factory=list)  # fields the save() calls changed (against the loaded values)
    same: dict = field(default_factory=dict)  # field -> the one value every save wrote
    deltas: dict = field(default_factory=dict)  # field -> the one increment every save wrote
    factors: dict = field(default_factory=dict)  # field -> the one exact factor every save applied
    unread: bool = False  # some sampled save() changes could not be read (or were expressions)
    unchanged: bool = False  # every save was compared with its loaded values and none changed a field


def advise_write(write: Write) -> Advice:
    """One statement for the whole loop: ``update()``, ``bulk_update()``, ``bulk_create()``, ``delete()``."""
    manager = manager_expr(write.model)
    name = write.model.__name__
    if write.verb == "INSERT":
        return Advice("bulk_create", {
            "fix": f"{manager}.bulk_create(objs)  # objs = [{name}(...) for each row], instead of one create()/save() per row",
        }, after_queries=1, note=(
            f"One INSERT per row into {write.model._meta.label}: build the objects in the loop and save them "
            "with one bulk_create() after it (save() and the pre_save/post_save signals are not called)."))
    if write.verb == "DELETE":
        return Advice("delete", {"fix": ".delete()", "queryset": f"{manager}.filter(pk__in=ids).delete()"},
                      after_queries=1, note=(
                          f"One delete() per row of {write.model._meta.label}: call delete() once on the queryset the "
                          "loop iterates (cascades are collected once for all rows; Model.delete() overrides are not called)."))
    if write.unchanged:
        return Advice(None, note=(
            f"save() runs one UPDATE per row of {write.model._meta.label}, and in this request none of them "
            "changed a value: skip the save() when nothing changed (or the loop, if it only saves)."))
    if not write.fields or write.unread:
        return Advice(None, note=(
            f"save() runs one UPDATE per row of {write.model._meta.label}; which fields it changes could not be "
            "read, so no bulk_update() field list is offered."))
    computed = {}
    for fname in write.fields:
        if fname in write.same and python_literal(write.same[fname]) is not None:
            computed[fname] = python_literal(write.same[fname])
        elif fname in write.deltas and python_literal(abs(write.deltas[fname])) is not None:
            delta = write.deltas[fname]
            computed[fname] = f'F("{fname}") {"+" if delta >= 0 else "-"} {python_literal(abs(delta))}'
        elif fname in write.factors and python_literal(write.factors[fname]) is not None:
            computed[fname] = f'F("{fname}") * {python_literal(write.factors[fname])}'
        else:
            break
    else:
        call = ".update(" + ", ".join(f"{k}={v}" for k, v in computed.items()) + ")"
        fields = ", ".join(_quote(f) for f in write.fields)
        snippets = {"fix": call, "queryset": f"{manager}.filter(...){call}",
                    "bulk": f"{manager}.bulk_update(objs, [{fields}])  # if the new values differ per row"}
        imports = (["from django.db.models import F"] if any("F(" in v for v in computed.values()) else []) + (
            literal_imports(call))
        if imports:
            snippets["import"] = "\n".join(imports)
        return Advice("update", snippets, after_queries=1, note=(
            "Every save() of the loop wrote the same value (or the same increment to the value it read): one "
            "update() on the queryset the loop iterates replaces them (save(), auto_now and signals are not run)."))
    fields = ", ".join(_quote(f) for f in write.fields)
    return Advice("bulk_update", {
        "fix": f"{manager}.bulk_update(objs, [{fields}])  # after the loop, instead of save() per row",
    }, after_queries=1, note=(
        f"save() in the loop writes each row of {write.model._meta.label} with its own UPDATE: change the objects "
        "in the loop and write the changed fields once with bulk_update() (save() and signals are not called)."))


def _advise_generic(relation: Relation, origin_code: str | None) -> Advice:
    """``end.termination.device``: a generic FK, anywhere in the path, followed by relations of
    what it points to (``cables -> terminations -> termination -> device``).

    ``GenericPrefetch`` (Django 5.0+) on the lookup up to the generic FK
    (``"terminations__termination"``) takes one queryset per content type: every type seen in
    this request, each with the ``select_related`` (or ``prefetch_related``) of the hops after
    the generic FK when that type has them, as is otherwise. The plain
    ``prefetch_related("terminations__termination__device")`` is the other candidate: it raises
    as soon as one target lacks ``device``, and it runs one more statement per hop after the
    generic FK when they could be joined. The candidate expected to run fewer statements goes
    first (the plain one on a tie: it is shorter); the replay decides.
    """
    index = next(i for i, h in enumerate(relation.hops) if h.kind == "generic_fk")
    rest = relation.hops[index + 1:]
    followed = rest[0].model
    rest_lookup = "__".join(h.accessor for h in rest)
    method = "select_related" if all(h.single for h in rest) else "prefetch_related"
    if not validate_lookup(followed, rest_lookup, method):
        return Advice(None, note=f"{method}({rest_lookup!r}) did not validate on {followed.__name__}.")
    seen = set(relation.generic_models) | {followed}
    following = {m for m in seen if validate_lookup(m, rest_lookup, method)}
    # Types that have the hops first, then by name: every finding of one loop writes the same text.
    models = sorted(seen, key=lambda m: (m not in following, m.__name__))
    querysets = [f'{manager_expr(m)}.{method}("{rest_lookup}")' if m in following else f"{manager_expr(m)}.all()"
                 for m in models]
    generic_lookup = "__".join(relation.path[: index + 1])
    prefetch = f'GenericPrefetch("{generic_lookup}", [{", ".join(querysets)}])'
    fix = f".prefetch_related({prefetch})"
    snippets = {"fix": fix, "queryset": f"{manager_expr(relation.model)}{fix}",
                "import": "from django.contrib.contenttypes.prefetch import GenericPrefetch"}
    if origin_code:
        after = rewrite_line(origin_code, relation.model.__name__, "prefetch_related", None, [], raw_args=[prefetch])
        if after and after != origin_code.strip():
            snippets["line"] = after
    note = None
    if len(models) == 1:
        note = (f"Only {followed.__name__} targets were seen in this request; add a queryset per other content "
                "type the generic key can point to.")
    # Statements once fixed: a prefetch per level before the generic FK, then per content type
    # one for the objects and, unless joined, one per hop after it.
    rest_levels = 0 if method == "select_related" else len(rest)
    generic = Advice("GenericPrefetch", snippets, after_queries=index + len(models) * (1 + rest_levels), note=note)
    if relation.root is not None:
        _supersede(generic, relation.root, prefetch, origin_code, relation.model.__name__, generic_lookup)
    plain_fix = f'.prefetch_related("{relation.lookup}")'
    plain = Advice("prefetch_related", {"fix": plain_fix, "queryset": f"{manager_expr(relation.model)}{plain_fix}"},
                   after_queries=index + len(models) + len(rest))
    if origin_code:
        after = rewrite_line(origin_code, relation.model.__name__, "prefetch_related", relation.lookup, [])
        if after and after != origin_code.strip():
            plain.snippets["line"] = after
    if generic.after_queries < plain.after_queries:
        generic.fallbacks = [plain]
        return generic
    plain.fallbacks = [generic]
    return plain


def _bulk_snippet(relation: Relation, origin_code: str | None) -> str | None:
    """For hand-written per-row queries: the one-query rewrite they mirror."""
    last = relation.last
    if last is None or len(relation.path) != 1 or last.target is None:
        return None
    parents = _assigned_name(origin_code) if origin_code else None
    if last.kind == "reverse_fk":
        return f"{manager_expr(last.target)}.filter({last.field.name}__in={parents or '[...]'})"
    if last.single:
        return f"{manager_expr(last.target)}.in_bulk([...])"
    return None


def _assigned_name(code: str) -> str | None:
    tree, _ = _parse(code.strip())
    statement = tree.body[0] if tree is not None and tree.body else None
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
        return statement.targets[0].id
    return None


def _advise_lookup(relation: Relation, origin_code: str | None, callsite_code: str | None = None) -> Advice:
    hops = relation.hops
    lookup = relation.lookup
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
    if relation.via_sql:
        bulk = _bulk_snippet(relation, origin_code)
        if bulk:
            snippets["bulk"] = bulk
        # The loop queries by hand: the prefetch serves it only once the loop reads the
        # relation. That rewrite of the loop line is part of the fix (and of its proof).
        access = rewrite_hand_written(callsite_code, relation) if callsite_code else None
        if access:
            snippets["access"] = access
    levels = 0 if method == "select_related" else prefetch_levels(hops)
    return Advice(method, snippets, after_queries=levels)


def rewrite_hand_written(code: str, relation: Relation) -> str | None:
    """``Pizza.objects.filter(order_id=order.id)`` -> ``order.pizzas.all()``;
    ``Customer.objects.get(pk=order.customer_id)`` -> ``order.customer``.

    Only a query on the relation's own key and nothing else is rewritten: anything more
    (other filters, ordering) would change what the loop reads.
    """
    last = relation.last
    if last is None or len(relation.path) != 1 or last.target is None:
        return None
    text = code.strip()
    tree, suffix = _parse(text)
    if tree is None:
        return None
    source = text + suffix
    parents = _parent_map(tree)
    field = last.field
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and len(node.keywords) == 1
                and not node.args and isinstance(node.func.value, ast.Attribute)
                and _names_model(node.func.value.value, last.target.__name__)):
            continue
        parent = parents.get(id(node))
        if isinstance(parent, ast.Attribute) and parent.value is node:
            continue  # more is chained on: not a plain relation read
        keyword, value = node.keywords[0].arg, node.keywords[0].value
        owner = None
        if last.kind == "reverse_fk" and node.func.attr == "filter":
            if keyword in (field.attname, f"{field.name}_id", f"{field.name}__pk", f"{field.name}__id"):
                if isinstance(value, ast.Attribute) and value.attr in ("id", "pk"):
                    owner = value.value
            elif keyword == field.name:
                owner = value
            replacement = f".{last.accessor}.all()"
        elif last.single and node.func.attr == "get" and keyword in ("pk", "id"):
            if isinstance(value, ast.Attribute) and value.attr == field.attname:
                owner = value.value
            replacement = f".{last.accessor}"
        if owner is None:
            continue
        owner_text = ast.get_source_segment(source, owner) or ""
        return _splice(source, suffix, node.col_offset, node.end_col_offset, owner_text + replacement)
    return None


def nested_prefetch(model: type, fix: str) -> str | None:
    """The fix with ``"pizzas__category"`` lookups turned into nested ``Prefetch`` objects.

    ``Prefetch("pizzas", queryset=Pizza.objects.select_related("category"))``: when every hop
    after the first multi-valued one is single-valued, the prefetched level joins them itself,
    one query fewer per level. None when no lookup qualifies (or two share the prefetched level).
    """
    calls = fix_calls(fix)
    if calls is None:
        return None
    changed = False
    parts = []
    for method, args, kwargs in calls:
        if method == "prefetch_related":
            lookups = [_string_arg(a) for a in args]
            heads = [lookup.split("__")[0] for lookup in lookups if lookup]
            rebuilt = []
            for source, lookup in zip(args, lookups):
                nested = _nest(model, lookup) if lookup and heads.count(lookup.split("__")[0]) == 1 else None
                rebuilt.append(nested or source)
                changed |= nested is not None
            args = rebuilt
        parts.append(f".{method}({', '.join(args + kwargs)})")
    return "".join(parts) if changed else None


def _nest(model: type, lookup: str) -> str | None:
    hops = describe_path(model, lookup.split("__"))
    if not hops:
        return None
    first_many = next((i for i, hop in enumerate(hops) if not hop.single), None)
    if first_many is None or first_many == len(hops) - 1 or hops[first_many].target is None:
        return None
    tail = hops[first_many + 1:]
    if not all(h.single for h in tail) or hops[first_many].kind == "generic_relation":
        return None
    head = "__".join(h.accessor for h in hops[: first_many + 1])
    inner = "__".join(h.accessor for h in tail)
    target = hops[first_many].target
    if not validate_lookup(target, inner, "select_related"):
        return None
    return f'Prefetch("{head}", queryset={manager_expr(target)}.select_related("{inner}"))'


def prefetch_levels(hops) -> int:
    """Statements a prefetch still runs: one per level from the first multi-valued hop on
    (single-valued levels after it are prefetched too; before it they are joined)."""
    first_many = next((i for i, hop in enumerate(hops) if not hop.single), len(hops))
    return len(hops) - first_many


def _existing_lookups(root: Any, method: str) -> list[str]:
    if method == "prefetch_related":
        out = []
        for item in root.prefetch_lookups:
            out.append(item.prefetch_to if isinstance(item, Prefetch) else str(item))
        return out
    selected = root.select_related
    if isinstance(selected, dict):
        return list(flatten_select_related(selected))
    return []


def flatten_select_related(tree: dict, prefix: str = ""):
    """``{"customer": {"loyalty_card": {}}}`` -> ``"customer__loyalty_card"`` (leaves only)."""
    for key, sub in tree.items():
        path = f"{prefix}__{key}" if prefix else key
        if sub:
            yield from flatten_select_related(sub, path)
        else:
            yield path


def _advise_deferred(relation: Relation, origin_code: str | None) -> Advice:
    """A deferred field read per row: load it with the rows (``only()`` gains the field path,
    ``defer()`` loses it). A field of a ``select_related`` object is named by its path
    (``only("author__id", "author__username")``); a field of objects a ``Prefetch`` loaded is
    loaded by that Prefetch's queryset (:func:`_advise_deferred_prefetched`)."""
    root = relation.root
    name = "__".join(relation.path)
    prefix = relation.path[:-1]
    if root is None:
        return Advice(None, note=f"{name!r} was deferred when its instances were loaded.")
    prefetched = _loading_prefetch(root, prefix)
    if prefetched is not None:
        return _advise_deferred_prefetched(relation, origin_code, *prefetched)
    if prefix and not (all(h.single for h in relation.hops[:-1]) and _selected(root.select_related, prefix)):
        return Advice(None, note=(
            f"{name!r} was deferred on objects that were not joined with select_related, so the loop's "
            "queryset cannot load it; load the field where those objects are queried."))
    method, args = _deferred_args(root.deferred, name)
    call = _deferred_call(method, args)
    snippets = {"fix": call, "queryset": f"{manager_expr(relation.model)}{call}"}
    if origin_code:
        after = rewrite_line(origin_code, relation.model.__name__, method, None, [], replace_args=args)
        if after and after != origin_code.strip():
            snippets["line"] = after
    # The fix replaces the queryset's defer() arguments, where defer() on the replayed query
    # would add to them: the proof clears them first. only() replaces by itself.
    proof_call = (call if call == ".defer(None)" else f".defer(None){call}") if method == "defer" else None
    return Advice(method, snippets, after_queries=0, proof_call=proof_call)


def _deferred_args(deferred: tuple, name: str) -> tuple[str, list[str]]:
    """(``"only"`` or ``"defer"``, its new arguments) so that ``name`` is loaded too."""
    names, defer = deferred
    if defer:
        return "defer", sorted(n for n in names if n != name)
    return "only", sorted(set(names) | {name})


def _deferred_call(method: str, args: list[str]) -> str:
    if method == "defer" and not args:
        return ".defer(None)"
    return f'.{method}({", ".join(_quote(n) for n in args)})'


def _loading_prefetch(root: Any, prefix: tuple[str, ...]) -> tuple[Prefetch, tuple[str, ...]] | None:
    """The root's ``Prefetch`` whose queryset loaded the objects at ``prefix`` (the longest one
    that ends there or before, the rest joined by its ``select_related``), and that rest."""
    found = None
    for lookup in root.prefetch_lookups:
        if not isinstance(lookup, Prefetch) or lookup.queryset is None:
            continue
        # A to_attr list is tagged with the relation's own path (prefetch_through).
        to = tuple(lookup.prefetch_through.split("__"))
        if prefix[: len(to)] == to and (found is None or len(to) > len(found[1])):
            found = (lookup, to)
    if found is None:
        return None
    return found[0], prefix[len(found[1]):]


def _advise_deferred_prefetched(relation: Relation, origin_code: str | None, prefetch: Prefetch,
                                rest: tuple[str, ...]) -> Advice:
    """``Prefetch("comments", queryset=Comment.objects.only("id", "post"))`` and ``comment.body``
    read per comment: the Prefetch's queryset gains ``body`` in its ``only()`` (or loses it from
    its ``defer()``). The new Prefetch replaces the old one: the origin line is rewritten in
    place, and the proof drops the old lookup before adding the new one (both on one queryset
    raise "lookup was already seen with a different queryset")."""
    field = relation.path[-1]
    queryset = prefetch.queryset
    model = queryset.model
    hops = describe_path(model, rest + (field,))
    relative = "__".join(rest + (field,))
    where = f'the queryset of Prefetch("{prefetch.prefetch_through}")'
    query = queryset.__dict__.get("_query")
    if not hops or query is None or queryset.__dict__.get("_deferred_filter") is not None or \
            not (all(h.single for h in hops[:-1]) and _selected(query.select_related, rest)):
        return Advice(None, note=(f"{relative!r} was deferred by {where}, which does not load it with its rows; "
                                  "load the field there."))
    method, args = _deferred_args(query.deferred_loading, relative)
    by_hand = (f"{relative!r} was deferred by {where}: "
               + ("add it to that queryset's only()." if method == "only" else "remove it from that queryset's defer()."))
    if prefetch.to_attr:
        # The loop reads the to_attr list, which the replay's walk of the relation would not.
        return Advice(None, note=by_hand)
    expression = _plain_queryset(queryset, method, args)
    if expression is None:
        # Filters or a custom queryset a line of text written from a manager would lose.
        return Advice(None, note=by_hand)
    new = f'Prefetch({_quote(prefetch.prefetch_through)}, queryset={expression})'
    fix = f".prefetch_related({new})"
    snippets = {"fix": fix, "queryset": f"{manager_expr(relation.model)}{fix}"}
    line = _rewrite_prefetch_queryset(origin_code, prefetch.prefetch_through, model.__name__, method, args) \
        if origin_code else None
    if line:
        snippets["line"] = line
    note = (f"{relative!r} is read from objects loaded by {where}, which deferred it: that Prefetch's queryset "
            f"loads it ({fix} replaces it; the same Prefetch twice on one queryset raises).")
    proof_call, bindings = _replacing(relation.root, lambda lookup: lookup is prefetch, new)
    return Advice("Prefetch", snippets, after_queries=0, note=note, proof_call=proof_call, bindings=bindings)


def _replacing(root: Any, superseded: Any, new: str) -> tuple[str | None, dict]:
    """The proof's call for a lookup that takes the place of one of the root's own (the first
    that ``superseded`` accepts): Django skips (or refuses) a second lookup to the same place,
    so the replay drops the root's lookups and adds them back with the new one where the old
    one was, as the rewritten line has them. (None, {}) when nothing is superseded."""
    lookups = list(root.prefetch_lookups)
    at = next((i for i, lookup in enumerate(lookups) if superseded(lookup)), None)
    if at is None:
        return None, {}
    return (f".prefetch_related(None).prefetch_related(*kept_before, {new}, *kept_after)",
            {"kept_before": tuple(lookups[:at]), "kept_after": tuple(lookups[at + 1:])})


def _supersede(advice: Advice, root: Any, prefetch: str, origin_code: str | None, model_name: str,
               lookup: str) -> None:
    """A ``GenericPrefetch`` on a lookup the root prefetches already as is (``"terminations__termination"``):
    Django would skip the second one, so it takes the old one's place, in the line and in the proof."""
    def plain(item: Any) -> bool:
        if isinstance(item, Prefetch):
            return item.prefetch_to == lookup and item.queryset is None and not getattr(item, "querysets", None)
        return item == lookup

    advice.proof_call, advice.bindings = _replacing(root, plain, prefetch)
    if advice.proof_call is None:
        return
    advice.snippets.pop("line", None)
    if origin_code:
        after = rewrite_line(origin_code, model_name, "prefetch_related", None, [], raw_args=[prefetch],
                             replaces=lookup)
        if after and not _plain_lookup_left(after, lookup):
            advice.snippets["line"] = after
    replaced = f'prefetch_related("{lookup}")'
    advice.note = ((advice.note + " ") if advice.note else "") + (
        f"It replaces the queryset's {replaced}: a second prefetch of the same lookup is skipped.")


def _plain_lookup_left(code: str, lookup: str) -> bool:
    """Whether ``lookup`` is still passed as a plain string anywhere but to a Prefetch in ``code``."""
    tree, _suffix = _parse(code.strip())
    if tree is None:
        return True
    named = {id(node.args[0]) for node in ast.walk(tree)
             if isinstance(node, ast.Call) and node.args and _called_name(node.func) in ("Prefetch", "GenericPrefetch")}
    return any(isinstance(node, ast.Constant) and node.value == lookup and id(node) not in named
               for node in ast.walk(tree))


def _plain_queryset(queryset: Any, method: str, args: list[str]) -> str | None:
    """``Comment.objects.select_related("post").only(...)``: the Prefetch's queryset written
    from a manager, with the new ``only()``/``defer()``, when it compiles to the same SQL as the
    project's queryset with them (nothing else in it a line of text would lose); else None."""
    model = queryset.model
    try:
        expected = (queryset.only(*args) if method == "only" else queryset.defer(None).defer(*args)).query
        expected_sql = expected.sql_with_params()
    except (FieldError, FieldDoesNotExist, ValueError, TypeError):
        return None
    if queryset._prefetch_related_lookups:
        return None
    selected = queryset.query.select_related
    select_call = ""
    if selected is True:
        select_call = ".select_related()"
    elif isinstance(selected, dict) and selected:
        select_call = f'.select_related({", ".join(_quote(p) for p in flatten_select_related(selected))})'
    call = _deferred_call(method, args) if args or method == "defer" else ""
    for manager in model._meta.managers:
        candidate = manager.all()
        if select_call:
            candidate = candidate.select_related(*(() if selected is True else flatten_select_related(selected)))
        candidate = candidate.only(*args) if method == "only" else candidate.defer(*args) if args else candidate
        try:
            same = candidate.query.sql_with_params() == expected_sql
        except (FieldError, FieldDoesNotExist, ValueError, TypeError):
            continue
        if same:
            text = f"{model.__name__}.{manager.name}{select_call}{'' if call == '.defer(None)' else call}"
            return text if text.endswith(")") else f"{text}.all()"
    return None


def _rewrite_prefetch_queryset(code: str, through: str, model_name: str, method: str, args: list[str]) -> str | None:
    """The origin line with the ``queryset=`` of its ``Prefetch(through, ...)`` given the new
    ``only()``/``defer()`` arguments (the rest of that queryset, and of the line, as written)."""
    text = code.strip()
    tree, suffix = _parse(text)
    if tree is None:
        return None
    source = text + suffix
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _called_name(node.func) == "Prefetch" and node.args
                and isinstance(node.args[0], ast.Constant) and node.args[0].value == through):
            continue
        value = next((k.value for k in node.keywords if k.arg == "queryset"), node.args[1] if len(node.args) > 1 else None)
        segment = ast.get_source_segment(source, value) if value is not None else None
        if not segment or f".{method}(" not in segment:
            return None  # the deferral was not written here: nothing to change in this line
        rewritten = _without_call(segment, method) if method == "defer" and not args else \
            rewrite_line(segment, model_name, method, None, [], replace_args=args)
        if rewritten is None or rewritten == segment:
            return None
        return _splice(source, suffix, value.col_offset, value.end_col_offset, rewritten)
    return None


def _without_call(expression: str, method: str) -> str | None:
    """``Comment.objects.defer("body")`` -> ``Comment.objects.all()``: the call dropped from the chain."""
    tree, suffix = _parse(expression)
    if tree is None or suffix or not tree.body or not isinstance(tree.body[0], ast.Expr):
        return None
    node = next((n for n in ast.walk(tree.body[0].value) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Attribute) and n.func.attr == method), None)
    if node is None:
        return None
    kept = _splice(expression, "", node.func.value.end_col_offset, node.end_col_offset, "")
    return kept if kept.endswith(")") else f"{kept}.all()"


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _selected(select_related: Any, path: tuple[str, ...]) -> bool:
    """``path`` is joined by the queryset's ``select_related`` (``True``: every non-null FK)."""
    if select_related is True:
        return True
    tree = select_related
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


# --------------------------------------------------------------------------- line rewriting


def rewrite_line(code: str, model_name: str, method: str, lookup: str | None,
                 existing: list[str], replace_args: list[str] | None = None,
                 raw_args: list[str] | None = None, replaces: str | None = None) -> str | None:
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
    source = text + suffix
    existing_call = _call_in_chain(chain, method)
    if existing_call is not None and raw_args:
        if method == "prefetch_related":
            # A plain lookup the new Prefetch supersedes goes (it would load the relation twice).
            kept = [a for a in existing_call.args
                    if not (replaces and isinstance(a, ast.Constant) and a.value == replaces)]
            raw_args = [ast.get_source_segment(source, a) or "" for a in kept] + raw_args
        else:
            existing_call = None  # e.g. a second annotate() composes with the user's own
    if existing_call is not None:
        args = replace_args if replace_args is not None else _merge_args(existing_call, lookup, existing)
        if args is None:
            return None
        rendered = "(" + ", ".join(raw_args or [_quote(a) for a in args]) + ")"
        return _splice(source, suffix, existing_call.func.end_col_offset, existing_call.end_col_offset, rendered)
    args = replace_args if replace_args is not None else [lookup]
    rendered = f".{method}(" + ", ".join(raw_args or [_quote(a) for a in args]) + ")"
    return _splice(source, suffix, chain.end_col_offset, chain.end_col_offset, rendered)


def _splice(source: str, suffix: str, start: int, end: int, insert: str) -> str:
    """``source`` with bytes ``start:end`` replaced (ast offsets count UTF-8 bytes), without
    the ``suffix`` that was added only to make the line parse."""
    encoded = source.encode()
    result = (encoded[:start] + insert.encode() + encoded[end:]).decode()
    return result[: len(result) - len(suffix)] if suffix else result


def _parent_map(tree: ast.AST) -> dict[int, ast.AST]:
    return {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _quote(value: str) -> str:
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')


def _parse(text: str) -> tuple[ast.AST | None, str]:
    for suffix in ("", " pass", ")"):
        try:
            return ast.parse(text + suffix), suffix
        except SyntaxError:
            continue
    return None, ""


# Calls that turn a queryset into something else (an instance, a number, an iterator, a
# dict): a queryset method can never be chained after them, so a fix goes before.
TERMINAL_CALLS = frozenset({
    "first", "last", "get", "earliest", "latest", "iterator", "count", "exists", "aggregate", "in_bulk",
    "afirst", "alast", "aget", "aearliest", "alatest", "acount", "aexists", "aaggregate", "ain_bulk",
    "update", "delete", "get_or_create", "update_or_create", "create", "explain", "contains",
})
# Builtins that consume a queryset: the fix goes on their argument.
CONSUMERS = frozenset({"list", "tuple", "set", "sorted", "len", "next", "iter", "bool", "reversed", "any", "all"})


def _find_chain(tree: ast.AST, model_name: str) -> ast.expr | None:
    """The queryset-producing part of the origin line's expression, or None.

    Starts at ``Model.<manager>`` (or, without one, at the value of the line's assignment,
    return or ``for``), climbs through chained queryset calls and stops before any terminal
    call (``.first()``, ``.iterator()``, ``.count()``...), subscript or consumer.
    """
    parents = _parent_map(tree)
    start = _manager_of(tree, model_name)
    if start is None:
        for node in ast.walk(tree):
            value = getattr(node, "value", None) if isinstance(node, (ast.Assign, ast.AnnAssign, ast.Return)) else None
            if isinstance(node, ast.For):
                value = node.iter
            if isinstance(value, (ast.Call, ast.Await, ast.Subscript)):
                return _queryset_part(value)
        return None
    node: ast.expr = start
    while True:
        parent = parents.get(id(node))
        if isinstance(parent, ast.Call) and parent.func is node:
            node = parent
        elif isinstance(parent, ast.Attribute) and parent.value is node and parent.attr not in TERMINAL_CALLS:
            grand = parents.get(id(parent))
            if isinstance(grand, ast.Call) and grand.func is parent:
                node = grand
            else:
                return node
        else:
            return node


def _queryset_part(node: ast.expr) -> ast.expr | None:
    """Strip consumers and terminal calls: ``list(qs.iterator())`` -> ``qs``."""
    while True:
        if isinstance(node, ast.Await):
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CONSUMERS:
            if not node.args:
                return None
            node = node.args[0]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in TERMINAL_CALLS:
            node = node.func.value
        elif isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice):
            node = node.value  # qs[0] is an instance: the fix goes on qs
        else:
            return node if isinstance(node, (ast.Call, ast.Attribute, ast.Subscript)) else None


def _manager_of(tree: ast.AST, model_name: str) -> ast.Attribute | None:
    """The first ``Model.<manager>`` attribute on a line (``Order.objects``), or None."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _names_model(node.value, model_name):
            return node
    return None


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


# --------------------------------------------------------------------------- Prefetch / annotate


def render_call(call: Call, callsite_code: str | None) -> tuple[Call, dict[str, Any]]:
    """The loop's filters as the user wrote them, never as values taken from the query.

    A keyword written with a literal on the loop's line keeps that literal (it is the user's
    own code); one written with a variable keeps the variable's name; anything else becomes a
    placeholder name. Names are bound to this request's values for the replay proof only.
    """
    written = _keyword_sources(callsite_code) if callsite_code else {}
    bindings: dict[str, Any] = {}

    def text(key: str, value: Any) -> str:
        source = written.get(key.split("__")[0] if key not in written else key)
        if source is not None:
            kind, code = source
            if kind == "literal":
                return code
            if kind == "name":
                bindings[code] = value
                return code
        name = f"{key.replace('__', '_')}_value"
        bindings[name] = value
        return name

    rendered = replace(
        call,
        filters=tuple((k, text(k, v), v) for k, _source, v in call.filters),
        excludes=tuple((k, text(k, v), v) for k, _source, v in call.excludes),
    )
    return rendered, bindings


def _keyword_sources(code: str) -> dict[str, tuple[str, str]]:
    """keyword -> ("literal" | "name" | "expression", source) of the calls on a line."""
    tree, suffix = _parse(code.strip())
    if tree is None:
        return {}
    source = code.strip() + suffix
    found: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg is None:
                continue
            segment = ast.get_source_segment(source, keyword.value) or ""
            try:
                ast.literal_eval(keyword.value)
                kind = "literal"
            except (ValueError, SyntaxError, TypeError):
                kind = "name" if isinstance(keyword.value, ast.Name) else "expression"
            found.setdefault(keyword.arg, (kind, segment))
    return found


def _prefetch_queryset_expr(target: type, call: Any) -> str:
    expr = manager_expr(target)
    if call.filters:
        expr += ".filter(" + ", ".join(f"{k}={v}" for k, v, _ in call.filters) + ")"
    if call.excludes:
        expr += ".exclude(" + ", ".join(f"{k}={v}" for k, v, _ in call.excludes) + ")"
    if call.order_by:
        expr += ".order_by(" + ", ".join(_quote(o) for o in call.order_by) + ")"
    if expr == manager_expr(target):
        expr += ".all()"  # a manager is not a queryset: it cannot be sliced
    if call.low or call.high is not None:
        expr += f"[{call.low or ''}:{'' if call.high is None else call.high}]"
    return expr


def _filters_valid(model: type, triples: tuple, order_by: tuple[str, ...] = ()) -> bool:
    """The ORM resolves every filter name and value."""
    from django.db.models.sql.query import Query

    for key, _source, value in triples:
        try:
            Query(model).build_filter((key, value))
        except (FieldError, FieldDoesNotExist):
            return False
        except (ValueError, TypeError):
            pass  # the name resolved; the placeholder value was the problem
    if order_by:
        try:
            model._base_manager.order_by(*order_by).query.get_compiler(DEFAULT_DB_ALIAS).as_sql()
        except (FieldError, FieldDoesNotExist):
            return False
    return True


def _identifier(value: Any) -> str | None:
    if isinstance(value, str):
        slug = "".join(ch if ch.isalnum() else "_" for ch in value.lower()).strip("_")
        return slug if slug.isidentifier() and len(slug) <= 20 else None
    return None


def to_attr_name(accessor: str, call: Any, parent_model: type) -> str:
    """A readable attribute name for ``Prefetch(to_attr=...)`` that clashes with nothing."""
    parts: list[str] = []
    # Values make the name only where the user wrote them as literals: a value that came from
    # a variable (a request parameter) must not leak into the snippet through the name.
    for key, source, value in call.filters:
        field_name = key.split("__")[0]
        written = source == python_literal(value)
        if value is True and written:
            parts.append(field_name)
        elif value is False and written:
            parts.append(f"non_{field_name}")
        elif "__" not in key and written and _identifier(value):
            parts.append(_identifier(value))
    for key, source, value in call.excludes:
        written = source == python_literal(value)
        parts.append(f"non_{(_identifier(value) if written else None) or key.split('__')[0]}")
    if call.high is not None:
        parts.insert(0, f"first_{call.high - (call.low or 0)}")
    elif call.order_by and not parts:
        parts.append("ordered")
    name = "_".join(parts + [accessor]) if parts else f"filtered_{accessor}"
    while hasattr(parent_model, name):
        name = f"prefetched_{name}"
    return name


def _advise_prefetch_object(relation: Relation, origin_code: str | None, callsite_code: str | None) -> Advice:
    call = relation.call
    last = relation.last
    accessor = relation.path[-1]
    if relation.calls_vary:
        return Advice(None, note=(
            f"The loop filters {last.label} with values that change from one {last.model.__name__} to "
            "the next, so a single Prefetch queryset cannot express it: prefetch the whole relation "
            f'(prefetch_related("{relation.lookup}")) and filter in Python, or restructure the query.'
        ))
    if last.target is None or not validate_lookup(relation.model, relation.lookup, "prefetch_related"):
        return Advice(None, note=relation.note)
    if call.unreadable:
        return Advice(None, note=(
            f"The loop's filter on {last.label} uses {call.unreadable}, which cannot be rebuilt exactly: "
            f'write it into Prefetch("{relation.lookup}", queryset={manager_expr(last.target)}.filter(...), '
            'to_attr=...) by hand and read the to_attr list in the loop.'))
    to_attr = to_attr_name(accessor, call, last.model)
    queryset = _prefetch_queryset_expr(last.target, call)
    if not _filters_valid(last.target, call.filters + call.excludes, call.order_by):
        return Advice(None, note="The loop's filter did not validate against the models.")
    prefetch = f'Prefetch("{relation.lookup}", queryset={queryset}, to_attr="{to_attr}")'
    fix = f".prefetch_related({prefetch})"
    snippets = {"fix": fix, "queryset": f"{manager_expr(relation.model)}{fix}",
                "import": "from django.db.models import Prefetch"}
    if origin_code:
        after = rewrite_line(origin_code, relation.model.__name__, "prefetch_related", None, [],
                             raw_args=[prefetch], replaces=relation.lookup)
        if after and after != origin_code.strip():
            snippets["line"] = after
    access = rewrite_access(callsite_code, accessor, to_attr, as_list=True) if callsite_code else None
    if not access:
        # The read is not on a line we can rewrite (library code reads .all()[0], .first()):
        # a to_attr list would never be read, so only the plain prefetch can serve it.
        plain = _advise_lookup(relation, origin_code)
        plain.note = (f"The loop reads {last.label} in code that cannot be changed to read a Prefetch(to_attr=...) "
                      "list, so the plain prefetch that serves its own read is the candidate.")
        return plain
    snippets["access"] = access
    levels = prefetch_levels(relation.hops)
    return Advice("Prefetch", snippets, after_queries=levels, to_attr=to_attr)


def _query_name(hop: Any) -> str:
    """The name that reaches the hop's target in ORM lookups (Count("...") / filter(...__x))."""
    if hop.kind in ("reverse_fk", "reverse_m2m"):
        return hop.field.related_query_name()
    return hop.accessor


def _back_name(hop: Any) -> str | None:
    """The lookup from the hop's target back to the instance (for Exists(... OuterRef("pk")))."""
    if hop.kind in ("reverse_fk", "reverse_m2m"):
        return hop.field.name
    if hop.kind == "m2m":
        return hop.field.related_query_name()
    return None


def _advise_annotate(relation: Relation, origin_code: str | None, callsite_code: str | None,
                     bindings: dict[str, Any] | None = None) -> Advice:
    last = relation.last
    call = relation.call
    # exists() adds LIMIT 1 and drops ordering itself: only filters come from the loop.
    sliced = relation.aggregate != "exists" and call is not None and (call.order_by or call.high is not None)
    if relation.calls_vary or (call is not None and (call.unreadable or sliced)):
        return Advice(None, note=(
            f"{last.label} is aggregated per row with filters that cannot be moved into one annotation; "
            f'prefetch_related("{relation.lookup}") and aggregate in Python.'
        ))
    owner = last.model
    accessor = relation.path[-1]
    base = accessor[:-4] if accessor.endswith("_set") else accessor
    filters = call.filters if call else ()
    excludes = call.excludes if call else ()
    built = _annotation_text(relation, base, filters, excludes)
    if isinstance(built, str):
        return Advice(None, note=built)
    name, expression_text, imports = built
    while hasattr(owner, name):
        name = f"num_{name}"
    # What is validated is the snippet itself, evaluated: the two cannot drift apart.
    try:
        namespace = {**_annotation_namespace(last.target), **(bindings or {})}
        expression = eval(expression_text, namespace)  # noqa: S307 (our own text)
        owner._base_manager.annotate(**{name: expression}).query.get_compiler(DEFAULT_DB_ALIAS).as_sql()
    except (FieldError, FieldDoesNotExist, ValueError, TypeError, NameError, SyntaxError) as exc:
        return Advice(None, note=f"annotate() did not validate: {exc}")
    annotate = f".annotate({name}={expression_text})"
    prefix = relation.path[:-1]
    if prefix:
        # The counted relation hangs off a prefetched level: annotate that level's queryset.
        inner_lookup = "__".join(prefix)
        fix = f'.prefetch_related(Prefetch("{inner_lookup}", queryset={manager_expr(owner)}{annotate}))'
        imports.append("Prefetch")
    else:
        fix = annotate
    import_lines = [f"from django.db.models import {', '.join(sorted(set(imports)))}"]
    import_lines += literal_imports(expression_text)
    snippets = {"fix": fix, "queryset": f"{manager_expr(relation.model)}{fix}", "import": "\n".join(import_lines)}
    if origin_code and not prefix:
        after = rewrite_line(origin_code, relation.model.__name__, "annotate", None, [],
                             raw_args=[f"{name}={expression_text}"])
        if after and after != origin_code.strip():
            snippets["line"] = after
    access = rewrite_access(callsite_code, accessor, name) if callsite_code else None
    if access:
        snippets["access"] = access
    return Advice("annotate", snippets, after_queries=len(prefix), annotation=name)


_AGGREGATE_NAMES = {"count": "Count", "sum": "Sum", "avg": "Avg", "min": "Min", "max": "Max"}


def _annotation_text(relation: Relation, base: str, filters: tuple, excludes: tuple) -> tuple[str, str, list[str]] | str:
    """(annotation name, expression source, names to import), or why none can be written."""
    last = relation.last
    if relation.aggregate == "exists":
        back = _back_name(last)
        if back is None or last.target is None:
            return f"Exists() cannot be built for a {last.kind.replace('_', ' ')}."
        inner = f'{manager_expr(last.target)}.filter({back}=OuterRef("pk")'
        inner += "".join(f", {k}={v}" for k, v, _ in filters) + ")"
        inner += "".join(f".exclude({k}={v})" for k, v, _ in excludes)
        return f"has_{base}", f"Exists({inner})", ["Exists", "OuterRef"]
    function = _AGGREGATE_NAMES[relation.aggregate]
    query_name = _query_name(last)
    column = relation.aggregate_column
    counted = relation.aggregate == "count" or not column
    target = query_name if counted else f"{query_name}__{_field_name(last.target, column)}"
    name = f"{base}_count" if relation.aggregate == "count" else f"{base}_{column or 'value'}_{relation.aggregate}"
    imports = [function]
    conditions = [f"Q({query_name}__{k}={v})" for k, v, _ in filters]
    conditions += [f"~Q({query_name}__{k}={v})" for k, v, _ in excludes]
    if conditions:
        imports.append("Q")
        return name, f'{function}("{target}", filter={" & ".join(conditions)})', imports
    return name, f'{function}("{target}")', imports


def _annotation_namespace(target: type | None) -> dict[str, Any]:
    import datetime
    from decimal import Decimal

    from django.db import models

    namespace: dict[str, Any] = {
        name: getattr(models, name) for name in ("Avg", "Count", "Exists", "Max", "Min", "OuterRef", "Q", "Sum")
    }
    namespace.update(Decimal=Decimal, datetime=datetime, __builtins__={})
    if target is not None:
        namespace[target.__name__] = target
    return namespace


def _field_name(model: type | None, column: str) -> str:
    if model is not None:
        for candidate in model._meta.concrete_fields:
            if candidate.column == column:
                return candidate.name
    return column


_MANAGER_CALLS = frozenset({"all", "filter", "exclude", "order_by", "count", "exists", "aggregate", "first", "last"})


def rewrite_access(code: str, accessor: str, new_name: str, as_list: bool = False) -> str | None:
    """The loop's access line reading the prefetched/annotated attribute instead.

    ``as_list``: the attribute is a ``Prefetch(to_attr=...)`` list, so what the manager call
    returned must stay the same type: ``.first()`` becomes ``next(iter(...), None)``,
    ``.count()`` ``len(...)``, ``.exists()`` ``bool(...)``, ``[0]`` stays an index; filters,
    ordering and slices are already in the Prefetch queryset.
    """
    text = code.strip()
    if text.startswith(("{{", "{%")):
        return _rewrite_template_access(text, accessor, new_name, as_list)
    tree, suffix = _parse(text)
    if tree is None:
        return None
    parents = _parent_map(tree)
    source = text + suffix
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr == accessor):
            continue
        top: ast.expr = node
        terminal = None
        index = None
        while True:
            parent = parents.get(id(top))
            if isinstance(parent, ast.Attribute) and parent.value is top and parent.attr in _MANAGER_CALLS:
                grand = parents.get(id(parent))
                if isinstance(grand, ast.Call) and grand.func is parent:
                    top, terminal = grand, parent.attr
                    continue
            if isinstance(parent, ast.Subscript) and parent.value is top:
                top = parent
                if not isinstance(parent.slice, ast.Slice):
                    index, terminal = "[0]", None
                continue
            break
        owner = ast.get_source_segment(source, node.value) or ""
        attribute = f"{owner}.{new_name}"
        if not as_list:
            replacement = attribute
        elif terminal == "first":
            replacement = f"next(iter({attribute}), None)"
        elif terminal == "last":
            replacement = f"({attribute}[-1] if {attribute} else None)"
        elif terminal == "count":
            replacement = f"len({attribute})"
        elif terminal == "exists":
            replacement = f"bool({attribute})"
        elif terminal == "aggregate":
            return None
        else:
            replacement = attribute + (index or "")
        return _splice(source, suffix, node.value.col_offset, top.end_col_offset, replacement)
    return None


def _rewrite_template_access(text: str, accessor: str, new_name: str, as_list: bool) -> str | None:
    pattern = re.compile(r"\.%s(?:\.(all|count|exists|first))?\b" % re.escape(accessor))

    if as_list and re.search(r"\.%s\.last\b" % re.escape(accessor), text):
        return None  # a list has no .last in a template, and a filter cannot be followed by .attr

    def replace(match: re.Match) -> str:
        if not as_list:
            return "." + new_name
        return "." + new_name + {"count": "|length", "first": ".0"}.get(match.group(1) or "", "")

    new, count = pattern.subn(replace, text)
    return new if count else None


# --------------------------------------------------------------------------- Django admin


def _advise_admin(relation: Relation, advice: Advice) -> Advice:
    """Move the fix onto the ModelAdmin whose changelist built the queryset."""
    model_admin = relation.model_admin
    cls = type(model_admin)
    snippets = dict(advice.snippets)
    snippets.pop("line", None)
    snippets.pop("queryset", None)
    if advice.method == "select_related":
        existing = model_admin.list_select_related
        current = [str(x) for x in existing] if isinstance(existing, (list, tuple)) else []
        merged = [x for x in current if not relation.lookup.startswith(x + "__") and x != relation.lookup]
        merged.append(relation.lookup)
        snippets["fix"] = "list_select_related = [" + ", ".join(_quote(x) for x in merged) + "]"
        method = "list_select_related"
    else:
        call = advice.snippets["fix"]
        snippets["fix"] = (
            "def get_queryset(self, request):\n"
            f"    return super().get_queryset(request){call}"
        )
        method = advice.method
    note = f"The queryset comes from the admin changelist of {cls.__name__}: put the fix on that ModelAdmin."
    return Advice(method, snippets, after_queries=advice.after_queries, note=note, origin=admin_frame(cls),
                  to_attr=advice.to_attr, annotation=advice.annotation, proof_call=advice.snippets["fix"])


def admin_frame(cls: type) -> dict | None:
    import inspect

    try:
        lines, start = inspect.getsourcelines(cls)
        filename = inspect.getsourcefile(cls)
    except (OSError, TypeError):
        return None
    offset = next((i for i, line in enumerate(lines) if line.lstrip().startswith("class ")), 0)
    return {"filename": filename, "lineno": start + offset, "function": cls.__name__,
            "code": lines[offset].strip(), "template": False}


# --------------------------------------------------------------------------- unused eager loading


def remove_lookup(code: str, model_name: str, method: str, lookup: str, keep: str | None) -> str | None:
    """The origin line without ``lookup`` in its ``method(...)`` call (``keep`` replaces it)."""
    text = code.strip()
    tree, suffix = _parse(text)
    if tree is None:
        return None
    chain = _find_chain(tree, model_name)
    call = _call_in_chain(chain, method) if chain is not None else None
    if call is None:
        return None
    source = text + suffix
    args = [ast.get_source_segment(source, a) or "" for a in call.args]
    values = [a.value if isinstance(a, ast.Constant) else None for a in call.args]
    if lookup not in values:
        return None
    kept = [arg for arg, value in zip(args, values) if value != lookup]
    if keep:
        kept.append(_quote(keep))
    if kept:
        return _splice(source, suffix, call.func.end_col_offset, call.end_col_offset, "(" + ", ".join(kept) + ")")
    # Called straight on the manager (Pet.objects.prefetch_related("x")): Pet.objects.all(), not
    # the bare manager, which is not a queryset.
    receiver = call.func.value
    on_manager = isinstance(receiver, ast.Attribute) and _names_model(receiver.value, model_name)
    return _splice(source, suffix, receiver.end_col_offset, call.end_col_offset, ".all()" if on_manager else "")


def advise_unused(model: type, method: str, lookup: str, used: tuple[str, ...], origin_code: str | None) -> dict[str, str]:
    """Snippets to drop an eager load nobody read (or shorten it to the part that was read)."""
    keep = "__".join(used) if used else None
    line = remove_lookup(origin_code, model.__name__, method, lookup, keep) if origin_code else None
    if keep:
        fix = f'# replace "{lookup}" with "{keep}" in .{method}(...)'
    else:
        fix = f'# remove "{lookup}" from .{method}(...)'
    snippets = {"fix": line or fix}
    if line:
        snippets["line"] = line
    return snippets


# --------------------------------------------------------------------------- one fix per root queryset

_COMBINE_ORDER = ("select_related", "prefetch_related", "annotate", "only", "defer")


def fix_calls(fix: str) -> list[tuple[str, list[str], list[str]]] | None:
    """``.select_related("a").prefetch_related(Prefetch(...))`` -> [(method, [arg sources], [kwarg sources])]."""
    try:
        tree = ast.parse("qs" + fix, mode="eval")
    except SyntaxError:
        return None
    source = "qs" + fix
    calls: list[tuple[str, list[str], list[str]]] = []
    node: Any = tree.body
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        args = [ast.get_source_segment(source, a) or "" for a in node.args]
        kwargs = [f"{k.arg}={ast.get_source_segment(source, k.value)}" for k in node.keywords if k.arg]
        calls.append((node.func.attr, args, kwargs))
        node = node.func.value
    if not (isinstance(node, ast.Name) and node.id == "qs"):
        return None
    return list(reversed(calls))


def _string_arg(source: str) -> str | None:
    try:
        value = ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) else None


def _merge_lookups(sources: list[str]) -> list[str]:
    """Dedupe lookups; a plain lookup that a longer one (``a`` in ``a__b``) covers is dropped."""
    strings = [_string_arg(s) for s in sources]
    kept: list[str] = []
    for source, value in zip(sources, strings):
        if value is not None and any(
            other is not None and other != value and other.startswith(value + "__") for other in strings
        ):
            continue
        if source not in kept:
            kept.append(source)
    return kept


def combine_fixes(fixes: list[str]) -> str | None:
    """One queryset call chain that applies every fix (None when they cannot be merged)."""
    merged: dict[str, tuple[list[str], list[str]]] = {}
    for fix in fixes:
        calls = fix_calls(fix)
        if calls is None:
            return None
        for method, args, kwargs in calls:
            if method not in _COMBINE_ORDER:
                return None
            entry = merged.setdefault(method, ([], []))
            entry[0].extend(args)
            entry[1].extend(k for k in kwargs if k not in entry[1])
    if "only" in merged and "defer" in merged:
        return None
    parts = []
    for method in _COMBINE_ORDER:
        if method not in merged:
            continue
        args, kwargs = merged[method]
        args = _merge_lookups(args) if method in ("select_related", "prefetch_related", "only", "defer") else args
        parts.append(f".{method}({', '.join(args + kwargs)})")
    return "".join(parts)


def place_line(place: Place, model: type | None, fix: str) -> str | None:
    """A proven queryset call written out at a class attribute of the project's view:
    ``queryset = Thread.objects.order_by("title").select_related("author")`` for its
    ``queryset =`` line, or ``queryset = ...`` added below ``model = Thread`` (kept: other code of
    the class may read it)."""
    if place.frame is None or model is None or not fix.startswith("."):
        return None
    if place.attr == "queryset":
        return fix_line(place.frame.code, model.__name__, fix)
    return f"{place.frame.code}\nqueryset = {manager_expr(model)}{fix}"


def fix_line(origin_code: str, model_name: str, fix: str) -> str | None:
    """The origin line with every call of ``fix`` applied (before any terminal call)."""
    calls = fix_calls(fix)
    if calls is None:
        return None
    line = origin_code.strip()
    for method, args, kwargs in calls:
        rewritten = rewrite_line(line, model_name, method, None, [], raw_args=args + kwargs)
        if rewritten is None:
            return None
        line = rewritten
    return line if line != origin_code.strip() else None


# --------------------------------------------------------------------------- duplicates


_TEMPLATE_LITERAL = re.compile(r"""^(?:"[^"]*"|'[^']*'|-?\d+(?:\.\d+)?|True|False|None)$""")


def advise_template_repeat(stack: list[dict]) -> tuple[dict[str, str], str] | None:
    """A template tag or filter that ran the same query for every row of a ``{% for %}``, with
    the same arguments: compute it once before the loop (``{% tag ... as name %}`` for a simple
    tag, ``{% with name=... %}`` for a filter), read the variable inside it.

    ``stack`` is a finding's tidied stack, innermost first. None when the repeat is not a tag or
    filter inside a Django template loop, or when its arguments read the loop's variables.
    """
    frames = [frame for frame in stack if frame.get("template")]
    if not frames:
        return None
    node = frames[0]
    loop = next((f for f in frames[1:] if f.get("function") == "ForNode" and f.get("filename") == node.get("filename")),
                None)
    code = (node.get("code") or "").strip()
    if loop is None or node.get("function") not in ("SimpleNode", "VariableNode"):
        return None
    loop_vars = _loop_variables(loop.get("code") or "")
    if loop_vars is None:
        return None
    where_loop = f"{loop['code']} ({loop['filename']}:{loop['lineno']})"
    if node["function"] == "SimpleNode":
        bits = list(smart_split(code[2:-2].strip()))
        if len(bits) >= 3 and bits[-2] == "as":
            args, target = bits[1:-2], bits[-1]
        else:
            args, target = bits[1:], None
        if not bits or _reads_any(args, loop_vars):
            return None
        if target is not None:
            return {"fix": code}, (
                f"{code} ran the same query for every row of {where_loop}, with the same arguments: move it "
                f"above the loop; {{{{ {target} }}}} keeps working inside it. A template change: not replayed.")
        name = _variable_name(bits[0], args)
        before = "{% " + " ".join([*bits, "as", name]) + " %}"
        return {"fix": before, "in_loop": "{{ " + name + " }}"}, (
            f"{code} ran the same query for every row of {where_loop}, with the same arguments: compute it once "
            f"above the loop ({before}) and use {{{{ {name} }}}} inside it. A template change: not replayed.")
    expression = code[2:-2].strip()
    parts = expression.split("|")
    if len(parts) < 2 or _reads_any([expression], loop_vars):
        return None
    name = _variable_name(parts[-1].split(":")[0], [parts[0]])
    before = "{% with " + f"{name}={expression}" + " %}"
    return {"fix": before, "in_loop": "{{ " + name + " }}"}, (
        f"{code} ran the same query for every row of {where_loop}, with the same value: compute it once in "
        f"{before} around the loop (closed by {{% endwith %}} after {{% endfor %}}) and use {{{{ {name} }}}} "
        "inside it. A template change: not replayed.")


def _loop_variables(code: str) -> set[str] | None:
    """``{% for a, b in rows %}`` -> {"a", "b", "forloop"}."""
    bits = code.strip()[2:-2].split()
    if len(bits) < 4 or bits[0] != "for" or "in" not in bits:
        return None
    names = " ".join(bits[1:bits.index("in")]).replace(",", " ").split()
    return {*names, "forloop"}


def _reads_any(expressions: list[str], names: set[str]) -> bool:
    """Whether a template expression reads one of ``names`` (its variables and filter arguments)."""
    for expression in expressions:
        for piece in re.split(r"[|:=]", expression):
            piece = piece.strip()
            if not piece or _TEMPLATE_LITERAL.match(piece):
                continue
            if piece.split(".")[0] in names:
                return True
    return False


def _variable_name(tag: str, args: list[str]) -> str:
    words = [tag, *(arg.strip("'\"").split("=")[-1].strip("'\"") for arg in args)]
    name = re.sub(r"\W+", "_", "_".join(words)).strip("_").lower()[:40] or "value"
    return name if name[0].isalpha() else f"v_{name}"


def advise_admin_choices(forms: list[tuple[type, str, int]]) -> tuple[dict[str, str], str] | None:
    """Admin forms that each rendered the same choices of a relation (one query per form of an
    inline): one evaluated choice list for the page, kept on the request by the admin's own
    ``formfield_for_foreignkey`` / ``formfield_for_manytomany`` hook; or no list at all
    (``raw_id_fields``, ``autocomplete_fields`` when the related model's admin has ``search_fields``).

    ``forms`` are (the project's ModelAdmin or inline class, field name, statements), most first.
    """
    if not forms:
        return None
    admin, name, count = forms[0]
    field = _admin_relation(admin, name)
    if field is None:
        return None
    hook = "formfield_for_foreignkey" if field.many_to_one else "formfield_for_manytomany"
    cached = f"_{name}_choices"
    snippets = {"fix": "\n".join([
        f"# in {admin.__name__}",
        f"def {hook}(self, db_field, request, **kwargs):",
        f"    formfield = super().{hook}(db_field, request, **kwargs)",
        f'    if db_field.name == "{name}":  # one choice list for every form of the page',
        f'        if not hasattr(request, "{cached}"):',
        f"            request.{cached} = list(formfield.choices)",
        f"        formfield.choices = request.{cached}",
        "    return formfield",
    ])}
    snippets["raw_id_fields"] = f"raw_id_fields = {python_literal([*getattr(admin, 'raw_id_fields', ()), name])}"
    related_admin = registered_admin(field.related_model)
    if related_admin is not None and getattr(related_admin, "search_fields", None):
        snippets["autocomplete_fields"] = (
            f"autocomplete_fields = {python_literal([*getattr(admin, 'autocomplete_fields', ()), name])}")
    also = ", ".join(f"{cls.__name__} ({n})" for cls, _name, n in forms[1:])
    merge = (f" {admin.__name__} has its own {hook}: add the `if` block to it." if hook in vars(admin) else "")
    note = (f"Every form of {admin.__name__} loaded the choices of {name!r} again ({count} queries"
            + (f"; also {also}" if also else "") + f"). The {hook} override loads them once for the page and "
            f"gives every form the same list.{merge} Or show no list: `{snippets['raw_id_fields']}` (an id box; "
            "each form then looks up its own selected row)"
            + (f", `{snippets['autocomplete_fields']}` (a search box)" if "autocomplete_fields" in snippets else "")
            + ". Admin options: not replayed.")
    return snippets, note


def advise_full_count(model_admin: Any, project_class: bool, registered_here: bool) -> tuple[dict[str, str], str]:
    """The changelist's second ``COUNT`` (the full count beside filtered results): off on the
    project's ModelAdmin; by the registration's options where the project's own
    ``admin.site.register(...)`` line registers the model (with Django's ModelAdmin or a
    library's class); else (a library registers it) a subclass registered in its place."""
    from django.contrib import admin

    name, model = type(model_admin).__name__, model_admin.model.__name__
    note = ("Django admin's changelist ran the same COUNT twice: the page's count, and the full count "
            "shown beside filtered results (show_full_result_count, on by default). ")
    after = "; a filtered page then offers \"Show all\" instead of the total. Admin options: not replayed."
    if project_class:
        return {"fix": "show_full_result_count = False"}, note + (
            f"`show_full_result_count = False` on {name} skips the second" + after)
    if registered_here:
        default = type(model_admin) is admin.ModelAdmin
        fix = (f"admin.site.register({model}, show_full_result_count=False)" if default
               else f"admin.site.register({model}, {name}, show_full_result_count=False)")
        registered = "Django's default ModelAdmin" if default else name
        return {"fix": fix}, note + (
            f"{model} is registered with {registered} on your line: `{fix}` (taken out of any list that "
            "registers it now) skips the second" + after)
    return {"fix": f"# admin.site.unregister({model}), then register your own subclass of {name} "
                   "with show_full_result_count = False"}, note + (
        f"{name} is not the project's and your project does not register {model}: unregister it and register "
        f"a subclass of {name} with `show_full_result_count = False`, if the second count matters "
        f"(registering {model} again as it is raises AlreadyRegistered).")


def _admin_relation(admin: type, name: str) -> Any:
    """The foreign key or many-to-many field ``name`` of the admin's model, else None."""
    try:
        field = admin.model._meta.get_field(name)
    except (FieldDoesNotExist, AttributeError):
        return None
    return field if (field.many_to_one or field.many_to_many) and not field.auto_created else None


def advise_loop_invariant(path: str | None, lineno: int, model_name: str) -> tuple[dict[str, str], str] | None:
    """A queryset call that reads nothing of the loop around it (``Order.objects.count()`` on every
    pass of ``for status in STATUSES:``): computed once above the loop, read inside it.

    ``path``/``lineno`` are the project line that ran it; ``model_name`` the queried model. None
    when the line is not inside a loop of its function, when no ``<model_name>.<manager>...``
    call is found on it, or when that call reads a name the loop binds or assigns.
    """
    parsed = source_tree(path) if path else None
    if parsed is None:
        return None
    source, tree = parsed
    loop = _innermost_loop(tree, lineno)
    if loop is None:
        return None
    statement = next((node for node in ast.walk(loop) if isinstance(node, ast.stmt)
                      and not isinstance(node, (ast.For, ast.AsyncFor, ast.While, ast.If, ast.With, ast.Try))
                      and node.lineno <= lineno <= (node.end_lineno or node.lineno)), None)
    call = _model_call(statement, model_name) if statement is not None else None
    if call is None:
        return None
    bound = {n.id for n in ast.walk(loop) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))}
    if any(isinstance(n, ast.Name) and n.id in bound for n in ast.walk(call)):
        return None  # it reads the loop's variable or something the loop changes
    expression = ast.get_source_segment(source, call)
    header = source.splitlines()[loop.lineno - 1].strip()
    line = source.splitlines()[statement.lineno - 1]
    if expression is None or statement.lineno != statement.end_lineno or expression not in line:
        return None
    method = call.func.attr if isinstance(call.func, ast.Attribute) else "value"
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", model_name).lower() + ("_count" if method == "count" else f"_{method}")
    before = f"{name} = {expression}"
    inside = line.strip().replace(expression, name, 1)
    return {"fix": before, "in_loop": inside}, (
        f"{expression} runs the same query on every pass of `{header}` (line {loop.lineno}): it reads nothing "
        f"the loop changes. Compute it once above the loop (`{before}`) and use `{name}` inside it. "
        "Not replayed: a change of your loop.")


def _innermost_loop(tree: ast.AST, lineno: int) -> ast.AST | None:
    """The innermost ``for``/``while`` whose body holds ``lineno``."""
    found = None
    for node in ast.walk(tree):
        if loop_holds(node, lineno) and (found is None or node.lineno > found.lineno):
            found = node
    return found


def _model_call(statement: ast.AST, model_name: str) -> ast.Call | None:
    """The outermost call of a chain on ``<model_name>.<manager>`` in a statement."""
    for node in ast.walk(statement):
        if not isinstance(node, ast.Call):
            continue
        base = node.func
        while isinstance(base, (ast.Attribute, ast.Call, ast.Subscript)):
            base = base.func if isinstance(base, ast.Call) else base.value
        if isinstance(base, ast.Name) and base.id == model_name:
            return node
    return None


def advise_pass_it_in(frames: list[dict]) -> tuple[dict[str, str], str] | None:
    """The same lookup kept in a variable at the first call site and made again by helpers
    (``category = Category.objects.get(...)`` in the view, again in two helpers it calls): pass
    the variable to the helpers. None unless the first call site assigns one plain name and the
    others are other functions."""
    if len(frames) < 2 or any(f.get("template") for f in frames):
        return None
    match = re.match(r"^([A-Za-z_]\w*)\s*=\s*\S", (frames[0].get("code") or "").strip())
    helpers = list(dict.fromkeys(f["function"] for f in frames[1:] if f.get("function") != frames[0].get("function")))
    if match is None or not helpers:
        return None
    name = match.group(1)
    called = ", ".join(f"{h}()" for h in helpers)
    return {"fix": f"# pass {name} to {called} instead of loading it again there"}, (
        f"The first result is kept in `{name}` ({frames[0]['filename']}:{frames[0]['lineno']}); {called} "
        f"{'load' if len(helpers) > 1 else 'loads'} the same row again: give {'them' if len(helpers) > 1 else 'it'} `{name}` as an argument. "
        "Not replayed: a change of your functions.")


_CACHED_LOOKUPS = (({"app_label", "model"}, "get_by_natural_key"), ({"pk"}, "get_for_id"), ({"id"}, "get_for_id"))


def advise_content_type(code: str | None) -> tuple[dict[str, str], str] | None:
    """``ContentType.objects.get(app_label=..., model=...)`` (or ``pk=``) repeated: the manager's
    own cached lookups (``get_by_natural_key``, ``get_for_id``) read the database once per
    process, then memory. ``code`` is the call site's line; None when no such call is on it."""
    text = (code or "").strip()
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                and ast.unparse(node.func.value).endswith("ContentType.objects") and not node.args):
            continue
        given = {k.arg: k.value for k in node.keywords}
        for keys, method in _CACHED_LOOKUPS:
            if set(given) == keys:
                args = ", ".join(ast.unparse(given[k]) for k in (("app_label", "model") if len(keys) == 2 else keys))
                call = f"{ast.unparse(node.func.value)}.{method}({args})"
                line = text.replace(ast.get_source_segment(text, node) or "\0", call, 1)
                if line == text:
                    return None
                return {"fix": line}, (
                    f"ContentType.objects.{method}() answers from the content-type cache after its first query "
                    "(per process): the same lookup no longer reaches the database. Not replayed: a change of your line.")
    return None


BYPASSED = "The queryset already prefetches"  # how bypassed_prefetch's note begins


def bypassed_prefetch(relation: Relation) -> str | None:
    """The root prefetches the relation already, but the loop reads it through ``filter()``,
    ``order_by()`` or a slice (``.first()``), which runs a query per row anyway: say so, with the
    read over the prefetched rows in Python (not replayed: a change to the loop's own code)."""
    root, call, last = relation.root, relation.call, relation.last
    if root is None or call is None or last is None or last.single or call.excludes or call.unreadable:
        return None
    if not (call.filters or call.order_by or call.high is not None):
        return None
    prefetched = {item.prefetch_through if isinstance(item, Prefetch) else str(item)
                  for item in root.prefetch_lookups if not getattr(item, "to_attr", None)}
    if relation.lookup not in prefetched:
        return None
    parent, item = last.model.__name__.lower(), (last.target.__name__.lower() if last.target else "obj")
    if item == parent:
        item = f"{item}_item"
    rows = f"{parent}.{relation.path[-1]}.all()"
    conditions = [f"{item}.{keyword} == {source}" for keyword, source, _value in call.filters if "__" not in keyword]
    if len(conditions) != len(call.filters):
        return None  # a lookup through a relation or a comparison: not written out here
    ordering = [field for field in call.order_by if field.lstrip("-") not in ("pk", "id")]
    if len(ordering) > 1:
        return None
    if ordering:
        field = ordering[0]
        reverse = ", reverse=True" if field.startswith("-") else ""
        rows = f"sorted({rows}, key=lambda {item}: {item}.{field.lstrip('-')}{reverse})"
    elif call.order_by and call.order_by[0].startswith("-"):
        rows = f"reversed({rows})"
    where = f" if {' and '.join(conditions)}" if conditions else ""
    if call.high == 1 and not call.low:
        read = f"next(({item} for {item} in {rows}{where}), None)"
    else:
        read = f"[{item} for {item} in {rows}{where}]"
        if call.low or call.high is not None:
            read += f"[{call.low or ''}:{'' if call.high is None else call.high}]"
    return (f"{BYPASSED} {relation.lookup!r}, but the loop reads it through "
            f"filter()/order_by()/a slice, which runs its own query per row anyway: read the prefetched rows "
            f"and pick in Python instead, e.g. `{read}` (not replayed: a change to your loop's code).")

