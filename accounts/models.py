"""The custom user: UUID primary key, username and email NFKC-normalised and unique ignoring case."""

import unicodedata
import uuid

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.db.models.functions import Upper


class UserManager(DjangoUserManager):
    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        """Normalise an email as the username is (NFKC), then lower-case its domain as Django does.

        Django's email validator lets the Kelvin sign and the long s through in the local part (its
        ASCII classes match them when ignoring case), and IDNA lets fullwidth domains through:
        without NFKC, "Kate@example.com" with a Kelvin sign would be another address.
        """
        return super().normalize_email(unicodedata.normalize("NFKC", email or ""))

    def get_by_natural_key(self, username: str) -> "User":
        """Find a user for login by username as stored: NFKC-normalised, ignoring case."""
        return self.get(username__iexact=self.model.normalize_username(username))


class User(AbstractUser):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField("email address", max_length=254)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = UserManager()

    REQUIRED_FIELDS = ["email"]

    class Meta:
        ordering = ["username"]
        constraints = [
            # UPPER, as `__iexact` lookups compare: with LOWER, "ivan" and the same name with a
            # dotless i could both exist, and a login's iexact lookup would find two users.
            models.UniqueConstraint(
                Upper("username"),
                name="accounts_user_username_ci_unique",
                violation_error_message="A user with that username already exists.",
            ),
            models.UniqueConstraint(
                Upper("email"),
                name="accounts_user_email_ci_unique",
                condition=~models.Q(email=""),
                violation_error_message="A user with that email already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.username
