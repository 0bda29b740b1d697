from django.urls import path

from tests.proofs import views

urlpatterns = [
    path("specific/", views.specific_pages),
]
