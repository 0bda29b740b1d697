from django.urls import path

from . import views

urlpatterns = [
    path("params/<slug:kind>/", views.params_view),
    path("many-queries/<int:count>/", views.many_queries),
    path("async/<slug:name>/", views.async_scenario),
    path("distinct-sql/<int:count>/", views.distinct_sql),
    path("together/<path:target>", views.together),
    path("many-roots/<int:count>/", views.many_roots),
    *(path(f"{slug}/", view) for slug, view in views.VIEWS.items()),
]
