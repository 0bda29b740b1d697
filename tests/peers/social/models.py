"""The shape of django-zeal's test models (MIT licence, Copyright 2024 Tao Bojlén), written anew.

Every kind of relation appears once: forward/reverse FK (``Post.author`` / ``User.posts``),
forward/reverse one-to-one (``Profile.user`` / ``User.profile``), many-to-many both ways
with and without a related name (``following``/``followers``, ``blocked``/``user_set``),
a GenericRelation (``User.tags``) and its GenericForeignKey (``Tag.obj``).
"""

from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models


class User(models.Model):
    username = models.TextField()
    # Not symmetrical (the target is named, not "self"): user.following / user.followers.
    following = models.ManyToManyField("User", related_name="followers")
    # No related_name on purpose: the reverse accessor is user.user_set.
    blocked = models.ManyToManyField("User")
    tags = GenericRelation("Tag")


class Profile(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE)
    display_name = models.TextField()


class Post(models.Model):
    author = models.ForeignKey(User, on_delete=models.CASCADE, related_name="posts")
    text = models.TextField()


class Tag(models.Model):
    label = models.TextField()
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, null=True, blank=True)
    object_id = models.PositiveIntegerField(null=True, blank=True)
    obj = GenericForeignKey("content_type", "object_id")


class Node(models.Model):
    """A model whose equality reads its own foreign key (zeal's recursion regression cases)."""

    name = models.CharField(max_length=100)
    relation = models.ForeignKey("self", null=True, on_delete=models.CASCADE, related_name="related")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Node):
            return NotImplemented
        return self.relation == other.relation and self.name == other.name

    __hash__ = models.Model.__hash__
