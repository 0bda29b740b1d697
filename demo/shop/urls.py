from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.index, name="index"),
    path("forward-fk/bad/", views.forward_fk_bad, name="forward-fk-bad"),
    path("forward-fk/fixed/", views.forward_fk_fixed, name="forward-fk-fixed"),
    path("reverse-fk/bad/", views.reverse_fk_bad, name="reverse-fk-bad"),
    path("reverse-fk/fixed/", views.reverse_fk_fixed, name="reverse-fk-fixed"),
    path("reverse-fk-default-name/bad/", views.reverse_fk_default_name_bad, name="reverse-fk-default-name-bad"),
    path("reverse-fk-default-name/fixed/", views.reverse_fk_default_name_fixed, name="reverse-fk-default-name-fixed"),
    path("m2m/bad/", views.m2m_bad, name="m2m-bad"),
    path("m2m/fixed/", views.m2m_fixed, name="m2m-fixed"),
    path("m2m-reverse/bad/", views.m2m_reverse_bad, name="m2m-reverse-bad"),
    path("m2m-reverse/fixed/", views.m2m_reverse_fixed, name="m2m-reverse-fixed"),
    path("m2m-self/bad/", views.m2m_self_bad, name="m2m-self-bad"),
    path("m2m-self/fixed/", views.m2m_self_fixed, name="m2m-self-fixed"),
    path("o2o/bad/", views.o2o_bad, name="o2o-bad"),
    path("o2o/fixed/", views.o2o_fixed, name="o2o-fixed"),
    path("generic/bad/", views.generic_bad, name="generic-bad"),
    path("generic/fixed/", views.generic_fixed, name="generic-fixed"),
    path("nested/bad/", views.nested_bad, name="nested-bad"),
    path("nested/fixed/", views.nested_fixed, name="nested-fixed"),
    path("template-loop/bad/", views.template_loop_bad, name="template-loop-bad"),
    path("template-loop/fixed/", views.template_loop_fixed, name="template-loop-fixed"),
    path("deferred/bad/", views.deferred_bad, name="deferred-bad"),
    path("deferred/fixed/", views.deferred_fixed, name="deferred-fixed"),
    path("filtered-prefetch/bad/", views.filtered_prefetch_bad, name="filtered-prefetch-bad"),
    path("filtered-prefetch/fixed/", views.filtered_prefetch_fixed, name="filtered-prefetch-fixed"),
    path("count-per-row/bad/", views.count_per_row_bad, name="count-per-row-bad"),
    path("count-per-row/fixed/", views.count_per_row_fixed, name="count-per-row-fixed"),
    path("hand-written/bad/", views.hand_written_bad, name="hand-written-bad"),
    path("hand-written/fixed/", views.hand_written_fixed, name="hand-written-fixed"),
    path("duplicates/bad/", views.duplicates_bad, name="duplicates-bad"),
    path("duplicates/fixed/", views.duplicates_fixed, name="duplicates-fixed"),
    path("unindexed/bad/", views.unindexed_bad, name="unindexed-bad"),
    path("unindexed/fixed/", views.unindexed_fixed, name="unindexed-fixed"),
    path("unused-prefetch/bad/", views.unused_prefetch_bad, name="unused-prefetch-bad"),
    path("unused-prefetch/fixed/", views.unused_prefetch_fixed, name="unused-prefetch-fixed"),
]
