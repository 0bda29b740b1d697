from django.urls import re_path

from . import page_view

urlpatterns = [re_path(r"^(?P<path>.*)$", page_view)]
