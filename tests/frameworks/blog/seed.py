from .models import ArticlePage, BlogAuthor, BlogPage, GalleryImage


def seed(pages: int = 4) -> None:
    writers = [BlogAuthor.objects.create(name=f"Writer {i}") for i in range(3)]
    for i in range(pages):
        ArticlePage.objects.create(title=f"Article {i}", body="text")
        page = BlogPage.objects.create(title=f"Post {i}")
        page.authors.set(writers[: 1 + i % 3])
        page.save()
        page.tags.add(f"tag{i % 2}", "common")
        GalleryImage.objects.create(page=page, caption=f"Image {i}")
