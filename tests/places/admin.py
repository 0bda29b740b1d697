"""The admin as Django's tutorial writes it: a thread with its posts edited inline."""

from django.contrib import admin

from .models import Post, Thread


class PostInline(admin.TabularInline):
    model = Post
    fields = ["author", "body"]
    extra = 1


@admin.register(Thread)
class ThreadAdmin(admin.ModelAdmin):
    inlines = [PostInline]
