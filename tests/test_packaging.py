"""The built wheel works on its own: templates and static files inside, panel renders.

In a source checkout the templates and static files live at the repository's top level and
the wheel moves them inside the package (pyproject's force-include), so only an installed
wheel proves users get them. The wheel goes into a fresh virtual environment (no system or
checkout packages), with the same Django, django-debug-toolbar and sqlglot versions as this
one, and a script run from an empty directory renders the panel for a real N+1.
"""

from __future__ import annotations

import html
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ASSETS = (
    "ddt_prefetch_panel/templates/ddt_prefetch_panel/panel.html",
    "ddt_prefetch_panel/static/ddt_prefetch_panel/panel.js",
    "ddt_prefetch_panel/static/ddt_prefetch_panel/panel.css",
)

RENDER_PANEL = textwrap.dedent(
    """
    import json

    import django
    from django.conf import settings

    settings.configure(
        DEBUG=True,
        SECRET_KEY="packaging-test",
        USE_TZ=True,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.staticfiles",
            "debug_toolbar",
            "ddt_prefetch_panel",
        ],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}],
        STATIC_URL="/static/",
    )
    django.setup()

    from django.contrib.auth.models import Group, User
    from django.contrib.staticfiles import finders
    from django.core.management import call_command
    from django.template.loader import get_template, render_to_string

    import ddt_prefetch_panel
    from ddt_prefetch_panel import detect
    from ddt_prefetch_panel.panel import panel_context

    call_command("migrate", verbosity=0)
    staff = Group.objects.create(name="staff")
    for name in ("ada", "alan", "grace"):
        User.objects.create(username=name).groups.add(staff)

    with detect() as report:
        for user in User.objects.all():
            list(user.groups.all())

    print(json.dumps({
        "module": ddt_prefetch_panel.__file__,
        "template": get_template("ddt_prefetch_panel/panel.html").origin.name,
        "js": finders.find("ddt_prefetch_panel/panel.js"),
        "css": finders.find("ddt_prefetch_panel/panel.css"),
        "findings": [[f.kind, f.relation, f.snippets.get("fix")] for f in report.findings],
        "html": render_to_string(
            "ddt_prefetch_panel/panel.html", panel_context({"report": report.to_dict(), "error": None})
        ),
    }))
    """
)


def run(*cmd: str | Path, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{result.stdout}\n{result.stderr}"
    return result


def build_wheel(outdir: Path) -> Path:
    cmd = [sys.executable, "-m", "build", "--wheel", "--outdir", outdir, ROOT]
    if importlib.util.find_spec("hatchling") is not None:
        cmd.append("--no-isolation")  # the backend is here already: no download, no temp env
    run(*cmd)
    [wheel] = outdir.glob("ddt_prefetch_panel-*.whl")
    return wheel


def test_wheel_installs_and_renders_the_panel(tmp_path):
    wheel = build_wheel(tmp_path / "dist")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [asset for asset in ASSETS if asset not in names]
    assert not missing, f"the wheel lacks {missing}; it holds {sorted(names)}"

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False, symlinks=True)
    python = env_dir / "bin" / "python"
    pins = [
        f"{dist}=={importlib.metadata.version(dist)}" for dist in ("Django", "django-debug-toolbar", "sqlglot")
    ]
    # This venv's pip installs into the new one (--python), which saves bootstrapping pip there.
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-input", wheel, *pins)

    workdir = tmp_path / "elsewhere"  # not the checkout: only the installed wheel is importable
    workdir.mkdir()
    script = workdir / "render_panel.py"
    script.write_text(RENDER_PANEL)
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DJANGO"))}
    result = run(python, "-I", script, cwd=workdir, env=clean_env)
    out = json.loads(result.stdout)

    site_packages = str(env_dir)
    for key in ("module", "template", "js", "css"):
        assert out[key] and out[key].startswith(site_packages), f"{key} comes from {out[key]}, not the new venv"
    assert "site-packages" in out["module"]

    assert out["findings"][0] == ["n_plus_one", "auth.User.groups", '.prefetch_related("groups")'], out["findings"]
    page = out["html"]
    assert "auth.User.groups" in page
    assert "prefetch_related(&quot;groups&quot;)" in page  # escaped by the template, once
    assert 'prefetch_related("groups")' in html.unescape(page)
    assert 'data-ddtpp-snippet="fix"' in page
    assert "ddt_prefetch_panel/panel.css" in page
