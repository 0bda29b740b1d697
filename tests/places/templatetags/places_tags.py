from django import template

register = template.Library()


@register.inclusion_tag("places/results.html")
def show_posts(thread):
    posts = thread.posts.all()
    return {"posts": posts}
