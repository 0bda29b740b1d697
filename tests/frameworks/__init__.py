"""Test apps that drive the ORM through frameworks: DRF, strawberry-django, graphene-django,
Django forms, Jinja2, async views, django-taggit and django-modelcluster.

Their modules are imported when the URLconf is (before any capture starts), as under
``runserver``; ``fakelib_src`` is a tiny third-party package installed into site-packages.
"""
