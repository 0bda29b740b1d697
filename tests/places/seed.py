"""Data for every page of ``views.py``: each page's query count grows with ``n``."""

from .models import ArtProject, Author, Category, Post, ResearchProject, Tag, Thread


def seed(n: int = 3) -> None:
    """``n`` more of everything (call it again to grow the pages: names stay unique)."""
    run = Thread.objects.count()
    authors = [Author.objects.create(name=f"Author {run}.{i}") for i in range(n)]
    tags = [Tag.objects.get_or_create(name=name)[0] for name in ("django", "orm", "templates")]
    for i in range(n):
        thread = Thread.objects.create(title=f"Thread {run}.{i}", author=authors[i])
        for j in range(n):  # n posts per thread: the DetailView's page grows too
            post = Post.objects.create(thread=thread, author=authors[(i + j) % n], body=f"Post {run}.{i}.{j}",
                                       draft=j == n - 1)
            post.tags.set(tags[: 1 + j % len(tags)])
    for i in range(n):
        ArtProject.objects.create(topic=f"Painting {run}.{i}", artist=f"Artist {run}.{i}")
        ResearchProject.objects.create(topic=f"Research {run}.{i}", supervisor=authors[i])
    for i in range(n):
        root = Category.objects.create(name=f"Category {run}.{i}")
        for j in range(2):
            Category.objects.create(name=f"Category {run}.{i}.{j}", parent=root)
