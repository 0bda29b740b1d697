"""Views-like functions over tests/proofs/models.py: each loop is one shape of issue 11.

Tests substitute a finding's rewritten line for its origin line in a copy of this module,
so every loop keeps its queryset on one line of its own.
"""

from tests.proofs.libaccessor import primary_image
from tests.proofs.models import ArticlePage, Author, Bookmark, Circuit, Page, Post, Product


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
