"""Views-like functions over tests/proofs/models.py: each loop is one shape of issue 11.

Tests substitute a finding's rewritten line for its origin line in a copy of this module,
so every loop keeps its queryset on one line of its own.
"""

from django.db.models import Prefetch

from tests.proofs.libaccessor import primary_image
from tests.proofs.models import (
    ArticlePage, Author, Bookmark, Cable, CableTermination, Circuit, Comment, GalleryImage, Page, Post, Product,
)


def gallery_index():
    posts = Post.objects.order_by("pk")
    return [(post.title, post.main_image().file) for post in posts]


def three_relations():
    posts = Post.objects.order_by("pk")
    out = []
    for post in posts:
        out.append((post.author.name, sorted(t.name for t in post.tags.all()), len(post.comments.all())))
    return out


def downcast_pages():
    pages = Page.objects.order_by("pk")
    return [page.articlepage.author.name for page in pages]


def both_ends():
    circuits = Circuit.objects.order_by("pk")
    out = []
    for circuit in circuits:
        a = circuit.term_a.site.name
        z = circuit.term_z.site.name
        out.append((a, z))
    return out


def chunked():
    out = []
    for post in Post.objects.order_by("pk").iterator(chunk_size=3):
        out.append(post.author.name)
    return out


def live_posts():
    posts = Post.live.order_by("pk")
    return [post.author.name for post in posts]


def library_reads():
    posts = Post.objects.order_by("pk")
    return [primary_image(post) for post in posts]


def bookmarks():
    marks = Bookmark.objects.order_by("pk")
    return [mark.target.author.name for mark in marks]


def mixed_bookmarks():
    marks = Bookmark.objects.order_by("pk")
    return [mark.target.author.name for mark in marks if hasattr(mark.target, "author")]


def mixed_bookmark_tags():
    marks = Bookmark.objects.order_by("pk")
    return [sorted(t.name for t in mark.target.tags.all()) for mark in marks if hasattr(mark.target, "tags")]


def termination_devices():
    ends = CableTermination.objects.order_by("pk")
    return [end.termination.device.name for end in ends]


def cable_devices():
    cables = Cable.objects.order_by("pk")
    out = []
    for cable in cables:
        out.append((cable.label, sorted(end.termination.device.name for end in cable.terminations.all())))
    return out


def cable_sites():
    cables = Cable.objects.order_by("pk")
    return [sorted(end.termination.device.site.name for end in cable.terminations.all()) for cable in cables]


def cable_ends():
    cables = Cable.objects.order_by("pk")
    return [sorted(end.termination.name for end in cable.terminations.all()) for cable in cables]


def prefetched_cable_devices():
    cables = Cable.objects.prefetch_related("terminations").order_by("pk")
    return [sorted(end.termination.device.name for end in cable.terminations.all()) for cable in cables]


def known_ends_devices():
    cables = Cable.objects.prefetch_related("terminations__termination").order_by("pk")
    return [sorted(end.termination.device.name for end in cable.terminations.all()) for cable in cables]


def known_ends_sites():
    cables = Cable.objects.prefetch_related("terminations", "terminations__termination").order_by("pk")
    return [sorted(end.termination.device.site.name for end in cable.terminations.all()) for cable in cables]


def deferred_comments():
    posts = Post.objects.prefetch_related(Prefetch("comments", queryset=Comment.objects.only("id", "post"))).order_by("pk")
    return [sorted(comment.body for comment in post.comments.all()) for post in posts]


def deferred_gallery():
    posts = Post.objects.prefetch_related(Prefetch("gallery_images", queryset=GalleryImage.objects.select_related("image").only("post", "image__id"))).order_by("pk")
    return [[item.image.file for item in post.gallery_images.all()] for post in posts]


def deferred_among_lookups():
    posts = Post.objects.prefetch_related("tags", Prefetch("comments", queryset=Comment.objects.defer("body")), "gallery_images").order_by("pk")
    return [(sorted(t.name for t in post.tags.all()), sorted(c.body for c in post.comments.all()), len(post.gallery_images.all())) for post in posts]


def deferred_filtered():
    posts = Post.objects.prefetch_related(Prefetch("comments", queryset=Comment.objects.filter(body__endswith="0").only("id", "post"))).order_by("pk")
    return [[comment.body for comment in post.comments.all()] for post in posts]


def article_pages():
    pages = Page.objects.filter(live=True).order_by("pk")
    out = []
    for page in pages:
        article = page.articlepage
        out.append((article.title, sorted(a.name for a in article.authors.all()), article.image.file))
    return out


def specific_pages():
    pages = Page.objects.filter(live=True).order_by("pk")
    out = []
    for page in pages:
        article = page.specific
        out.append((article.title, sorted(a.name for a in article.authors.all()), article.image.file))
    return out


def specific_titles():
    pages = Page.objects.filter(live=True).order_by("pk")
    return [page.specific.title for page in pages]


def hand_downcast():
    pages = Page.objects.filter(live=True).order_by("pk")
    out = []
    for page in pages:
        article = ArticlePage.objects.get(id=page.id)
        out.append((article.title, article.image.file))
    return out


def author_cards():
    posts = Post.objects.order_by("pk")
    out = []
    for post in posts:
        author = Author.objects.get(pk=post.author_id)
        out.append((post.title, author.name, sorted(p.title for p in author.posts.all())))
    return out


def search_hits(ids):
    return [Product.objects.get(pk=hit_id).name for hit_id in ids]


def pages_of(live):
    return Page.objects.filter(live=live).order_by("pk")


def page_cards():
    return [(page.specific.title, page.specific.image.file) for page in pages_of(True)]


def page_titles(live):
    return [page.title for page in pages_of(live)]
