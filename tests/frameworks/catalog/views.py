from django.http import HttpResponse
from django.shortcuts import render
from django.views.generic import ListView

from .forms import CopyForm
from .models import Author, Book


def jinja_books(request):
    books = Book.objects.order_by("pk")
    return render(request, "catalog/books.jinja", {"books": books})


def copy_form(request):
    form = CopyForm()
    return HttpResponse(form.as_p())


async def async_books(request):
    names = []
    async for book in Book.objects.order_by("pk"):
        author = await Author.everyone.aget(pk=book.author_id)
        names.append(author.name)
    return HttpResponse(", ".join(names))


def export_library(request):
    from . import exports  # imports ddtpp_fakelib, installed into site-packages by the tests

    return HttpResponse(f"<html><body>{len(exports.export_everything())} rows</body></html>")


def export_visible(request):
    from . import exports

    return HttpResponse(f"<html><body>{len(exports.export_visible())} rows</body></html>")


class BookListView(ListView):
    """Django's generic view builds the queryset (MultipleObjectMixin.get_queryset)."""

    model = Book
    template_engine = "jinja2"
    template_name = "catalog/book_list.jinja"


class FixedBookListView(BookListView):
    # The override the panel suggests, pasted.
    def get_queryset(self):
        return super().get_queryset().select_related("author")
