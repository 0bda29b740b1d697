"""The shape of nplusone's Django test models (MIT licence, Copyright 2016 Joshua Carp), written anew.

``User.hobbies`` / ``Hobby.users`` (many-to-many), ``Pet.user`` / ``User.pet_set`` (FK without
related name), ``Allergy.pets`` / ``Pet.allergy_set`` (many-to-many without related name),
``Occupation.user`` / ``User.occupation`` (one-to-one), ``Address.user`` / ``User.addresses``.
"""

from __future__ import annotations

from django.db import models


class Hobby(models.Model):
    pass


class User(models.Model):
    hobbies = models.ManyToManyField(Hobby, related_name="users")


class Pet(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE)


class Allergy(models.Model):
    pets = models.ManyToManyField(Pet)


class Occupation(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="occupation")


class Address(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="addresses")
