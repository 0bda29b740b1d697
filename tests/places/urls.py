from ddtpp_fakelib.views import model_table, rows_by_key
from django.urls import path

from . import views
from .models import Thread

app_name = "places"
urlpatterns = [
    path("threads/", views.ThreadListView.as_view(), name="thread-list"),
    path("threads/by-title/", views.ThreadQuerysetListView.as_view(), name="thread-by-title"),
    path("threads/<int:pk>/", views.ThreadDetailView.as_view(), name="thread-detail"),
    path("threads/posts/", views.thread_posts, name="thread-posts"),
    path("threads/results/", views.ThreadResultsView.as_view(), name="thread-results"),
    path("threads/tagged/", views.ThreadTaggedView.as_view(), name="thread-tagged"),
    path("threads/search/", views.ThreadSearchView.as_view(), name="thread-search"),
    path("threads/table/", model_table, {"model": Thread, "columns": ["title", "author__name"]}, name="thread-table"),
    path("threads/table/first/", model_table, {"model": Thread, "columns": ["title", "first_published"]},
         name="thread-table-first"),
    path("threads/table/first/prefetched/", model_table,
         {"model": Thread, "columns": ["title", "first_published"], "prefetch": ["posts"]},
         name="thread-table-first-prefetched"),
    path("threads/by-key/", rows_by_key, {"model": Thread}, name="thread-by-key"),
    path("posts/recent/", views.RecentPostsView.as_view(), name="recent-posts"),
    path("posts/published/", views.published_posts, name="published-posts"),
    path("posts/titles/", views.published_titles, name="published-titles"),
    path("posts/live/", views.live_posts_page, name="live-posts"),
    path("posts/live/titles/", views.live_titles_page, name="live-titles"),
    path("posts/feed/", views.PostFeedView.as_view(), name="post-feed"),
    path("posts/archive/", views.PostArchiveView.as_view(), name="post-archive"),
    path("projects/", views.project_list, name="project-list"),
    path("categories/", views.CategoryListView.as_view(), name="category-list"),
    path("categories/tree/", views.category_tree, name="category-tree"),
]
