"""Loops written in Python (not templates) over the forum of tests/places/."""

from .models import Thread


def latest_posts():
    """The two newest posts of every thread, kept in a variable and iterated below."""
    bodies = []
    for thread in Thread.objects.order_by("pk"):
        latest = thread.posts.order_by("-id")[:2]
        for post in latest:
            bodies.append(post.body)
    return bodies


def thread_author(pk):
    """A helper of the project that loads through a library shortcut."""
    from django.shortcuts import get_object_or_404

    return get_object_or_404(Thread, pk=pk).author


def same_thread_per_post(thread):
    """The same thread looked up again for each of its posts, through the helper."""
    return [thread_author(thread.pk).name for _post in thread.posts.all()]


def posts_by(thread, draft):
    """A helper every caller filters with its own value."""
    return list(thread.posts.filter(draft=draft))


def drafts_and_published():
    """Both sides of one relation, read per thread through the helper."""
    pairs = []
    for thread in Thread.objects.order_by("pk"):
        drafts = posts_by(thread, True)
        published = posts_by(thread, False)
        pairs.append((drafts, published))
    return pairs


def thread_kinds():
    """The content type of the model looked up by name for every thread."""
    from django.contrib.contenttypes.models import ContentType

    kinds = []
    for thread in Thread.objects.order_by("pk"):
        kind = ContentType.objects.get(app_label="places", model="thread")
        kinds.append((thread.pk, kind.pk))
    return kinds
