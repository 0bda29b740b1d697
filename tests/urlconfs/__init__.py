"""Small URLconfs for the URL system check (tests/test_checks.py): the toolbar's URLs before
and after a catch-all page router, missing, and a URLconf that cannot be imported."""

from django.http import HttpResponse


def page_view(request, path=""):
    return HttpResponse(f"page {path}")
