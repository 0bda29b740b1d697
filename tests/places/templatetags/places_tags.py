from django import template
from ..models import Tag

register = template.Library()


@register.inclusion_tag("places/results.html")
def show_posts(thread):
    posts = thread.posts.all()
    return {"posts": posts}


@register.simple_tag
def tag_url(name):
    """A URL looked up by a name, as CMS slug tags do: one query per call."""
    tag = Tag.objects.filter(name=name).first()
    return f"/tags/{tag.pk}/" if tag is not None else ""


@register.filter
def tag_link(name):
    """The same lookup as a filter."""
    return tag_url(name)
