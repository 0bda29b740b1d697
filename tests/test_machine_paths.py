"""No machine paths (issue 19): every export and the panel show project files relative to
``BASE_DIR`` and library files by their import path (``ddtpp_fakelib/__init__.py``,
``django/views/generic/list.py``) with the distribution and its version, never an absolute
path or a site-packages directory, whether the virtualenv lies inside the project (as this
checkout's ``.venv`` does) or elsewhere.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import sys
import sysconfig
from pathlib import Path

import pytest
from django.template.loader import render_to_string

import tests.urls  # noqa: F401  (imports every framework module now, before any capture)
from ddt_prefetch_panel import detect
from ddt_prefetch_panel.findings import display_path, frame_location, where
from ddt_prefetch_panel.panel import PrefetchPanel, panel_context
from ddt_prefetch_panel.sarif import to_sarif
from ddt_prefetch_panel.session import aggregate, render
from ddt_prefetch_panel.testing import assert_no_n_plus_one
from tests.frameworks.catalog import exports
from tests.frameworks.catalog.seed import seed
from tests.frameworks.fakelib import ensure_installed

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def catalog(db):
    ensure_installed()
    seed(authors=4, books_per_author=3)


@pytest.fixture(params=["venv inside the project", "venv outside the project"])
def layout(request, settings, monkeypatch, tmp_path):
    """Where the virtualenv lies relative to the project root and the current directory."""
    if request.param == "venv outside the project":
        settings.BASE_DIR = ROOT / "tests"
        monkeypatch.chdir(tmp_path)
    return request.param


def machine_prefixes() -> list[str]:
    paths = {str(ROOT), os.getcwd(), sys.prefix, sys.base_prefix, sys.exec_prefix,
             *sysconfig.get_paths().values()}
    return sorted({p for p in paths if p and p != "/"}, key=len, reverse=True)


def strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings(k) + strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


ABSOLUTE = re.compile(r"(?:^|[\s`'\"(=])/(?:[\w.+-]+/)+[\w.+-]*")


def assert_no_machine_path(text: str, what: str, urls: bool = False) -> None:
    """``urls``: the text holds URL paths (``/static/...`` in HTML), so only this machine's
    directories are looked for, not every absolute-looking path."""
    assert "site-packages" not in text and "dist-packages" not in text, what
    for prefix in machine_prefixes():
        assert prefix not in text, (what, prefix)
    assert urls or not ABSOLUTE.search(text), (what, ABSOLUTE.search(text).group(0))


def assert_clean_data(data, what: str) -> None:
    for value in strings(data):
        assert not value.startswith("/"), (what, value)
        assert_no_machine_path(value, what)


def assert_everything_clean(report) -> None:
    data = json.loads(json.dumps(report.to_dict()))
    assert_clean_data(data, "to_dict")
    assert_no_machine_path(report.to_markdown(), "report Markdown")
    for finding in report.findings:
        assert_no_machine_path(finding.to_markdown(), "finding Markdown")
    assert_clean_data(to_sarif(data["findings"], fixes=data["fixes"]), "SARIF")
    session = aggregate([({"request_id": "r1", "url": "/", "method": "GET"}, data)])
    for fmt in ("md", "json", "sarif"):
        assert_no_machine_path(render(session, fmt), f"session {fmt}")
    context = panel_context({"report": data, "error": None})
    assert_no_machine_path(render_to_string(PrefetchPanel.template, context), "panel HTML", urls=True)


def test_a_library_origin_is_its_import_path_with_the_distribution(catalog, layout):
    with detect() as report:
        exports.export_everything()  # built and looped in ddtpp_fakelib
        exports.export_visible()  # built by the project, looped in ddtpp_fakelib
    library = next(f for f in report.findings if f.kind == "n_plus_one" and f.library)
    assert library.origin["filename"] == "ddtpp_fakelib/__init__.py"
    assert (library.origin["distribution"], library.origin["version"]) == ("ddtpp-fakelib", "1.0.0")
    project = next(f for f in report.findings if f.kind == "n_plus_one" and not f.library)
    assert "distribution" not in project.origin
    assert project.origin["filename"] == (
        "frameworks/catalog/exports.py" if layout == "venv outside the project" else "tests/frameworks/catalog/exports.py")
    place = f"ddtpp_fakelib/__init__.py:{library.origin['lineno']} (ddtpp-fakelib 1.0.0)"
    assert place in library.to_markdown()
    assert_everything_clean(report)
    # The panel still names the library the finding is folded under.
    context = panel_context({"report": report.to_dict(), "error": None})
    assert context["library_packages"] == ["ddtpp_fakelib"]
    with pytest.raises(AssertionError) as failure:
        with assert_no_n_plus_one(library=True):
            exports.export_everything()
    assert place in str(failure.value)
    assert_no_machine_path(str(failure.value), "test-mode message")


def test_a_generic_views_origin_and_a_serializers_loop_are_library_paths(client, catalog, layout):
    with detect() as report:
        assert client.get("/fw/generic/books/").status_code == 200
        assert client.get("/fw/api/books/", {"format": "json"}).status_code == 200
    by_origin = {f.origin["filename"]: f for f in report.findings if f.origin}
    generic = by_origin["django/views/generic/list.py"]
    assert generic.origin["distribution"] == "Django"
    assert generic.origin["version"] == importlib.metadata.version("Django")
    evaluated = [f.evaluated_at for f in report.findings if f.evaluated_at and f.evaluated_at.get("distribution")]
    assert "rest_framework/serializers.py" in {frame["filename"] for frame in evaluated}
    assert_everything_clean(report)


@pytest.mark.parametrize(
    ("filename", "shown"),
    [
        (str(ROOT / "demo" / "shop" / "views.py"), "demo/shop/views.py"),
        (importlib.metadata.distribution("Django").locate_file("django/db/models/query.py"),
         "django/db/models/query.py"),
        (str(Path(sysconfig.get_paths()["stdlib"]) / "json" / "decoder.py"), "<python>/json/decoder.py"),
        ("/nowhere/known/app/views.py", "…/views.py"),
        ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap>"),
        ("shop/views.py", "shop/views.py"),
    ],
)
def test_display_path_of_each_kind_of_file(filename, shown):
    assert display_path(str(filename)) == shown


def test_a_library_file_is_shown_with_its_distribution_and_version():
    location = frame_location(str(importlib.metadata.distribution("Django").locate_file("django/db/models/query.py")))
    version = importlib.metadata.version("Django")
    assert location == {"filename": "django/db/models/query.py", "distribution": "Django", "version": version}
    frame = {**location, "lineno": 7, "function": "f", "code": ""}
    assert where(frame) == f"django/db/models/query.py:7 (Django {version}) in f"
