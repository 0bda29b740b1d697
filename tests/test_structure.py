"""The package's layering: every module imports alone, and the import graph has no cycle.

Each stage imports only the stages below it (frames -> capture -> hooks -> group -> relate ->
advise -> prove -> findings -> writes/bulk -> plans/unused -> analyze -> report/panel, and the
baselines on top of the exports), so a new maintainer can read them in order. Imports under
``if TYPE_CHECKING:`` are type hints only and are not edges (the stage modules name
``analyze.NPlusOne`` that way).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.halves import SQLITE_HALF_ONLY

PACKAGE = Path(__file__).resolve().parent.parent / "ddt_prefetch_panel"
NAME = "ddt_prefetch_panel"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Package modules ``module`` imports anywhere (functions included), type hints aside."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node)
            for n in ast.walk(node)}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    edges: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            edges |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                if candidate in known:
                    edges.add(candidate)
                elif base in known:
                    edges.add(base)
    edges.discard(module)
    edges.discard(NAME)  # the package itself: its __init__ imports nothing at import time
    return edges


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert f"{NAME}.capture" in graph and f"{NAME}.hooks" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_lower_stages_do_not_import_higher_ones():
    graph = import_graph()
    order = ["frames", "capture", "hooks", "group", "relate", "place", "advise", "findings", "writes", "bulk",
             "plans", "unused", "shared", "analyze", "lazy", "report", "baseline"]
    rank = {f"{NAME}.{name}": i for i, name in enumerate(order)}
    for module, targets in graph.items():
        for target in targets:
            if module in rank and target in rank:
                assert rank[target] < rank[module], f"{module} imports {target}, a later stage"


# Runs in a fresh interpreter that has imported Django but none of the package, then forks
# once per module: each child imports exactly one module first, as a user's code might.
_FORK_EACH = """
import importlib, os, sys, traceback
import django
from django.conf import settings
settings.INSTALLED_APPS  # configure from DJANGO_SETTINGS_MODULE, without django.setup()
failures = []
for module in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(module)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status:
        failures.append(module)
print("FAILED:" + ",".join(failures))
"""


@SQLITE_HALF_ONLY
def test_each_module_imports_alone_in_a_fresh_interpreter():
    root = PACKAGE.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "demo")]),
           "DJANGO_SETTINGS_MODULE": "tests.settings"}
    modules = sorted(_modules())
    result = subprocess.run([sys.executable, "-c", _FORK_EACH, *modules], cwd=root, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "FAILED:", result.stdout + result.stderr[-3000:]
