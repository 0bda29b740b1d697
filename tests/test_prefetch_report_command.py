"""``manage.py prefetch_report`` on the demo: URLs or every parameterless route, three formats, CI exit codes."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from sarif_pydantic import Sarif

from ddt_prefetch_panel.management.commands.prefetch_report import Command, parameterless_routes
from tests.places.models import Thread

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(Command(), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_parameterless_routes_walk_the_urlconf():
    routes = list(parameterless_routes())
    assert "/" in routes and "/forward-fk/bad/" in routes and "/admin/" in routes
    assert not any("<" in r or "%(" in r for r in routes)
    assert not any(r.startswith("/__debug__/") for r in routes)
    assert "/admin/shop/order/" in routes and not any(r.endswith("/change/") for r in routes)


def test_urls_give_one_deduplicated_markdown_report(pizzeria):
    out, err = run("/forward-fk/bad/", "/forward-fk/bad/", "/m2m/bad/", "/forward-fk/fixed/")
    assert out.startswith("## ")
    assert "| # | kind | relation | seen | count | avoidable | proof | where |" in out
    assert out.count("`shop.Order.customer`") >= 1
    assert "GET /forward-fk/bad/ 200: 1 findings" in err
    assert "shop.Pizza.toppings" in out


def test_all_urls_json_covers_the_demo(pizzeria, tmp_path):
    target = tmp_path / "report.json"
    _, err = run("--all-urls", "--output", str(target))
    data = json.loads(target.read_text())
    relations = {f["relation"] for f in data["findings"] if f["kind"] == "n_plus_one"}
    assert {"shop.Order.customer", "shop.Pizza.toppings", "shop.Order.pizzas", "shop.Customer.order_set"} <= relations
    assert data["summary"]["reports"] == len(list(parameterless_routes()))
    customer = [f for f in data["findings"] if f["relation"] == "shop.Order.customer"]
    # One entry per call site; the forward-fk page and its template twin are different call sites.
    assert len({(f["callsite"]["filename"], f["callsite"]["lineno"]) for f in customer}) == len(customer)
    assert "Wrote" in err


def test_sarif_format_by_extension_validates(pizzeria, tmp_path):
    target = tmp_path / "report.sarif"
    run("/forward-fk/bad/", "/filtered-prefetch/bad/", "--output", str(target))
    log = json.loads(target.read_text())
    Sarif.model_validate(log)
    results = log["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"n_plus_one"}
    assert all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "demo/shop/views.py" for r in results)


def test_fail_on_exits_1_when_findings_remain(pizzeria):
    with pytest.raises(CommandError) as raised:
        run("/forward-fk/bad/", "--fail-on", "n_plus_one")
    assert raised.value.returncode == 1
    run("/forward-fk/fixed/", "--fail-on", "n_plus_one")
    run("/duplicates/bad/", "--fail-on", "n_plus_one", "--format", "json")
    with pytest.raises(CommandError):
        run("/duplicates/bad/", "--fail-on", "any", "--format", "json")


def test_user_option_logs_in(pizzeria, django_user_model):
    django_user_model.objects.create_superuser("boss", "boss@example.com", "secret")
    out, err = run("/admin/shop/order/", "--user", "boss", "--format", "json")
    assert "GET /admin/shop/order/ 200" in err
    anonymous_out, anonymous_err = run("/admin/shop/order/", "--format", "json")
    assert "GET /admin/shop/order/ 302" in anonymous_err
    with pytest.raises(CommandError, match="No user"):
        run("/", "--user", "nobody")


def test_no_url_is_an_error():
    with pytest.raises(CommandError, match="at least one URL"):
        run()


def test_the_crawl_patch_fixes_the_crawled_pages(pizzeria, tmp_path, settings):
    """Crawl, apply the report's patch to a copy of the demo, crawl the patched views again."""
    import importlib.util
    import shutil
    import subprocess
    import sys
    import types
    from importlib import import_module

    from django.urls import clear_url_caches, include, path

    from ddt_prefetch_panel.patch import report_patch
    from shop import urls as shop_urls

    pages = [f"/{p.pattern}" for p in shop_urls.urlpatterns]
    before = tmp_path / "before.json"
    run(*pages, "--output", str(before))
    findings = json.loads(before.read_text())["findings"]
    patch = report_patch(findings)
    copy = tmp_path / "project"
    shutil.copytree(settings.BASE_DIR / "demo", copy / "demo", ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    (copy / "fix.patch").write_text(patch)
    subprocess.run(["git", "apply", "fix.patch"], cwd=copy, check=True)

    spec = importlib.util.spec_from_file_location("shop._crawled_views", copy / "demo" / "shop" / "views.py")
    patched = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(patched)
    urlconf = types.ModuleType("ddtpp_patched_urls")
    others = [p for p in import_module(settings.ROOT_URLCONF).urlpatterns if getattr(p, "namespace", None) != "shop"]
    urlconf.urlpatterns = others + [path("", include(([path(str(p.pattern), _patched_view(patched, p.callback),
                                                              name=p.name) for p in shop_urls.urlpatterns], "shop")))]
    sys.modules[urlconf.__name__] = urlconf
    settings.ROOT_URLCONF = urlconf.__name__
    settings.BASE_DIR = copy  # the patched copy is the project's own code now
    clear_url_caches()
    try:
        after = tmp_path / "after.json"
        run(*pages, "--output", str(after))
    finally:
        del sys.modules[urlconf.__name__]
        clear_url_caches()
    remaining = [f for f in json.loads(after.read_text())["findings"] if f["kind"] == "n_plus_one"]
    patched_before = [f for f in findings if f["kind"] == "n_plus_one" and f["snippets"].get("patch")]
    assert len(patched_before) >= 10
    # Every N+1 that went through the relation is gone; loops that only mirror a relation with
    # hand-written queries ("Mapped from the SQL") cannot be fixed by eager loading alone.
    def key(finding: dict) -> tuple:
        return finding["relation"], (finding.get("callsite") or {}).get("function")  # lines move when imports are added

    fixed = {key(f) for f in patched_before}
    still = [key(f) for f in remaining if key(f) in fixed and "Mapped from the SQL" not in (f.get("note") or "")]
    assert still == []
    assert sum(f["avoidable"] for f in remaining) < sum(f["avoidable"] for f in findings) / 5


def test_crawl_leaves_the_toolbar_history_alone(pizzeria):
    from debug_toolbar.store import get_store

    get_store().clear()
    run("/forward-fk/bad/", "--format", "json")
    assert list(get_store().request_ids()) == []


def test_the_command_is_found_by_manage_py_in_a_source_checkout():
    """Django lists an app's commands from <app path>/management/commands; in a checkout the
    app path is the repository root (templates/ and static/ live there), where a symlink to the
    package's management/ directory makes manage.py find the command."""
    from django.core.management import get_commands

    assert get_commands()["prefetch_report"] == "ddt_prefetch_panel"


def _patched_view(module, callback):
    """The patched module's version of a URL's view: a function by name, a class-based view's
    class (``as_view()`` keeps it as ``view_class``) by its class name."""
    view_class = getattr(callback, "view_class", None)
    if view_class is not None:
        return getattr(module, view_class.__name__).as_view(**getattr(callback, "view_initkwargs", {}))
    return getattr(module, callback.__name__)


@pytest.mark.django_db
def test_the_crawl_stays_logged_in_skips_logout_and_reads_sitemaps(django_user_model, settings):
    """A GET logout route is never requested; a page that logs out anyway is followed by a new
    login (said on stderr); the sitemap's pages, which no parameterless route reaches, are crawled."""
    from tests.places.seed import seed

    seed(3)
    django_user_model.objects.create_user("staff", "staff@example.com", "secret")
    settings.ROOT_URLCONF = "tests.urlconfs.crawl_site"
    routes = list(parameterless_routes())
    assert "/accounts/logout/" not in routes and "/bye/" in routes
    out, err = run("--all-urls", "--user", "staff", "--format", "json")
    requested = [line.split()[1] for line in err.splitlines() if line.startswith("GET ") and " findings" in line]
    assert "/accounts/logout/" not in requested
    assert "GET /bye/ logged staff out: logged in again for the next URLs." in err
    assert requested.index("/account/") > requested.index("/bye/")
    assert "GET /account/ 200" in err  # still logged in after /bye/
    threads = [f"/places/threads/{pk}/" for pk in Thread.objects.order_by("pk").values_list("pk", flat=True)]
    assert set(threads) <= set(requested)
    assert "/places/posts/live/?page=1" in requested  # an absolute location, as a CMS's sitemap writes it
    assert "places.Post.author" in out  # the DetailView's N+1, found through the sitemap

    _, limited = run("--all-urls", "--max-urls", "2", "--format", "json")
    assert "Requesting the first 2 of" in limited
    assert len([line for line in limited.splitlines() if line.startswith("GET ")]) == 2


def test_crawl_against_a_baseline_fails_on_new_findings_only(pizzeria, tmp_path):
    """--fail-on new: only findings not in the baseline fail, of the kinds given with it if any."""
    base = tmp_path / "base.json"
    run("/forward-fk/bad/", "/duplicates/bad/", "--output", str(base))
    recorded = json.loads(base.read_text())
    kinds = sorted(f["kind"] for f in recorded["findings"])
    assert "n_plus_one" in kinds and "duplicate" in kinds
    out, err = run("/forward-fk/bad/", "/duplicates/bad/", "--baseline", str(base), "--fail-on", "new")
    assert out.startswith(f"## ddt-prefetch-panel: 0 new problems, 0 fixed, {len(kinds)} known\n")
    assert f"Against {base}: 0 new problems" in err

    pages = ("/forward-fk/bad/", "/duplicates/bad/", "/m2m/bad/", "--baseline", str(base))
    with pytest.raises(CommandError) as raised:
        run(*pages, "--fail-on", "new")
    assert raised.value.returncode == 1
    assert str(raised.value) == "1 new findings (n_plus_one)."
    with pytest.raises(CommandError, match=r"^1 new findings \(n_plus_one\)\.$"):
        run(*pages, "--fail-on", "new", "--fail-on", "n_plus_one")
    out, _ = run(*pages, "--fail-on", "new", "--fail-on", "duplicate")  # the new one is no duplicate
    new = out.split("### New (1)")[1].split("### Known")[0]
    assert "`shop.Pizza.toppings`" in new and "Fix at `demo/shop/views.py:" in new and "(verified: " in new
    assert f"### Known, still there ({len(kinds)})" in out
    # Without "new", a kind fails on known findings too.
    with pytest.raises(CommandError, match="findings remain"):
        run("/forward-fk/bad/", "--baseline", str(base), "--fail-on", "n_plus_one")
    with pytest.raises(CommandError, match="--fail-on new needs --baseline"):
        run("/forward-fk/bad/", "--fail-on", "new")


def test_crawl_lists_fixed_findings_only_for_pages_it_requested(pizzeria, tmp_path, settings):
    base = tmp_path / "base.json"
    run("/forward-fk/bad/", "/m2m/bad/", "--format", "json", "--output", str(base))
    # The toppings N+1 is no longer reported (allowlisted here, as a fix would make it disappear).
    settings.DDT_PREFETCH_PANEL = {"ALLOW": [{"relation": "shop.Pizza.toppings"}]}
    out, _ = run("/forward-fk/bad/", "/m2m/bad/", "--baseline", str(base), "--fail-on", "new")
    assert out.splitlines()[0] == "## ddt-prefetch-panel: 0 new N+1 problems, 1 fixed, 1 known"
    assert out.split("### Fixed (1)")[1].split("###")[0].strip().startswith("- N+1 `shop.Pizza.toppings` at `demo/shop")
    out, _ = run("/forward-fk/bad/", "--baseline", str(base))  # /m2m/bad/ was not crawled: nothing claimed
    assert out.splitlines()[0].startswith("## ddt-prefetch-panel: 0 new N+1 problems, 0 fixed, 1 known (1 not checked")


def test_crawl_lists_a_page_over_its_query_budget(pizzeria, tmp_path, settings):
    """The baseline recorded fewer queries for the page, and not one of its statements."""
    base = tmp_path / "base.json"
    run("/forward-fk/bad/", "--format", "json", "--output", str(base))
    recorded = json.loads(base.read_text())
    budget = recorded["budgets"]["/forward-fk/bad/"]
    customer = next(shape for shape, text in recorded["statements"].items() if '"shop_customer"' in text)
    budget["queries"] -= 3
    budget["statements"].remove(customer)
    base.write_text(json.dumps(recorded))
    with pytest.raises(CommandError, match=r"^1 pages over their query budget \(/forward-fk/bad/\)\.$"):
        run("/forward-fk/bad/", "--baseline", str(base), "--fail-on", "new")
    out, _ = run("/forward-fk/bad/", "--baseline", str(base))
    listed = out.split("### Query budgets exceeded (1)")[1]
    queries = budget["queries"]
    assert f"- `/forward-fk/bad/`: {queries} → {queries + 3} queries" in listed
    assert f"  - new: `{recorded['statements'][customer]}`" in listed
    assert recorded["statements"][customer].startswith('SELECT … FROM "shop_customer" WHERE "shop_customer"."id" = ?')
    settings.DDT_PREFETCH_PANEL = {"BUDGET_TOLERANCE": 3}
    run("/forward-fk/bad/", "--baseline", str(base), "--fail-on", "new")
