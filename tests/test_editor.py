"""Editor links: presets, patterns, and frames (Python files and templates) turned into URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.test import RequestFactory

from ddt_prefetch_panel import detect
from ddt_prefetch_panel.conf import get_config, setting_errors
from ddt_prefetch_panel.editor import PRESETS, editor_pattern, frame_path, frame_url, link_finding
from shop import views

ROOT = Path(settings.BASE_DIR)


@pytest.mark.parametrize("name", ["vscode", "pycharm", "sublime", "idea"])
def test_presets_by_name(name):
    assert editor_pattern(name) == PRESETS[name]
    assert setting_errors({"EDITOR_URL": name}) == []


def test_patterns_are_validated():
    assert setting_errors({"EDITOR_URL": "vscode://file/{path}:{line}"}) == []
    assert setting_errors({"EDITOR_URL": None}) == []
    [(code, message)] = setting_errors({"EDITOR_URL": "notepad"})
    assert code == "E001" and "{path}" in message
    [(code, message)] = setting_errors({"EDITOR_URL": "x://{path}:{column}"})
    assert "only {path} and {line}" in message
    [(code, message)] = setting_errors({"EDITOR_URL": 3})
    assert "must be str or NoneType" in message


def test_invalid_setting_falls_back_to_plain_text(settings):
    settings.DDT_PREFETCH_PANEL = {"EDITOR_URL": "notepad"}
    assert get_config()["EDITOR_URL"] is None


def test_python_frame_links_to_the_absolute_file():
    frame = {"filename": "demo/shop/views.py", "lineno": 66, "template": False}
    assert frame_url(frame, PRESETS["vscode"]) == f"vscode://file/{ROOT / 'demo/shop/views.py'}:66"
    assert frame_url(frame, PRESETS["pycharm"]) == f"pycharm://open?file={ROOT / 'demo/shop/views.py'}&line=66"
    assert frame_url(frame, None) is None
    assert frame_url({"filename": "nowhere.py", "lineno": 1}, PRESETS["vscode"]) is None


def test_template_frame_links_to_the_template_file():
    frame = {"filename": "shop/template_loop.html", "lineno": 12, "template": True}
    path = ROOT / "demo" / "shop" / "templates" / "shop" / "template_loop.html"
    assert frame_path(frame) == str(path)
    assert frame_url(frame, "idea") == frame_url(frame, editor_pattern("idea")) == f"idea://open?file={path}&line=12"
    assert frame_path({**frame, "abspath": "/elsewhere/t.html"}) == "/elsewhere/t.html"


def test_library_and_stdlib_frames_link_to_their_installed_file():
    """Exports hold no absolute path (``django/db/models/query.py`` with its distribution):
    links rebuild it from sys.path; patches and SARIF never look outside the project."""
    import sysconfig

    import django

    frame = {"filename": "django/db/models/query.py", "lineno": 3, "distribution": "Django",
             "version": django.__version__}
    installed = str(Path(django.__file__).parent / "db" / "models" / "query.py")
    assert frame_path(frame) == installed
    assert frame_url(frame, "vscode") == f"vscode://file/{installed}:3"
    assert frame_path(frame, libraries=False) is None
    stdlib = {"filename": "<python>/json/decoder.py", "lineno": 1}
    assert frame_path(stdlib) == str(Path(sysconfig.get_paths()["stdlib"]) / "json" / "decoder.py")
    assert frame_path(stdlib, libraries=False) is None
    assert frame_path({"filename": "nowhere/at_all.py", "lineno": 1}) is None


def test_paths_with_spaces_are_quoted(tmp_path):
    target = tmp_path / "my project" / "views.py"
    target.parent.mkdir()
    target.write_text("x = 1\n")
    url = frame_url({"filename": str(target), "lineno": 1}, PRESETS["vscode"])
    assert url == f"vscode://file/{str(target).replace(' ', '%20')}:1"


@pytest.mark.django_db
def test_every_frame_of_a_finding_gets_a_link(pizzeria):
    with detect() as report:
        views.template_loop_bad(RequestFactory().get("/")).content
    [finding] = [f.to_dict() for f in report.by_kind("n_plus_one")]
    linked = link_finding(finding, editor_pattern("vscode"))
    assert linked["callsite"]["editor_url"].endswith("/demo/shop/templates/shop/template_loop.html:12")
    assert linked["origin"]["editor_url"].endswith(f"/demo/shop/views.py:{finding['origin']['lineno']}")
    assert linked["defined_at"]["editor_url"].endswith(f"/demo/shop/models.py:{finding['defined_at']['lineno']}")
    assert all("editor_url" in frame for frame in linked["stack"])
    assert "editor_url" not in finding["callsite"]  # the stored data is left as it was
    assert link_finding(finding, None) is finding
