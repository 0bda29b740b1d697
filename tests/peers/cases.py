"""The published test cases of two peer N+1 tools, re-expressed as tool-neutral scenarios.

Sources (re-expressed, not copied; both MIT licence):

* django-zeal, Copyright 2024 Tao Bojlén (and 2016 Joshua Carp): ``tests/test_nplusones.py``,
  ``tests/test_listeners.py``, ``tests/test_patch.py``, ``tests/test_signals.py`` at release 2.2.1.
* nplusone, Copyright 2016 Joshua Carp: ``tests/testapp/testapp/{tests,views}.py`` at release 1.0.0.

A :class:`Case` is one scenario and what must happen: ``"report"`` (the named relations are
reported, as N+1 or unused eager load) or ``"quiet"``. Its ``blocks`` run one after the other,
each inside its own detection context (one context is one request for a middleware-based tool).
A block receives an :class:`Env` that gives the rows made by ``setup`` and the tool's own
"ignore" context. The same scenarios run under our ``detect()`` (``tests/test_peer_cases.py``)
and under zeal and nplusone themselves (``scripts/peers.py``, ``make peers``).

Relations are named ``app_label.Model.accessor``, as our ``Finding.relation`` and zeal's
messages name them (nplusone's messages drop the app label; the runner compares without it).
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import Context, Template

from .social.models import Node, Post, Profile, Tag, User
from .testapp import models as np


class Env(Protocol):
    """What a scenario block may use: the rows made by ``setup`` and the tool's ignore/nesting."""

    data: dict[str, Any]

    def ignore(self, patterns: list[dict[str, str]] | None = None) -> AbstractContextManager[Any]:
        """Nothing inside is reported; with zeal-style patterns (``{"model", "field"}``) only those."""

    def context(self) -> AbstractContextManager[Any]:
        """A detection context opened by the block itself (only for ``wrap=False`` cases)."""


Block = Callable[[Env], None]


@dataclass(frozen=True)
class Case:
    id: str  # "<peer>/<name>"
    source: str  # the peer's test this re-expresses
    expect: str  # "report" | "quiet"
    setup: Callable[[], dict[str, Any]]
    blocks: tuple[Block, ...]
    # "report": relations that must be named (all of them), and by which kind of finding.
    relations: tuple[str, ...] = ()
    kind: str = "n_plus_one"  # "n_plus_one" | "unused_prefetch"
    # Our lookup and method, where the ORM path or issue 13 makes them meaningful.
    lookup: str | None = None
    method: str | None = None
    # "quiet": finding kinds that must stay silent (the peer asserts these).
    silent: tuple[str, ...] = ("n_plus_one",)
    # Threshold the peer's assertion holds at: zeal's default is 2, nplusone reports one lazy load.
    threshold: int = 2
    # Allowlist in zeal's/nplusone's terms: [{"model": "app.Model" pattern, "field": pattern}].
    allow: tuple[dict[str, str], ...] = ()
    # False: the block opens its own env.context() (to nest it inside an ignore block).
    wrap: bool = True
    # Text the repeating call site's source line must contain (zeal asserts its caller line).
    callsite_code: str | None = None
    # What the peer's own message names, where it differs from our relation (zeal's "User.get()").
    peer_names: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return self.peer_names or self.relations

    @property
    def peer(self) -> str:
        return self.id.split("/", 1)[0]


def ours_allow(patterns: list[dict[str, str]] | tuple[dict[str, str], ...]) -> list[dict[str, str]]:
    """zeal/nplusone allowlist entries as our ``ALLOW`` entries (same fnmatch patterns).

    ``{"model": M, "field": F}`` names the accessor ``F`` on ``M``: our ``relation`` ``M.F``.
    ``{"model": M}`` is every accessor on ``M``: ``M.*``. zeal's ``get()`` pseudo-field (a
    ``Model.objects.get()`` loop) has no accessor: the statement's model ``M``.
    """
    allow: list[dict[str, str]] = []
    for entry in patterns:
        model, name = entry["model"], entry.get("field")
        if name == "get()":
            allow.append({"model": model})
        else:
            allow.append({"relation": f"{model}.{name or '*'}"})
    return allow


# --------------------------------------------------------------------------- zeal: data


def users_with_posts(n: int = 2) -> Callable[[], dict[str, Any]]:
    def setup() -> dict[str, Any]:
        users = [User.objects.create(username=f"user{i}") for i in range(n)]
        posts = [Post.objects.create(author=u, text=f"post by {u.username}") for u in users]
        return {"users": users, "posts": posts}

    return setup


def users_with_profiles(n: int = 2) -> Callable[[], dict[str, Any]]:
    def setup() -> dict[str, Any]:
        users = [User.objects.create(username=f"user{i}") for i in range(n)]
        profiles = [Profile.objects.create(user=u, display_name=f"User {i}") for i, u in enumerate(users)]
        return {"users": users, "profiles": profiles}

    return setup


def users_with_tags(n: int = 2) -> Callable[[], dict[str, Any]]:
    def setup() -> dict[str, Any]:
        users = [User.objects.create(username=f"user{i}") for i in range(n)]
        tags = [Tag.objects.create(obj=u, label=f"tag{i}") for i, u in enumerate(users)]
        return {"users": users, "tags": tags}

    return setup


def mutual(relation: str) -> dict[str, Any]:
    """Two users related to each other through ``following`` or ``blocked``."""
    one, two = User.objects.create(username="one"), User.objects.create(username="two")
    getattr(one, relation).add(two)
    getattr(two, relation).add(one)
    return {"users": [one, two]}


def one_and_four(direction: str) -> dict[str, Any]:
    """One user and four others; ``"followers"``: the four follow the one, else the one follows them."""
    hub = User.objects.create(username="hub")
    others = [User.objects.create(username=f"user{i}") for i in range(4)]
    getattr(hub, direction).set(others)
    return {"users": [hub, *others]}


def no_rows() -> dict[str, Any]:
    return {}


def untargeted_tags() -> dict[str, Any]:
    return {"tags": [Tag.objects.create(label="a"), Tag.objects.create(label="b")]}


def nodes_chain() -> dict[str, Any]:
    root = Node.objects.create(name="root")
    middle = Node.objects.create(name="middle", relation=root)
    leaves = [Node.objects.create(name="leaf", relation=middle) for _ in range(2)]
    return {"root": root, "middle": middle, "leaves": leaves}


def nodes_flat() -> dict[str, Any]:
    base = Node.objects.create(name="base")
    return {"nodes": [Node.objects.create(name=n, relation=base) for n in ("test1", "test1", "test2")]}


# --------------------------------------------------------------------------- zeal: loops


def read_author(posts: Any) -> None:
    for post in posts:
        post.author.username


def list_posts(users: Any) -> None:
    for user in users:
        list(user.posts.all())


def read_profile_user(profiles: Any) -> None:
    for profile in profiles:
        profile.user.username


def read_user_profile(users: Any) -> None:
    for user in users:
        user.profile.display_name


def list_manager(accessor: str) -> Callable[[Any], None]:
    def loop(users: Any) -> None:
        for user in users:
            list(getattr(user, accessor).all())

    return loop


def read_tag_target(tags: Any) -> None:
    for tag in tags:
        tag.obj


def loop_block(loop: Callable[[Any], None], rows: Callable[[], Any]) -> Block:
    return lambda env: loop(rows())


def per_instance_prefetch(lookup: str, rows: Callable[[], Any]) -> Block:
    """The rows are loaded first (``list(...)``, or an iterator), then prefetched one at a time."""

    def block(env: Env) -> None:
        instances = rows()
        instances = instances if hasattr(instances, "__next__") else list(instances)
        for instance in instances:
            prefetch_related_objects([instance], lookup)

    return block


# Single-object loads, three ways (zeal's "no false positive when loading a single object").
def singly(model: type, pks: Callable[[Env], tuple[Any, Any]], way: str, touch: Callable[[Any], Any]) -> Block:
    def block(env: Env) -> None:
        one, two = pks(env)
        if way == "first":
            a = model.objects.filter(pk=one).first()
            b = model.objects.filter(pk=two).first()
        elif way == "index":
            a = model.objects.filter(pk=one)[0]
            b = model.objects.filter(pk=two)[0]
        else:
            a = model.objects.get(pk=one)
            b = model.objects.get(pk=two)
        touch(a)
        touch(b)

    return block


def related_single(accessor: str, way: str) -> Block:
    """``user_1.following.first()`` / ``.all()[0]`` / ``.get(pk=...)`` for two users on two lines."""

    def block(env: Env) -> None:
        one, two = env.data["users"]
        if way == "first":
            getattr(one, accessor).first().username
            getattr(two, accessor).first().username
        elif way == "index":
            getattr(one, accessor).all()[0].username
            getattr(two, accessor).all()[0].username
        else:
            getattr(one, accessor).get(pk=two.pk).username
            getattr(two, accessor).get(pk=one.pk).username

    return block


# zeal's two views: one user with its profile, and every user with its profile (an N+1).
def single_user_and_profile(request: HttpRequest, id: int) -> JsonResponse:
    user = User.objects.get(id=id)
    return JsonResponse({"username": user.username, "display_name": user.profile.display_name})


def all_users_and_profiles(request: HttpRequest) -> JsonResponse:
    rows = [{"username": user.username, "display_name": user.profile.display_name} for user in User.objects.all()]
    return JsonResponse({"users": rows})


def get_view(view: Callable[..., Any], path: str, **kwargs: Any) -> None:
    from django.test import RequestFactory

    view(RequestFactory().get(path), **kwargs)


def request_block(view: Callable[..., Any], path: str, kwargs: Callable[[Env], dict] = lambda env: {}) -> Block:
    return lambda env: get_view(view, path, **kwargs(env))


def zeal_cases() -> list[Case]:
    cases: list[Case] = []
    src = "django-zeal tests/test_nplusones.py::"

    def pair(name: str, test: str, setup: Callable, bad: Block, good: Block, relation: str, lookup: str,
             good_setup: Callable | None = None) -> None:
        """A "detects" test: the loop is reported; the same loop with the fix is not."""
        cases.append(Case(f"zeal/{name}", src + test, "report", setup, (bad,), (relation,), lookup=lookup))
        cases.append(Case(f"zeal/{name}_fixed", src + test + " (fixed loop)", "quiet", good_setup or setup, (good,)))

    posts, users, profiles = Post.objects, User.objects, Profile.objects
    # Every relation kind, plain loop and .iterator(chunk_size=2) over four rows.
    pair("forward_many_to_one", "test_detects_nplusone_in_forward_many_to_one", users_with_posts(),
         loop_block(read_author, posts.all), loop_block(read_author, lambda: posts.select_related("author")),
         "social.Post.author", "author")
    pair("forward_many_to_one_iterator", "test_detects_nplusone_in_forward_many_to_one_iterator", users_with_posts(4),
         loop_block(read_author, lambda: posts.all().iterator(chunk_size=2)),
         loop_block(read_author, lambda: posts.select_related("author").iterator(chunk_size=2)),
         "social.Post.author", "author")
    pair("reverse_many_to_one", "test_detects_nplusone_in_reverse_many_to_one", users_with_posts(),
         loop_block(list_posts, users.all), loop_block(list_posts, lambda: users.prefetch_related("posts")),
         "social.User.posts", "posts")
    pair("reverse_many_to_one_iterator", "test_detects_nplusone_in_reverse_many_to_one_iterator", users_with_posts(4),
         loop_block(list_posts, lambda: users.all().iterator(chunk_size=2)),
         loop_block(list_posts, lambda: users.prefetch_related("posts").iterator(chunk_size=2)),
         "social.User.posts", "posts")
    pair("forward_one_to_one", "test_detects_nplusone_in_forward_one_to_one", users_with_profiles(),
         loop_block(read_profile_user, profiles.all), loop_block(read_profile_user, lambda: profiles.select_related("user")),
         "social.Profile.user", "user")
    pair("forward_one_to_one_iterator", "test_detects_nplusone_in_forward_one_to_one_iterator", users_with_profiles(4),
         loop_block(read_profile_user, lambda: profiles.all().iterator(chunk_size=2)),
         loop_block(read_profile_user, lambda: profiles.select_related("user").iterator(chunk_size=2)),
         "social.Profile.user", "user")
    pair("reverse_one_to_one", "test_detects_nplusone_in_reverse_one_to_one", users_with_profiles(),
         loop_block(read_user_profile, users.all), loop_block(read_user_profile, lambda: users.select_related("profile")),
         "social.User.profile", "profile")
    pair("reverse_one_to_one_iterator", "test_detects_nplusone_in_reverse_one_to_one_iterator", users_with_profiles(4),
         loop_block(read_user_profile, lambda: users.all().iterator(chunk_size=2)),
         loop_block(read_user_profile, lambda: users.select_related("profile").iterator(chunk_size=2)),
         "social.User.profile", "profile")
    for accessor, setup, iter_setup, relation in (
        ("following", lambda: mutual("following"), lambda: one_and_four("followers"), "social.User.following"),
        ("followers", lambda: mutual("following"), lambda: one_and_four("following"), "social.User.followers"),
    ):
        kind = "forward" if accessor == "following" else "reverse"
        pair(f"{kind}_many_to_many", f"test_detects_nplusone_in_{kind}_many_to_many", setup,
             loop_block(list_manager(accessor), users.all),
             loop_block(list_manager(accessor), lambda a=accessor: users.prefetch_related(a)), relation, accessor)
        pair(f"{kind}_many_to_many_iterator", f"test_detects_nplusone_in_{kind}_many_to_many_iterator", iter_setup,
             loop_block(list_manager(accessor), lambda: users.all().iterator(chunk_size=2)),
             loop_block(list_manager(accessor), lambda a=accessor: users.prefetch_related(a).iterator(chunk_size=2)),
             relation, accessor)
    for accessor, kind in (("blocked", "forward"), ("user_set", "reverse")):
        pair(f"{kind}_many_to_many_no_related_name", f"test_detects_nplusone_in_{kind}_many_to_many_with_no_related_name",
             lambda: mutual("blocked"), loop_block(list_manager(accessor), users.all),
             loop_block(list_manager(accessor), lambda a=accessor: users.prefetch_related(a)),
             f"social.User.{accessor}", accessor)

    # Deferred fields: the related row is joined, but the field read was deferred.
    cases.append(Case("zeal/deferred_field", src + "test_detects_nplusone_due_to_deferred_fields", "report",
                      users_with_posts(),
                      (loop_block(read_author, lambda: posts.select_related("author").only("author__id")),),
                      ("social.User.username",), lookup="author__username", method="only"))
    cases.append(Case("zeal/deferred_field_fixed", src + "test_detects_nplusone_due_to_deferred_fields (fixed loop)",
                      "quiet", users_with_posts(),
                      (loop_block(read_author, lambda: posts.select_related("author").only("author__username")),)))
    cases.append(Case("zeal/deferred_field_iterator", src + "test_detects_nplusone_due_to_deferred_fields_in_iterator",
                      "report", users_with_posts(4),
                      (loop_block(read_author, lambda: posts.select_related("author").only("author__id")
                                  .iterator(chunk_size=2)),),
                      ("social.User.username",), lookup="author__username", method="only"))
    cases.append(Case("zeal/deferred_field_iterator_fixed",
                      src + "test_detects_nplusone_due_to_deferred_fields_in_iterator (fixed loop)", "quiet",
                      users_with_posts(4),
                      (loop_block(read_author, lambda: posts.select_related("author").only("author__username")
                                  .iterator(chunk_size=2)),)))

    # prefetch_related() where select_related() belonged: two queries, not an N+1.
    for name, setup, block in (
        ("forward_many_to_one", users_with_posts(), loop_block(read_author, lambda: posts.prefetch_related("author"))),
        ("forward_one_to_one", users_with_profiles(),
         loop_block(read_profile_user, lambda: profiles.prefetch_related("user"))),
        ("reverse_one_to_one", users_with_profiles(),
         loop_block(read_user_profile, lambda: users.prefetch_related("profile"))),
        ("deferred_fields", users_with_posts(),
         loop_block(read_author, lambda: posts.all().prefetch_related("author").only("author__username"))),
    ):
        cases.append(Case(f"zeal/prefetch_instead_of_select_{name}",
                          src + f"test_handles_prefetch_instead_of_select_related_in_{name}".replace(
                              "in_deferred_fields", "with_deferred_fields"), "quiet", setup, (block,)))

    # Single objects loaded three ways, then their relation read: never an N+1.
    def pks(key: str) -> Callable[[Env], tuple[Any, Any]]:
        return lambda env: (env.data[key][0].pk, env.data[key][1].pk)

    for name, model, setup, key, touch in (
        ("forward_many_to_one", Post, users_with_posts(), "posts", lambda p: p.author),
        ("forward_one_to_one", Profile, users_with_profiles(), "profiles", lambda p: p.user.username),
        ("reverse_one_to_one", User, users_with_profiles(), "users", lambda u: u.profile.display_name),
        ("generic_relation", User, users_with_tags(), "users", lambda u: list(u.tags.all())),
        ("generic_foreign_key", Tag, users_with_tags(), "tags", lambda t: t.obj),
    ):
        for way in ("first", "index", "get"):
            cases.append(Case(f"zeal/single_object_{name}_{way}",
                              src + f"test_no_false_positive_when_loading_single_object_{name} ({way})", "quiet",
                              setup, (singly(model, pks(key), way, touch),)))
    for accessor, kind in (("following", "forward"), ("followers", "reverse")):
        for way in ("first", "index", "get"):
            cases.append(Case(f"zeal/single_object_{kind}_many_to_many_{way}",
                              src + f"test_no_false_positive_when_loading_single_object_{kind}_many_to_many ({way})",
                              "quiet", lambda: mutual("following"), (related_single(accessor, way),)))

    # The same relation read twice on one instance is cached, not repeated.
    def twice(read: Callable[[Any], Any], key: str) -> Block:
        def block(env: Env) -> None:
            queryset = read(env.data[key][0])
            list(queryset)
            list(queryset)

        return block

    cases.append(Case("zeal/reverse_many_to_one_twice", src + "test_no_false_positive_when_calling_reverse_many_to_one_twice",
                      "quiet", users_with_posts(1), (twice(lambda u: u.posts.all(), "users"),)))
    cases.append(Case("zeal/generic_relation_twice", src + "test_no_false_positive_when_calling_generic_relation_twice",
                      "quiet", users_with_tags(1), (twice(lambda u: u.tags.all(), "users"),)))

    def tag_target_twice(env: Env) -> None:
        [tag] = list(Tag.objects.all())
        tag.obj
        tag.obj

    cases.append(Case("zeal/generic_foreign_key_twice",
                      src + "test_no_false_positive_when_accessing_generic_foreign_key_twice", "quiet",
                      users_with_tags(1), (tag_target_twice,)))
    cases.append(Case("zeal/generic_foreign_key_null", src + "test_no_false_positive_when_generic_foreign_key_is_null",
                      "quiet", untargeted_tags, (loop_block(read_tag_target, Tag.objects.all),)))

    # Threshold: two parents under a threshold of three is not reported.
    cases.append(Case("zeal/threshold_three", src + "test_has_configurable_threshold", "quiet", users_with_posts(),
                      (loop_block(read_author, posts.all),), threshold=3))

    # Requests: the list view repeats per user; two single-user requests do not.
    cases.append(Case("zeal/web_request", src + "test_works_in_web_requests", "report", users_with_profiles(),
                      (request_block(all_users_and_profiles, "/users/"),), ("social.User.profile",), lookup="profile"))
    one_user = request_block(single_user_and_profile, "/user/1/", lambda env: {"id": env.data["users"][0].pk})
    other_user = request_block(single_user_and_profile, "/user/2/", lambda env: {"id": env.data["users"][1].pk})
    cases.append(Case("zeal/separate_requests",
                      src + "test_works_in_web_requests (two requests) and test_does_nothing_if_not_in_middleware",
                      "quiet", users_with_profiles(), (one_user, other_user)))

    # Model.objects.get() in a loop, and on two separate lines.
    def get_each(env: Env) -> None:
        for user in env.data["users"]:
            User.objects.get(pk=user.pk)

    def get_twice(env: Env) -> None:
        one, two = env.data["users"]
        User.objects.get(pk=one.pk)
        User.objects.get(pk=two.pk)

    def posts_twice(env: Env) -> None:
        one, two = env.data["users"]
        list(one.posts.all())
        list(two.posts.all())

    two_users = users_with_posts()
    cases.append(Case("zeal/get_in_loop", src + "test_detects_nplusone_on_get", "report", two_users, (get_each,),
                      method="in_bulk", peer_names=("social.User.get()",)))
    cases.append(Case("zeal/get_on_two_lines", src + "test_no_false_positive_on_get_on_different_lines", "quiet",
                      two_users, (get_twice,)))
    cases.append(Case("zeal/calls_on_two_lines", src + "test_ignores_calls_on_different_lines", "quiet", two_users,
                      (posts_twice,)))

    # prefetch_related_objects() on one instance at a time is the N+1 it was meant to avoid.
    pro = src + "TestPrefetchRelatedObjects::"

    for name, setup, rows, lookup, relation in (
        ("reverse_many_to_one", users_with_posts(), User.objects.all, "posts", "social.User.posts"),
        ("forward_many_to_one", users_with_posts(), Post.objects.all, "author", "social.Post.author"),
        ("reverse_one_to_one", users_with_profiles(), User.objects.all, "profile", "social.User.profile"),
        ("forward_many_to_many", lambda: mutual("following"), User.objects.all, "following", "social.User.following"),
        ("reverse_many_to_many", lambda: mutual("following"), User.objects.all, "followers", "social.User.followers"),
        ("generic_relation", users_with_tags(), User.objects.all, "tags", "social.User.tags"),
    ):
        cases.append(Case(f"zeal/prefetch_related_objects_{name}", pro + f"test_{name}_per_instance_is_n_plus_one",
                          "report", setup, (per_instance_prefetch(lookup, rows),), (relation,),
                          lookup=lookup, method="prefetch_related_objects"))
    cases.append(Case("zeal/prefetch_related_objects_iterator", pro + "test_per_instance_in_iterator_loop_is_n_plus_one",
                      "report", users_with_posts(),
                      (per_instance_prefetch("posts", lambda: User.objects.iterator(chunk_size=1)),),
                      ("social.User.posts",), lookup="posts", method="prefetch_related_objects"))

    def prefetch_all(env: Env) -> None:
        prefetch_related_objects(list(User.objects.all()), "posts")

    def prefetch_singly(env: Env) -> None:
        def prefetch_one(user: User) -> None:
            prefetch_related_objects([user], "posts")

        one, two = env.data["users"]
        prefetch_one(User.objects.get(pk=one.pk))
        prefetch_one(User.objects.get(pk=two.pk))

    cases.append(Case("zeal/prefetch_related_objects_bulk", pro + "test_bulk_is_not_n_plus_one", "quiet",
                      users_with_posts(), (prefetch_all,)))
    cases.append(Case("zeal/prefetch_related_objects_singly_loaded", pro + "test_singly_loaded_prefetch_is_not_n_plus_one",
                      "quiet", users_with_posts(), (prefetch_singly,)))

    # Generic relations and generic foreign keys.
    pair("generic_relation", "test_detects_nplusone_in_generic_relation", users_with_tags(),
         loop_block(list_manager("tags"), users.all), loop_block(list_manager("tags"), lambda: users.prefetch_related("tags")),
         "social.User.tags", "tags")
    pair("generic_relation_iterator", "test_detects_nplusone_in_generic_relation_iterator", users_with_tags(4),
         loop_block(list_manager("tags"), lambda: users.all().iterator(chunk_size=2)),
         loop_block(list_manager("tags"), lambda: users.prefetch_related("tags").iterator(chunk_size=2)),
         "social.User.tags", "tags")
    pair("generic_foreign_key", "test_detects_nplusone_in_generic_foreign_key", users_with_tags(),
         loop_block(read_tag_target, Tag.objects.all), loop_block(read_tag_target, lambda: Tag.objects.prefetch_related("obj")),
         "social.Tag.obj", "obj")
    pair("generic_foreign_key_iterator", "test_detects_nplusone_in_generic_foreign_key_iterator", users_with_tags(4),
         loop_block(read_tag_target, lambda: Tag.objects.all().iterator(chunk_size=2)),
         loop_block(read_tag_target, lambda: Tag.objects.prefetch_related("obj").iterator(chunk_size=2)),
         "social.Tag.obj", "obj")

    def ignoring(patterns: list[dict[str, str]] | None, inner: Block) -> Block:
        def block(env: Env) -> None:
            with env.ignore(patterns):
                inner(env)

        return block

    cases.append(Case("zeal/ignore_generic_relation", src + "test_zeal_ignore_works_for_generic_relation", "quiet",
                      users_with_tags(),
                      (ignoring([{"model": "social.User", "field": "tags"}], loop_block(list_manager("tags"), users.all)),)))
    cases.append(Case("zeal/ignore_generic_foreign_key", src + "test_zeal_ignore_works_for_generic_foreign_key", "quiet",
                      users_with_tags(),
                      (ignoring([{"model": "social.Tag", "field": "obj"}], loop_block(read_tag_target, Tag.objects.all)),)))

    # ----------------------------------------------------------------- tests/test_listeners.py, test_signals.py
    lsrc = "django-zeal tests/test_listeners.py::"
    user_posts = loop_block(list_posts, users.all)
    post_authors = loop_block(read_author, posts.all)
    cases.append(Case("zeal/caller_named", lsrc + "test_errors_include_caller", "report", two_users, (user_posts,),
                      ("social.User.posts",), lookup="posts", callsite_code="list(user.posts.all())"))
    for name, allow in (
        ("allowlist", [{"model": "social.User", "field": "posts"}]),
        ("allowlist_model_pattern", [{"model": "social.U*"}]),
        ("allowlist_field_pattern", [{"model": "social.User", "field": "p*st*"}]),
    ):
        test = {"allowlist": "test_can_exclude_with_allowlist",
                "allowlist_model_pattern": "test_can_use_fnmatch_pattern_in_allowlist_model",
                "allowlist_field_pattern": "test_can_use_fnmatch_pattern_in_allowlist_field"}[name]
        cases.append(Case(f"zeal/{name}", lsrc + test, "quiet", two_users, (user_posts,), allow=tuple(allow)))
        cases.append(Case(f"zeal/{name}_other_relation", lsrc + test + " (not allow-listed)", "report", two_users,
                          (post_authors,), ("social.Post.author",), lookup="author", allow=tuple(allow)))

    def ignore_then_detect(env: Env) -> None:
        with env.ignore(None), env.context():
            list_posts(User.objects.all())

    cases.append(Case("zeal/ignore_outside_context", lsrc + "test_ignore_context_takes_precedence", "quiet", two_users,
                      (ignore_then_detect,), wrap=False))
    posts_pattern = [{"model": "social.User", "field": "post*"}]
    cases.append(Case("zeal/ignore_patterns", lsrc + "test_can_ignore_specific_models (ignored)", "quiet", two_users,
                      (ignoring(posts_pattern, user_posts),)))
    cases.append(Case("zeal/ignore_patterns_other_relation", lsrc + "test_can_ignore_specific_models (not ignored)",
                      "report", two_users, (ignoring(posts_pattern, post_authors),), ("social.Post.author",),
                      lookup="author"))
    cases.append(Case("zeal/ignore_patterns_other_field", lsrc + "test_can_ignore_specific_models (another field)",
                      "report", two_users,
                      (ignoring([{"model": "social.User", "field": "following"}], user_posts),),
                      ("social.User.posts",), lookup="posts"))
    def ignore_then_loop(env: Env) -> None:
        with env.ignore(posts_pattern):
            pass
        list_posts(User.objects.all())

    cases.append(Case("zeal/ignore_patterns_after_block", lsrc + "test_can_ignore_specific_models (after the block)",
                      "report", two_users, (ignore_then_loop,),
                      ("social.User.posts",), lookup="posts"))

    def merged(inner: Block, nested: list[dict[str, str]] | None = None) -> Block:
        def block(env: Env) -> None:
            with env.ignore(posts_pattern):
                if nested:
                    with env.ignore(nested):
                        inner(env)
                else:
                    inner(env)

        return block

    msrc = lsrc + "test_context_specific_allowlist_merges"
    author_pattern = [{"model": "social.Post", "field": "author"}]
    cases.append(Case("zeal/ignore_merge_outer", msrc + " (outer pattern)", "quiet", two_users, (merged(user_posts),)))
    cases.append(Case("zeal/ignore_merge_other_relation", msrc + " (not ignored)", "report", two_users,
                      (merged(post_authors),), ("social.Post.author",), lookup="author"))
    cases.append(Case("zeal/ignore_merge_inner", msrc + " (inner pattern)", "quiet", two_users,
                      (merged(post_authors, author_pattern),)))
    cases.append(Case("zeal/ignore_merge_inner_keeps_outer", msrc + " (outer pattern inside the inner block)", "quiet",
                      two_users, (merged(user_posts, author_pattern),)))
    cases.append(Case("zeal/inside_context", lsrc + "test_does_not_run_outside_of_context", "report", two_users,
                      (user_posts,), ("social.User.posts",), lookup="posts"))
    cases.append(Case("zeal/ignore_get", lsrc + "test_get_allowlist_suppresses_nplusone_on_get", "quiet", two_users,
                      (ignoring([{"model": "social.User", "field": "get()"}], get_each),)))

    def authors_comprehension(env: Env) -> None:
        [post.author.username for post in Post.objects.all()]

    cases.append(Case("zeal/comprehension", "django-zeal tests/test_signals.py::test_signal_send_message", "report",
                      two_users, (authors_comprehension,), ("social.Post.author",), lookup="author"))

    # ----------------------------------------------------------------- tests/test_patch.py (robustness)
    psrc = "django-zeal tests/test_patch.py::"

    def prefetched_many_times(env: Env) -> None:
        user = User.objects.prefetch_related("posts").all()[0]
        for _ in range(sys.getrecursionlimit() + 1):
            list(user.posts.all())

    def m2m_prefetch_cache(env: Env) -> None:
        hub = env.data["users"][0]
        [user] = User.objects.prefetch_related("following").filter(pk=hub.pk)
        assert len(list(user.following.all())) == 4

    def m2m_set_then_prefetch(env: Env) -> None:
        hub, *others = env.data["users"]
        [user] = User.objects.prefetch_related("following").filter(pk=hub.pk)
        user.following.set(others[:2])
        [user] = User.objects.prefetch_related("following").filter(pk=hub.pk)
        assert len(list(user.following.all())) == 2

    def empty_first(env: Env) -> None:
        User.objects.none().first()

    def get_values(env: Env) -> None:
        User.objects.filter(pk=env.data["users"][0].pk).values("username").get()

    def custom_equality(env: Env) -> None:
        a, b, c = env.data["nodes"]
        assert a == a and a == b and a != c
        Node.objects.filter(name="test1").first().relation

    def nested_equality(env: Env) -> None:
        one, two = env.data["leaves"]
        assert one == two and one.relation == two.relation
        Node.objects.filter(name="leaf").first().relation.relation

    for name, test, setup, block in (
        ("prefetched_many_times", "test_handles_calling_queryset_many_times", users_with_posts(1), prefetched_many_times),
        ("m2m_prefetch_cache", "test_m2m_prefetch_preserves_result_cache", lambda: one_and_four("following"),
         m2m_prefetch_cache),
        ("m2m_set_then_prefetch", "test_m2m_set_then_prefetch_preserves_result_cache", lambda: {
            "users": [User.objects.create(username=n) for n in ("hub", "a", "b")]}, m2m_set_then_prefetch),
        ("empty_queryset", "test_handles_empty_querysets", no_rows, empty_first),
        ("get_values", "test_handles_get_with_values", users_with_posts(1), get_values),
        ("custom_equality", "test_handles_custom_equality_with_relations", nodes_flat, custom_equality),
        ("nested_equality", "test_handles_nested_relation_equality", nodes_chain, nested_equality),
    ):
        cases.append(Case(f"zeal/{name}", psrc + test, "quiet", setup, (block,)))
    return cases


# --------------------------------------------------------------------------- nplusone


def nplusone_objects() -> dict[str, Any]:
    """nplusone's fixture: two users with a pet each; the first has an occupation, an address, a hobby."""
    user, user2 = np.User.objects.create(), np.User.objects.create()
    pet, pet2 = np.Pet.objects.create(user=user), np.Pet.objects.create(user=user2)
    allergy = np.Allergy.objects.create()
    allergy.pets.add(pet)
    occupation = np.Occupation.objects.create(user=user)
    address = np.Address.objects.create(user=user)
    hobby = np.Hobby.objects.create()
    user.hobbies.add(hobby)
    return {"user": user, "user2": user2, "pet": pet, "pet2": pet2, "allergy": allergy, "occupation": occupation,
            "address": address, "hobby": hobby}


def without(model: type) -> Callable[[], dict[str, Any]]:
    def setup() -> dict[str, Any]:
        data = nplusone_objects()
        model.objects.all().delete()
        return data

    return setup


def respond(content: Any) -> bytes:
    """What a view's response does with its content (iterables are consumed, objects become text)."""
    return HttpResponse(content).content


# nplusone's views, one function each (the first user's pk instead of a literal 1).
def v_one_to_one(env: Env) -> None:
    occupations = list(np.Occupation.objects.all())
    respond(occupations[0].user.id)


def v_one_to_one_first(env: Env) -> None:
    occupation = np.Occupation.objects.first()
    respond(occupation.user.id)


def v_one_to_many(env: Env) -> None:
    users = np.User.objects.all().prefetch_related("addresses")
    respond(users[0].addresses.all())


def v_many_to_many(env: Env) -> None:
    users = list(np.User.objects.all())
    respond(users[0].hobbies.all())


def v_many_to_many_get(env: Env) -> None:
    user = np.User.objects.get(pk=env.data["user"].pk)
    respond(user.hobbies.all())


def v_prefetch_one_to_one(env: Env) -> None:
    users = np.User.objects.all().select_related("occupation")
    respond(users[0].occupation)


def v_prefetch_one_to_one_unused(env: Env) -> None:
    users = np.User.objects.all().prefetch_related("occupation")
    respond(users[0])


def v_prefetch_many_to_many(env: Env) -> None:
    users = list(np.User.objects.all().prefetch_related("hobbies"))
    # Class-level descriptor access (no instance) must be harmless.
    _ = (np.Occupation.user, np.User.occupation)
    respond(list(user.hobbies.all()) for user in users)


def v_many_to_many_impossible(env: Env) -> None:
    user = np.User.objects.first()
    list(np.User.objects.all())
    respond(user.hobbies.all())


def v_many_to_many_impossible_one(env: Env) -> None:
    user = np.User.objects.get(pk=env.data["user"].pk)
    list(np.User.objects.all())
    respond(user.hobbies.all())


HOBBIES_TEMPLATE = """
{% for user in users %}
    {% for hobby in user.hobbies.all %}
        {{ hobby.id }}
    {% endfor %}
{% endfor %}
"""


def v_prefetch_many_to_many_render(env: Env) -> None:
    users = np.User.objects.all().prefetch_related("hobbies")
    respond(Template(HOBBIES_TEMPLATE).render(Context({"users": users})))


def v_prefetch_many_to_many_unused(env: Env) -> None:
    users = np.User.objects.all().prefetch_related("hobbies")
    respond(users[0])


def v_prefetch_many_to_many_single(env: Env) -> None:
    hobbies = np.Hobby.objects.all().prefetch_related("users")
    respond(hobbies[0].users.all()[0])


def v_prefetch_many_to_many_no_related(env: Env) -> None:
    pets = np.Pet.objects.all().prefetch_related("allergy_set")
    respond(pets[0].allergy_set.all()[0])


def v_select_one_to_one(env: Env) -> None:
    users = np.User.objects.all().select_related("occupation")
    respond(users[0].occupation)


def v_select_one_to_one_unused(env: Env) -> None:
    users = np.User.objects.all().select_related("occupation")
    respond(users[0])


def v_select_many_to_one(env: Env) -> None:
    pets = list(np.Pet.objects.all().select_related("user"))
    respond(pets[0].user if pets else None)


def v_select_many_to_one_unused(env: Env) -> None:
    pets = list(np.Pet.objects.all().select_related("user"))
    respond(pets[0])


def v_prefetch_nested(env: Env) -> None:
    pets = list(np.Pet.objects.all().prefetch_related("user__occupation"))
    respond(pets[0].user.occupation)


def v_prefetch_nested_unused(env: Env) -> None:
    pets = list(np.Pet.objects.all().prefetch_related("user__occupation"))
    respond(pets[0])


def v_select_nested(env: Env) -> None:
    pets = list(np.Pet.objects.all().select_related("user__occupation"))
    respond(pets[0].user.occupation)


def v_select_nested_unused(env: Env) -> None:
    pets = list(np.Pet.objects.all().select_related("user__occupation"))
    respond(pets[0])


# nplusone's model-level tests that assert no lazy load was signalled.
def t_one_to_one_select(env: Env) -> None:
    np.Occupation.objects.select_related("user").first().user


def t_one_to_one_prefetch(env: Env) -> None:
    np.Occupation.objects.prefetch_related("user").first().user


def t_many_to_one_select(env: Env) -> None:
    addresses = list(np.Address.objects.select_related("user").all())
    addresses[0].user


def t_many_to_one_prefetch(env: Env) -> None:
    addresses = list(np.Address.objects.prefetch_related("user").all())
    addresses[0].user


def t_many_to_many_prefetch(env: Env) -> None:
    users = np.User.objects.all().prefetch_related("hobbies")
    list(users[0].hobbies.all())


def t_many_to_many_reverse_prefetch(env: Env) -> None:
    hobbies = np.Hobby.objects.all().prefetch_related("users")
    list(hobbies[0].users.all())


def t_values(env: Env) -> None:
    list(np.User.objects.values("id"))


def nplusone_cases() -> list[Case]:
    tests = "nplusone tests/testapp/testapp/tests.py::"
    integration = tests + "TestIntegration::"
    both = ("n_plus_one", "unused_prefetch")
    cases: list[Case] = []

    def add(name: str, source: str, expect: str, block: Block, relations: tuple[str, ...] = (), *,
            kind: str = "n_plus_one", lookup: str | None = None, silent: tuple[str, ...] = both,
            setup: Callable[[], dict[str, Any]] = nplusone_objects, allow: tuple[dict[str, str], ...] = ()) -> None:
        cases.append(Case(f"nplusone/{name}", source, expect, setup, (block,), relations, kind=kind, lookup=lookup,
                          silent=silent, threshold=1, allow=allow))

    # A lazy load on a row of a multi-row result: reported at nplusone's threshold of one.
    add("one_to_one", integration + "test_one_to_one", "report", v_one_to_one, ("testapp.Occupation.user",),
        lookup="user")
    add("many_to_many", integration + "test_many_to_many", "report", v_many_to_many, ("testapp.User.hobbies",),
        lookup="hobbies")
    # Eager loads never read: every level named.
    for name, block, relations, lookup in (
        ("prefetch_one_to_one_unused", v_prefetch_one_to_one_unused, ("testapp.User.occupation",), "occupation"),
        ("prefetch_many_to_many_unused", v_prefetch_many_to_many_unused, ("testapp.User.hobbies",), "hobbies"),
        ("select_one_to_one_unused", v_select_one_to_one_unused, ("testapp.User.occupation",), "occupation"),
        ("select_many_to_one_unused", v_select_many_to_one_unused, ("testapp.Pet.user",), "user"),
        ("prefetch_nested_unused", v_prefetch_nested_unused, ("testapp.Pet.user", "testapp.User.occupation"),
         "user__occupation"),
        ("select_nested_unused", v_select_nested_unused, ("testapp.Pet.user", "testapp.User.occupation"),
         "user__occupation"),
    ):
        add(name, integration + f"test_{name}", "report", block, relations, kind="unused_prefetch", lookup=lookup)

    # Quiet: model-level tests (only lazy loads are asserted) ...
    lazy_only = ("n_plus_one",)
    for name, source, block in (
        ("one_to_one_select", "TestOneToOne::test_one_to_one_select", t_one_to_one_select),
        ("one_to_one_prefetch", "TestOneToOne::test_one_to_one_prefetch", t_one_to_one_prefetch),
        ("many_to_one_select", "TestManyToOne::test_many_to_one_select", t_many_to_one_select),
        ("many_to_one_prefetch", "TestManyToOne::test_many_to_one_prefetch", t_many_to_one_prefetch),
        ("many_to_many_prefetch", "TestManyToMany::test_many_to_many_prefetch", t_many_to_many_prefetch),
        ("many_to_many_reverse_prefetch", "TestManyToMany::test_many_to_many_reverse_prefetch",
         t_many_to_many_reverse_prefetch),
    ):
        add(name, tests + source, "quiet", block, silent=lazy_only)
    # ... and requests (nothing logged at all).
    for name, block, setup in (
        ("one_to_one_first", v_one_to_one_first, nplusone_objects),
        ("one_to_many", v_one_to_many, nplusone_objects),
        ("many_to_many_get", v_many_to_many_get, nplusone_objects),
        ("prefetch_one_to_one", v_prefetch_one_to_one, nplusone_objects),
        ("prefetch_many_to_many", v_prefetch_many_to_many, nplusone_objects),
        ("many_to_many_impossible", v_many_to_many_impossible, nplusone_objects),
        ("many_to_many_impossible_one", v_many_to_many_impossible_one, nplusone_objects),
        ("prefetch_many_to_many_render", v_prefetch_many_to_many_render, nplusone_objects),
        ("prefetch_many_to_many_empty", v_prefetch_many_to_many, without(np.User)),
        ("prefetch_many_to_many_render_empty", v_prefetch_many_to_many_render, without(np.User)),
        ("prefetch_many_to_many_single", v_prefetch_many_to_many_single, nplusone_objects),
        ("prefetch_many_to_many_no_related_name", v_prefetch_many_to_many_no_related, nplusone_objects),
        ("select_one_to_one", v_select_one_to_one, nplusone_objects),
        ("select_many_to_one", v_select_many_to_one, nplusone_objects),
        ("select_many_to_one_empty", v_select_many_to_one, without(np.Pet)),
        ("prefetch_nested", v_prefetch_nested, nplusone_objects),
        ("select_nested", v_select_nested, nplusone_objects),
    ):
        add(name, integration + f"test_{name}", "quiet", block, setup=setup)
    add("values", tests + "test_values", "quiet", t_values)
    # Allow-listed: the many-to-many lazy load above, silenced by model pattern.
    add("many_to_many_allowlist", integration + "test_many_to_many_whitelist", "quiet", v_many_to_many,
        allow=({"model": "testapp.User"},))
    add("many_to_many_allowlist_wildcard", integration + "test_many_to_many_whitelist_wildcard", "quiet",
        v_many_to_many, allow=({"model": "testapp.*"},))
    return cases


def all_cases() -> list[Case]:
    return zeal_cases() + nplusone_cases()


CASES: list[Case] = all_cases()
ALLOWLIST_CASES = {"nplusone/many_to_many_allowlist", "nplusone/many_to_many_allowlist_wildcard"}
