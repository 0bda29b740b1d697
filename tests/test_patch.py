"""Fixes as patches: ``git apply`` takes them, and the patched code runs a constant number of queries."""

from __future__ import annotations

import importlib.util
import itertools
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from ddt_prefetch_panel import detect
from ddt_prefetch_panel.patch import add_imports, finding_patch, report_patch
from shop import views

pytestmark = pytest.mark.django_db
_names = itertools.count()


def _git_apply(patch: str, cwd: Path) -> None:
    (cwd / "fix.patch").write_text(patch)
    for args in (["--check"], []):
        result = subprocess.run(["git", "apply", *args, "fix.patch"], cwd=cwd, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr + "\n" + patch


def _load(path: Path, package: str):
    """Import a patched copy of a module under a fresh name in ``package`` (relative imports work)."""
    name = f"{package}._patched_{next(_names)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_patched(project: Path, patch: str, tmp_path: Path, function: str) -> tuple[Any, int]:
    """Apply ``patch`` to a copy of ``project``, import the patched ``reports/loops.py`` and call
    ``function``: (what it returned, the statements it ran)."""
    copy = tmp_path / "copy"
    shutil.copytree(project, copy)
    _git_apply(patch, copy)
    fixed = _load(copy / "reports" / "loops.py", "shop")
    with CaptureQueriesContext(connection) as queries:
        result = getattr(fixed, function)()
    return result, len(queries)


def _queries(view, request) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = view(request)
        if hasattr(response, "render"):
            response.render()
    return len(queries)


def _n_plus_one(view, request) -> list[dict]:
    with detect() as report:
        view(request)
    return [f.to_dict() for f in report.by_kind("n_plus_one")]


@pytest.mark.parametrize(
    "view_name",
    ["forward_fk_bad", "reverse_fk_bad", "m2m_bad", "nested_bad", "template_loop_bad",
     "filtered_prefetch_bad", "count_per_row_bad", "o2o_bad"],
)
def test_demo_patch_applies_and_makes_the_query_count_constant(pizzeria, tmp_path, view_name):
    request = RequestFactory().get("/")
    bad = getattr(views, view_name)
    findings = _n_plus_one(bad, request)
    assert findings, "the bad page has an N+1"
    for finding in findings:
        patch = finding_patch(finding)
        assert patch is not None, finding["snippets"]
        assert patch.startswith("--- a/demo/shop/views.py\n+++ b/demo/shop/views.py\n")
    patch = report_patch(findings)

    copy = tmp_path / "project"
    shutil.copytree(Path(settings.BASE_DIR) / "demo", copy / "demo", ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    _git_apply(patch, copy)
    patched = getattr(_load(copy / "demo" / "shop" / "views.py", "shop"), view_name)

    assert _n_plus_one(patched, request) == []
    before = (_queries(bad, request), _queries(patched, request))
    for root in {apps.get_model(f["model"]) for f in findings}:
        pks = list(root.objects.order_by("pk").values_list("pk", flat=True))
        root.objects.filter(pk__in=pks[len(pks) // 2:]).delete()
    after = (_queries(bad, request), _queries(patched, request))
    assert before[0] != after[0], "the unpatched page's query count depends on the rows"
    assert before[1] == after[1], "the patched page's query count does not"


def test_patch_adds_the_import_the_fix_needs(pizzeria, tmp_path, settings):
    project = tmp_path / "project"
    (project / "reports").mkdir(parents=True)
    source = textwrap.dedent('''\
        """Vegetarian pizzas per order."""
        from shop.models import Order


        def vegetarian():
            names = []
            for order in Order.objects.order_by("pk"):
                names.append(sorted(p.name for p in order.pizzas.filter(vegetarian=True)))
            return names
        ''')
    (project / "reports" / "__init__.py").write_text("")
    (project / "reports" / "loops.py").write_text(source)
    settings.BASE_DIR = project
    module = _load(project / "reports" / "loops.py", "shop")
    with detect() as report:
        expected = module.vegetarian()
    finding = report.by_kind("n_plus_one")[0].to_dict()
    assert finding["method"] == "Prefetch"
    patch = finding_patch(finding)
    assert patch.startswith("--- a/reports/loops.py\n")
    assert "+from django.db.models import Prefetch\n" in patch
    assert "-from shop.models import Order\n+from shop.models import Order, Pizza\n" in patch

    assert _run_patched(project, patch, tmp_path, "vegetarian") == (expected, 2)


def test_stale_source_gives_no_patch(pizzeria):
    request = RequestFactory().get("/")
    finding = _n_plus_one(views.forward_fk_bad, request)[0]
    finding["origin"] = {**finding["origin"], "code": "orders = Order.objects.all()  # an older version"}
    finding["place"] = {**finding["place"], "code": "orders = Order.objects.all()  # an older version"}
    assert finding_patch(finding) is None


def test_failed_proof_gives_no_patch(pizzeria):
    finding = _n_plus_one(views.forward_fk_bad, RequestFactory().get("/"))[0]
    finding["proof"] = {"status": "failed", "before": 10, "after": 10, "rows": 10, "detail": "still repeats"}
    assert finding_patch(finding) is None


def test_report_patch_joins_fixes_in_one_diff(pizzeria, tmp_path):
    request = RequestFactory().get("/")
    findings = _n_plus_one(views.forward_fk_bad, request) + _n_plus_one(views.m2m_bad, request)
    patch = report_patch(findings * 2)  # the same fix twice is one edit
    assert patch.count("--- a/demo/shop/views.py") == 1
    assert [line.split(" = ")[0] for line in patch.splitlines() if line.startswith("+ ")] == ["+    orders", "+    pizzas"]
    copy = tmp_path / "project"
    shutil.copytree(Path(settings.BASE_DIR) / "demo", copy / "demo", ignore=shutil.ignore_patterns("__pycache__"))
    _git_apply(patch, copy)


@pytest.mark.parametrize(
    "source, statements, expected",
    [
        ("import os\n\nx = 1\n", ["from django.db.models import Prefetch"],
         "import os\nfrom django.db.models import Prefetch\n\nx = 1\n"),
        ("from django.db.models import Q  # filters\n", ["from django.db.models import Count, Q"],
         "from django.db.models import Q, Count  # filters\n"),
        ('"""Doc."""\nx = 1\n', ["from django.db.models import Exists, OuterRef"],
         '"""Doc."""\nfrom django.db.models import Exists, OuterRef\nx = 1\n'),
        ("from django.db.models import (\n    Q,\n)\n", ["from django.db.models import Q, Count"],
         "from django.db.models import (\n    Q,\n)\nfrom django.db.models import Count\n"),
        ("from django.db.models import Prefetch as P, Prefetch\n", ["from django.db.models import Prefetch"],
         "from django.db.models import Prefetch as P, Prefetch\n"),
    ],
)
def test_add_imports(source, statements, expected):
    assert add_imports(source, statements) == expected


def test_file_without_final_newline(tmp_path, settings):
    from ddt_prefetch_panel.patch import LineEdit, build_patch

    target = tmp_path / "mod.py"
    target.write_text("a = 1\nb = Order.objects.all()")
    patch = build_patch([LineEdit(str(target), 2, "b = Order.objects.all()", 'b = Order.objects.select_related("x")')],
                        {}, str(tmp_path))
    assert patch.endswith("\\ No newline at end of file\n")
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(target, copy / "mod.py")
    _git_apply(patch, copy)
    assert (copy / "mod.py").read_text() == 'a = 1\nb = Order.objects.select_related("x")'


def test_findings_carry_their_patch(pizzeria):
    """analyze() puts the diff in snippets["patch"]: the panel's "Copy as patch" and the JSON export."""
    finding = _n_plus_one(views.filtered_prefetch_bad, RequestFactory().get("/"))[0]
    assert finding["snippets"]["patch"] == finding_patch(finding)
    assert "+        rows.append((order.pk, _joined(p.name for p in order.vegetarian_pizzas)))\n" in finding["snippets"]["patch"]


def test_one_root_two_relations_patch_the_combined_fix(pizzeria, tmp_path, settings):
    project = tmp_path / "project"
    (project / "reports").mkdir(parents=True)
    (project / "reports" / "loops.py").write_text(textwrap.dedent('''\
        from shop.models import Order


        def rows():
            orders = Order.objects.order_by("pk")
            return [(order.customer.name, len(order.pizzas.all())) for order in orders]
        '''))
    settings.BASE_DIR = project
    module = _load(project / "reports" / "loops.py", "shop")
    with detect() as report:
        expected = module.rows()
    findings = [f.to_dict() for f in report.by_kind("n_plus_one")]
    assert {f["relation"] for f in findings} == {"shop.Order.customer", "shop.Order.pizzas"}
    assert {f["fix_id"] for f in findings} == {0} and report.fixes[0]["proof"]["status"] == "verified"
    patches = {f["snippets"]["patch"] for f in findings}
    assert patches == {report_patch(findings, fixes=report.fixes)}
    [patch] = patches
    assert '+    orders = Order.objects.order_by("pk").select_related("customer").prefetch_related("pizzas")\n' in patch

    assert _run_patched(project, patch, tmp_path, "rows") == (expected, 2)


def test_combined_fix_patch_carries_every_loop_line_it_changes(pizzeria, tmp_path, settings):
    project = tmp_path / "project"
    (project / "reports").mkdir(parents=True)
    (project / "reports" / "loops.py").write_text(textwrap.dedent('''\
        from shop.models import Order


        def rows():
            out = []
            for order in Order.objects.order_by("pk"):
                name = order.customer.name
                veggie = sorted(p.name for p in order.pizzas.filter(vegetarian=True))
                out.append((name, veggie))
            return out
        '''))
    settings.BASE_DIR = project
    module = _load(project / "reports" / "loops.py", "shop")
    with detect() as report:
        expected = module.rows()
    findings = [f.to_dict() for f in report.by_kind("n_plus_one")]
    assert len(findings) == 2 and {f["fix_id"] for f in findings} == {0}
    [patch] = {f["snippets"]["patch"] for f in findings}
    assert "+        veggie = sorted(p.name for p in order.vegetarian_pizzas)\n" in patch
    assert "+from django.db.models import Prefetch\n" in patch and "Pizza" in patch

    assert _run_patched(project, patch, tmp_path, "rows") == (expected, 2)


def test_patches_are_remembered_until_the_file_changes(tmp_path):
    """A page reloaded asks for the same patches (remembered); an edit to the file, even one
    keeping the edited line, gives a patch of the file as it is now."""
    import os

    from ddt_prefetch_panel.patch import LineEdit, build_patch

    target = tmp_path / "mod.py"
    target.write_text("a = 1\nb = Order.objects.all()\n")
    edit = [LineEdit(str(target), 2, "b = Order.objects.all()", 'b = Order.objects.select_related("x")')]
    first = build_patch(edit, {}, str(tmp_path))
    assert build_patch(edit, {}, str(tmp_path)) is first
    target.write_text("a = 2\nb = Order.objects.all()\n")
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = build_patch(edit, {}, str(tmp_path))
    assert second != first and "-a = 2" not in second and " a = 2" in second
