"""One page per scenario, each with an N+1 (the "bad" version): generic views as Django's
"Built-in class-based generic views" docs write them, function views, a library's views."""

from ddtpp_fakelib.views import SearchListView  # a third-party app (tests/frameworks/fakelib.py)
from django.shortcuts import render
from django.views.generic import DetailView, ListView, TemplateView

from .models import Category, Post, Project, Thread


class ThreadListView(ListView):
    model = Thread


class ThreadQuerysetListView(ListView):
    queryset = Thread.objects.order_by("title")


class ThreadDetailView(DetailView):
    model = Thread


def thread_posts(request):
    return render(request, "places/thread_posts.html", {"threads": Thread.objects.all()})


class RecentPostsView(TemplateView):
    template_name = "places/recent_posts.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["recent"] = Post.objects.order_by("-id")[:20]
        return context


class ThreadResultsView(ListView):
    model = Thread
    template_name = "places/thread_results.html"


class ThreadTaggedView(ListView):
    model = Thread
    template_name = "places/thread_tagged.html"


class ThreadSearchView(SearchListView):
    model = Thread
    search_fields = ["title"]


def project_list(request):
    return render(request, "places/project_list.html", {"projects": Project.objects.all()})


class CategoryListView(ListView):
    model = Category


def category_tree(request):
    return render(request, "places/category_tree.html", {"nodes": Category.objects.root_nodes()})


# Two pages on the same manager: one reads tags, the other does not.
def published_posts(request):
    return render(request, "places/published_posts.html", {"posts": Post.published.all()})


def published_titles(request):
    return render(request, "places/published_titles.html", {"posts": Post.published.all()})


# A project mixin shared by two views: its get_queryset line serves both.
class PublishedPostsMixin:
    def get_queryset(self):
        return Post.published.order_by("pk")


class PostFeedView(PublishedPostsMixin, ListView):
    template_name = "places/post_feed.html"


class PostArchiveView(PublishedPostsMixin, ListView):
    template_name = "places/published_titles.html"
    context_object_name = "posts"


# A project helper both pages call: its one line builds the queryset of each. A prefetch there
# for the page that reads tags is one more query on the page that does not.
def live_posts():
    return Post.objects.filter(draft=False).order_by("pk")


def live_posts_page(request):
    return render(request, "places/published_posts.html", {"posts": live_posts()})


def live_titles_page(request):
    return render(request, "places/published_titles.html", {"posts": live_posts()})
