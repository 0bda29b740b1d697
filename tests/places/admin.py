"""The admin as Django's tutorial writes it: a thread with its posts edited inline."""

from django.contrib import admin

from mptt.admin import MPTTModelAdmin

from .models import Category, Post, Thread


class PostInline(admin.TabularInline):
    model = Post
    fields = ["author", "body"]
    extra = 1


@admin.register(Thread)
class ThreadAdmin(admin.ModelAdmin):
    inlines = [PostInline]


# django-mptt's documentation registers a tree with its ModelAdmin class.
admin.site.register(Category, MPTTModelAdmin)
