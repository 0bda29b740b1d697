"""Pages over tests/proofs/scenarios.py, for the toolbar's end-to-end tests."""

from django.http import HttpResponse
from django.utils.html import escape

from tests.proofs import scenarios


def specific_pages(request):
    rows = scenarios.specific_pages()
    items = "".join(f"<li>{escape(title)}: {escape(', '.join(authors))}, {escape(image)}</li>"
                    for title, authors, image in rows)
    return HttpResponse(f"<html><body><ul>{items}</ul></body></html>")
