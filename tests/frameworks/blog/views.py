from .models import BlogPage, Page


def page_summaries():
    pages = BlogPage.objects.order_by("pk")
    return [
        (
            page.title,
            [tag.name for tag in page.tags.all()],
            [author.name for author in page.authors.all()],
            [image.caption for image in page.gallery_images.all()],
        )
        for page in pages
    ]


def specific_titles():
    pages = Page.objects.order_by("pk")
    return [page.specific.title for page in pages]
