"""One test per patched Django/DDT target: it fails naming the target when the hook stops firing.

Each probe runs the ORM operation its hook observes inside a capture and checks what the
hook contributes. The same probe is run with that one hook unwrapped (the original target
restored), where it must fail: so each probe really depends on its own hook, and a Django
release that renames or bypasses a target fails exactly one test, named after it.
"""

from __future__ import annotations

import threading

import pytest
from debug_toolbar.panels import Panel
from django.core.checks import run_checks
from django.db import connection
from django.test import override_settings

from ddt_prefetch_panel import capture as cap
from ddt_prefetch_panel import detect, hooks
from ddt_prefetch_panel.checks import check_hooks_installed, check_panel_configured
from shop.models import Customer, LoyaltyCard, Order, Pizza, Review

pytestmark = pytest.mark.django_db(transaction=False)


def _hop_names(capture: cap.Capture) -> list[str]:
    return [hooks.accessor_name(r.hop.descriptor) for r in capture.records if r.hop is not None]


def probe_prepare_cursor() -> None:
    # A cursor of another thread's connection, opened while the capture is current there.
    with cap.capturing() as capture:
        context = __import__("contextvars").copy_context()

        def other_thread() -> None:
            from django.db import connections

            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT 42")
            connections["default"].close()

        thread = threading.Thread(target=lambda: context.run(other_thread))
        thread.start()
        thread.join()
    assert any(r.sql == "SELECT 42" for r in capture.records)


def probe_execute_sql() -> None:
    with cap.capturing() as capture:
        list(Order.objects.all())
    assert capture.records[0].model is Order


def probe_get_queryset() -> None:
    with cap.capturing() as capture:
        orders = list(Order.objects.all())
    assert orders and capture.roots[0].origin is not None


def probe_model_iterable() -> None:
    with cap.capturing():
        order = Order.objects.all()[0]
        assert hooks.instance_source(order) is not None


def probe_forward_get_object() -> None:
    with cap.capturing() as capture:
        for order in Order.objects.all()[:2]:
            order.customer.name
    assert "customer" in _hop_names(capture)


def probe_forward_get() -> None:
    with cap.capturing() as capture:
        for order in Order.objects.select_related("customer")[:2]:
            order.customer.name
    assert any(path == ("customer",) for _root, path in capture.accessed)


def probe_reverse_o2o() -> None:
    with cap.capturing() as capture:
        for customer in Customer.objects.all()[:2]:
            try:
                customer.loyalty_card
            except LoyaltyCard.DoesNotExist:
                pass
    assert "loyalty_card" in _hop_names(capture)


def probe_reverse_many() -> None:
    with cap.capturing() as capture:
        for order in Order.objects.all()[:2]:
            list(order.pizzas.all())
    assert "pizzas" in _hop_names(capture)


def probe_deferred() -> None:
    with cap.capturing() as capture:
        for order in Order.objects.only("id")[:2]:
            order.status
    assert "status" in _hop_names(capture)


def probe_prefetch_one_level() -> None:
    with cap.capturing() as capture:
        list(Order.objects.prefetch_related("pizzas")[:2])
    assert any(bucket.prefetch is not None for bucket in capture.buckets.values())


def probe_fetch_all() -> None:
    # A library reading the prefetch cache itself (django-taggit's manager does) uses the prefetch.
    with cap.capturing() as capture:
        orders = list(Order.objects.prefetch_related("pizzas")[:2])
        for order in orders:
            list(order._prefetched_objects_cache["pizzas"])
    assert any(path == ("pizzas",) for _root, path in capture.accessed)


def probe_do_update() -> None:
    # save() in a loop: the UPDATE carries the fields it changed (for bulk_update advice).
    with cap.capturing() as capture:
        for order in Order.objects.all()[:2]:
            order.notes = f"probe {order.pk}"
            order.save()
    summaries = [r.changes for r in capture.records if r.sql.startswith("UPDATE")]
    assert summaries and all(s is not None and list(s.changed) == ["notes"] for s in summaries)


def probe_generic_fk() -> None:
    with cap.capturing() as capture:
        for review in Review.objects.exclude(object_id=None)[:2]:
            review.target
    assert "target" in _hop_names(capture)


def probe_sync_to_async() -> None:
    # The sync half of an async ORM call runs on another stack; it continues in the awaiting line.
    from asgiref.sync import async_to_sync

    async def fetch():
        return await Order.objects.afirst()

    with cap.capturing() as capture:
        async_to_sync(fetch)()
    assert any(entry[0] is fetch.__code__ for r in capture.records for entry in r.stack)


class QueryingPanel(Panel):
    """A toolbar panel that queries while it generates its stats, as some panels do."""

    title = nav_title = "Querying"

    def generate_stats(self, request, response):
        for _ in range(3):
            Pizza.objects.filter(name="toolbar's own").count()
        self.record_stats({})


def probe_toolbar_postprocess(client) -> None:
    with detect() as report:
        response = client.get("/template-loop/bad/")
    assert response.status_code == 200 and b"djDebug" in response.content
    statements = [f.sql for f in report.findings]
    assert report.summary["queries"] > 0
    assert not any("shop_pizza" in sql and "COUNT" in sql for sql in statements), report.to_markdown()


PROBES = {
    "django.db.backends.base.base:BaseDatabaseWrapper._prepare_cursor": probe_prepare_cursor,
    "django.db.models.sql.compiler:SQLCompiler.execute_sql": probe_execute_sql,
    "django.db.models.manager:BaseManager.get_queryset": probe_get_queryset,
    "django.db.models.query:ModelIterable.__iter__": probe_model_iterable,
    "django.db.models.fields.related_descriptors:ForwardManyToOneDescriptor.get_object": probe_forward_get_object,
    "django.db.models.fields.related_descriptors:ForwardManyToOneDescriptor.__get__": probe_forward_get,
    "django.db.models.fields.related_descriptors:ReverseOneToOneDescriptor.__get__": probe_reverse_o2o,
    "django.db.models.fields.related_descriptors:ReverseManyToOneDescriptor.__get__": probe_reverse_many,
    "django.db.models.query_utils:DeferredAttribute.__get__": probe_deferred,
    "django.db.models.query:prefetch_one_level": probe_prefetch_one_level,
    "django.db.models.query:QuerySet._fetch_all": probe_fetch_all,
    "django.db.models.base:Model._do_update": probe_do_update,
    "django.contrib.contenttypes.fields:GenericForeignKeyDescriptor.__get__": probe_generic_fk,
    "asgiref.sync:SyncToAsync.__call__": probe_sync_to_async,
}


def test_every_hook_has_a_probe():
    assert set(PROBES) | {TOOLBAR_HOOK} == {
        spec.name for spec in hooks.HOOKS}
    assert hooks.disabled_hooks() == {}


@pytest.fixture
def unhooked():
    """Restore one target's original for the duration of a test."""
    restored = []

    def unhook(name: str) -> None:
        spec = next(s for s in hooks.HOOKS if s.name == name)
        owner, attribute = hooks._target(spec)
        current = vars(owner)[attribute] if isinstance(owner, type) else getattr(owner, attribute)
        setattr(owner, attribute, current.__wrapped__)
        restored.append((owner, attribute, current))

    yield unhook
    for owner, attribute, wrapper in restored:
        setattr(owner, attribute, wrapper)


@pytest.mark.parametrize("name", sorted(PROBES))
def test_hook_fires(name, pizzeria):
    try:
        PROBES[name]()
    except AssertionError as exc:
        raise AssertionError(f"hook {name} no longer fires: {exc}") from exc


@pytest.mark.parametrize("name", sorted(PROBES))
def test_probe_fails_without_its_hook(name, pizzeria, unhooked):
    unhooked(name)
    with pytest.raises(AssertionError):
        PROBES[name]()


TOOLBAR_HOOK = "debug_toolbar.middleware:DebugToolbarMiddleware._postprocess"
QUERYING_PANELS = ["ddt_prefetch_panel.panel.PrefetchPanel", "tests.test_hooks.QueryingPanel"]


@pytest.fixture
def toolbar_urls_loaded():
    """DDT builds its URL patterns from the panels configured at the first request and keeps
    them: load them with the project's panels before a test overrides DEBUG_TOOLBAR_PANELS, or
    the panels' views (history, ...) would be missing for every later test."""
    from django.urls import reverse

    reverse("djdt:render_panel")


def test_toolbar_postprocess_hook(pizzeria, client, toolbar_urls_loaded):
    """detect() around a request that shows the toolbar: queries the toolbar's panels make
    while they generate their stats are never reported as the user's."""
    with override_settings(DEBUG_TOOLBAR_PANELS=QUERYING_PANELS):
        try:
            probe_toolbar_postprocess(client)
        except AssertionError as exc:
            raise AssertionError(f"hook {TOOLBAR_HOOK} no longer fires: {exc}") from exc


def test_toolbar_probe_fails_without_its_hook(pizzeria, client, unhooked, toolbar_urls_loaded):
    unhooked(TOOLBAR_HOOK)
    with override_settings(DEBUG_TOOLBAR_PANELS=QUERYING_PANELS), pytest.raises(AssertionError):
        probe_toolbar_postprocess(client)


# --------------------------------------------------------------------------- failing soft


class Target:
    def method(self, instance, cls=None):
        return "original"


def test_a_missing_or_changed_target_disables_that_hook_only():
    gone = hooks.HookSpec("tests.test_hooks:Target.renamed", "nothing", ("self",), lambda o: o)
    changed = hooks.HookSpec("tests.test_hooks:Target.method", "nothing", ("self", "obj"), lambda o: o)
    missing_app = hooks.HookSpec("tests.test_hooks:Target.method", "x", ("self",), lambda o: o,
                                 requires="no.such.app")
    try:
        hooks.install([gone])
        hooks.install([changed])
        status = hooks.disabled_hooks()
        assert "does not exist" in status[gone.name]
        assert "no longer starts with ('self', 'obj')" in status[changed.name]
        assert Target().method(None) == "original"
        hooks._status.pop(changed.name)
        hooks.install([missing_app])
        assert "not in INSTALLED_APPS" in hooks.disabled_hooks()[missing_app.name]
        [warning] = check_hooks_installed()
        assert warning.id == "ddt_prefetch_panel.W002" and "Target" in warning.msg
        assert "Django" in warning.msg
    finally:
        for spec in (gone, changed, missing_app):
            hooks._status.pop(spec.name, None)
    assert check_hooks_installed() == []


def test_wrappers_pass_new_arguments_through():
    calls = []

    class Owner:
        def method(self, instance, *args, **kwargs):
            calls.append((args, kwargs))
            return "ok"

    spec = hooks.HookSpec("tests.test_hooks:Owner.method", "x", ("self", "instance"),
                          lambda original: hooks._with_hop(original, "tests.test_hooks:Owner.method"))
    wrapped = spec.wrap(Owner.method)
    with cap.capturing():
        assert wrapped(Owner(), Customer(), "new", flag=True) == "ok"
    assert calls == [(("new",), {"flag": True})]


def test_panel_summary_names_disabled_detections(pizzeria):
    spec = hooks.HookSpec("tests.test_hooks:Target.gone", "N+1s on imaginary relations", ("self",), lambda o: o)
    hooks.install([spec])
    try:
        with detect() as report:
            list(Order.objects.all())
        assert report.summary["disabled_hooks"] == {spec.name: "AttributeError: tests.test_hooks:Target.gone does not exist"}
    finally:
        hooks._status.pop(spec.name)


@override_settings()
def test_w001_fires_when_debug_toolbar_panels_is_unset():
    from django.conf import settings

    del settings.DEBUG_TOOLBAR_PANELS
    [warning] = check_panel_configured()
    assert warning.id == "ddt_prefetch_panel.W001"
    assert "default" in warning.msg


def test_checks_run_clean():
    assert [m for m in run_checks() if m.id and m.id.startswith("ddt_prefetch_panel")] == []


def test_records_carry_connection_alias():
    with cap.capturing() as capture:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    assert capture.records[0].alias == "default"


_WITHOUT_CONTENTTYPES = """
import django
django.setup()
from django.core.checks import run_checks
from django.core.management import call_command
call_command("migrate", run_syncdb=True, verbosity=0)
from ddt_prefetch_panel import detect
from ddt_prefetch_panel.hooks import disabled_hooks
from ddt_prefetch_panel.panel import panel_context
from django.template.loader import render_to_string
from tests.plainapp.models import Shelf, Volume
for i in range(3):
    Volume.objects.create(shelf=Shelf.objects.create(name=str(i)), title=str(i))
with detect() as report:
    for volume in Volume.objects.all():
        volume.shelf.name
[finding] = report.findings
assert finding.relation == "plainapp.Volume.shelf", finding
assert finding.snippets["fix"] == '.select_related("shelf")', finding.snippets
html = render_to_string("ddt_prefetch_panel/panel.html", panel_context({"report": report.to_dict(), "error": None}))
assert "plainapp.Volume.shelf" in html
assert [m.id for m in run_checks() if m.level >= 30] == [], run_checks()
print(sorted(disabled_hooks()))
"""


def _run_project_script(script: str, settings_module: str | None):
    """Run ``script`` in a fresh interpreter, as another project would (its own settings)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "demo")])}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if settings_module is not None:
        env["DJANGO_SETTINGS_MODULE"] = settings_module
    result = subprocess.run([sys.executable, "-c", script], cwd=root, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_a_project_without_contenttypes_starts_and_works():
    result = _run_project_script(_WITHOUT_CONTENTTYPES, "tests.settings_nocontenttypes")
    # Only the generic-FK hook is off, and it is not a warning: the project has no generic FKs.
    assert result.stdout.strip() == "['django.contrib.contenttypes.fields:GenericForeignKeyDescriptor.__get__']"


_WITHOUT_TOOLBAR = """
import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=["django.contrib.contenttypes", "ddt_prefetch_panel", "tests.plainapp"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
)
django.setup()
from django.core.checks import run_checks
from ddt_prefetch_panel import detect
from ddt_prefetch_panel.hooks import disabled_hooks

print([m.id for m in run_checks() if m.level >= 30])
print(sorted(disabled_hooks()))
with detect() as report:
    pass
print(report.findings)
"""


def test_a_project_that_only_uses_detect_without_the_toolbar_gets_no_warning():
    # debug_toolbar importable but not installed: its middleware module cannot even be imported,
    # and that hook has nothing to observe, so it is off without a W002.
    result = _run_project_script(_WITHOUT_TOOLBAR, None)  # the script configures its own settings
    assert result.stdout.splitlines() == [
        "[]", "['debug_toolbar.middleware:DebugToolbarMiddleware._postprocess']", "[]"]


def test_related_managers_read_in_a_loop_are_freed_without_the_cycle_collector(pizzeria):
    """The hop of a related manager is kept in the manager's dict and read by its class's
    wrapped methods: no closure refers back to the manager, so each loop iteration's manager
    goes away by reference counting (a cycle per iteration made the collector run often)."""
    import gc
    import weakref

    gc.disable()
    try:
        with cap.capturing() as capture:
            managers = []
            for order in Order.objects.all():
                manager = order.pizzas
                managers.append(weakref.ref(manager))
                list(manager.all())
                manager.count()
                del manager
            alive = [ref for ref in managers if ref() is not None]
    finally:
        gc.enable()
    assert managers and alive == []
    hops = [r.hop for r in capture.records if r.hop is not None]
    assert hops and {hooks.accessor_name(h.descriptor) for h in hops} == {"pizzas"}
    # Outside a capture the hooked class behaves as Django's.
    order = Order.objects.first()
    assert list(order.pizzas.all()) == list(Pizza.objects.filter(order=order))
    assert order.pizzas.count() == Pizza.objects.filter(order=order).count()


# --------------------------------------------------------------------------- the observer promise
# While a capture is active, Django behaves exactly as without it (README "Guarantees").


def test_save_in_a_loop_runs_no_statement_of_ours(pizzeria):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as seen, detect() as report:
        for i, order in enumerate(Order.objects.order_by("pk")[:3]):
            order.notes = f"note {i}"
            order.save()
    # One SELECT, then one UPDATE per save: no read of the row before it (Django's log is what
    # assertNumQueries, the SQL panel and every other observer count).
    assert [q["sql"].split()[0] for q in seen.captured_queries] == ["SELECT"] + ["UPDATE"] * 3
    [finding] = [f for f in report.findings if f.kind == "n_plus_one"]
    assert finding.snippets["fix"].startswith('Order.objects.bulk_update(objs, ["notes"])')


def test_a_save_of_an_instance_loaded_elsewhere_is_not_diffed(pizzeria):
    # Loaded before the capture: nothing tells what its saves change, and nothing is read to
    # find out. No field list is guessed.
    orders = list(Order.objects.order_by("pk")[:3])
    with detect() as report:
        for order in Order.objects.filter(pk__in=[o.pk for o in orders]):
            pass
        for order in orders:
            order.notes = "x"
            order.save()
    [finding] = [f for f in report.findings if f.kind == "n_plus_one" and f.model == "shop.Order"]
    assert "bulk_update" not in finding.snippets.get("fix", "")


def test_prefetching_never_builds_a_related_managers_deferred_filter(pizzeria):
    # Django defers the relation's filter of each prefetched instance's manager (one add_q for the
    # whole prefetch, prefetch_related's test_filter_deferred); reading queryset.query forced it.
    from unittest import mock

    from django.db.models.sql.query import Query

    add_q = Query.add_q
    with mock.patch.object(Query, "add_q", autospec=True, side_effect=lambda *a, **k: add_q(*a, **k)) as calls:
        list(Order.objects.prefetch_related("pizzas"))
    plain = calls.call_count
    with mock.patch.object(Query, "add_q", autospec=True, side_effect=lambda *a, **k: add_q(*a, **k)) as calls:
        with detect(PROOFS=False):  # the capture alone: replaying "drop the prefetch" builds its own
            list(Order.objects.prefetch_related("pizzas"))
    assert calls.call_count == plain == 1


def test_a_related_managers_loop_filter_is_still_described(pizzeria):
    # The relation's own deferred condition is counted without being built: what the loop
    # added is still told apart from it.
    with detect() as report:
        for order in Order.objects.all():
            list(order.pizzas.filter(name__startswith="M"))
    [finding] = [f for f in report.findings if f.kind == "n_plus_one"]
    assert finding.method == "Prefetch"
    assert 'Pizza.objects.filter(name__startswith="M")' in finding.snippets["fix"]


def test_a_fake_queryset_from_a_related_manager_passes_through(db):
    # django-modelcluster answers an unsaved instance's child relation with a FakeQuerySet
    # (every inline formset's empty form in a CMS admin): no .query, nothing to tag.
    from tests.frameworks.blog.models import BlogPage, GalleryImage

    page = BlogPage(title="draft")
    page.gallery_images = [GalleryImage(caption="a")]
    with detect():
        images = page.gallery_images.all()
        assert [image.caption for image in images] == ["a"]
        assert type(images).__name__ == "FakeQuerySet"
    assert hooks.hook_failures() == {}


def test_our_own_failure_is_recorded_once_and_the_call_returns_its_result(pizzeria, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("tagging broke")

    monkeypatch.setattr(hooks, "_hop_for", broken)
    monkeypatch.setattr(hooks, "_failures", {})
    with detect() as report:
        customers = [order.customer.name for order in Order.objects.all()]
    assert customers == [order.customer.name for order in Order.objects.select_related("customer")]
    assert hooks.hook_failures() == {hooks.FORWARD_GET_OBJECT: "RuntimeError: tagging broke"}
    assert report.summary["hook_failures"] == {hooks.FORWARD_GET_OBJECT: "RuntimeError: tagging broke"}


def test_the_original_exception_reaches_the_caller_untouched(pizzeria):
    order = Order.objects.first()
    with detect():
        with pytest.raises(Order.DoesNotExist):
            Order.objects.get(pk=-1)
        Order.objects.filter(pk=order.pk).delete()
        order.customer_id = order.customer_id
        with pytest.raises(Exception) as raised:
            order.save(force_update=True)
    assert str(raised.value) == "Forced update did not affect any rows."


def test_our_frames_are_hidden_from_the_toolbars_stack_traces(rf, pizzeria):
    # ENABLE_STACKTRACES_LOCALS pretty-prints the locals of every frame the SQL panel shows; a
    # wrapper's locals hold the queryset being evaluated, whose repr() runs a query, which the
    # panel records with the same stack: RecursionError, or a request that never ends.
    from debug_toolbar import settings as toolbar_settings
    from debug_toolbar.toolbar import DebugToolbar
    from django.http import HttpResponse

    assert "ddt_prefetch_panel" in toolbar_settings.get_config()["HIDE_IN_STACKTRACES"]
    config = {**settings_toolbar_config(), "ENABLE_STACKTRACES_LOCALS": True}
    with override_settings(DEBUG_TOOLBAR_CONFIG=config):
        sql_panel = DebugToolbar(rf.get("/"), lambda request: HttpResponse()).get_panel_by_id("SQLPanel")
        sql_panel.enable_instrumentation()
        try:
            with detect() as report:
                counts = [order.pizzas.count() for order in Order.objects.all()]
        finally:
            sql_panel.disable_instrumentation()
    assert len(sql_panel._queries) == len(counts) + 1
    assert [f.relation for f in report.findings if f.kind == "n_plus_one"] == ["shop.Order.pizzas"]
    shown = {frame[0] for query in sql_panel._queries for frame in query["stacktrace"]}
    assert not [path for path in shown if "ddt_prefetch_panel" in path]


def test_a_project_that_sets_hide_in_stacktraces_keeps_its_own_list():
    from debug_toolbar import settings as toolbar_settings

    with override_settings(DEBUG_TOOLBAR_CONFIG={**settings_toolbar_config(), "HIDE_IN_STACKTRACES": ("mine",)}):
        assert toolbar_settings.get_config()["HIDE_IN_STACKTRACES"] == ("mine",)


def settings_toolbar_config() -> dict:
    from django.conf import settings

    return dict(settings.DEBUG_TOOLBAR_CONFIG)
