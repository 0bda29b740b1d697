"""A site for the crawl (tests/test_prefetch_report_command.py): a logout route that logs out on
GET, a page that logs out under another name, a page for logged-in users only, and a sitemap that
lists pages no parameterless route reaches."""

from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.sitemaps import Sitemap
from django.contrib.sitemaps.views import sitemap
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import include, path

from tests.places.models import Thread


def logout_on_get(request):
    logout(request)
    return redirect("/")


@login_required
def account(request):
    return HttpResponse(f"hello {request.user}")


class ThreadSitemap(Sitemap):
    def items(self):
        return Thread.objects.order_by("pk")

    def location(self, item):
        return f"/places/threads/{item.pk}/"


class AbsoluteSitemap(Sitemap):
    """As a CMS writes its pages' locations: absolute URLs (``page.get_full_url()``)."""

    def items(self):
        return ["/places/posts/live/?page=1"]

    def location(self, item):
        return f"http://localhost{item}"


urlpatterns = [
    path("accounts/logout/", logout_on_get, name="logout"),
    path("bye/", logout_on_get, name="bye"),
    path("account/", account, name="account"),
    path("sitemap.xml", sitemap, {"sitemaps": {"threads": ThreadSitemap, "pages": AbsoluteSitemap}}, name="sitemap"),
    path("places/", include("tests.places.urls")),
]
