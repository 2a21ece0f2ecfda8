"""The custom user: UUID primary key, username and email NFKC-normalised and unique ignoring case."""

import unicodedata
import uuid

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.db.models import F
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
    # Tokens carry the version they were issued under (accounts.tokens); a password change bumps it,
    # so every token issued before the change is refused.
    password_version = models.PositiveIntegerField(default=0, editable=False)

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

    def set_unusable_password(self) -> None:
        super().set_unusable_password()
        self._password_disabled = True

    def save(self, *args, **kwargs) -> None:
        """Save; a changed password of an existing user also bumps `password_version`.

        Here rather than in set_password() because save() is where every password change ends
        (the API, the admin's forms, `changepassword`, any `set_password(); save()`), and where
        Django itself tells a change from a hash upgrade at login: set_password() leaves the raw
        password in `_password` until the save, the upgrade clears it first. The bump is an SQL
        increment, so two changes racing each move the version on.
        """
        changed = self._password is not None or getattr(self, "_password_disabled", False)
        bump = changed and not self._state.adding
        if bump:
            self.password_version = F("password_version") + 1
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "password_version"}
        super().save(*args, **kwargs)
        self._password_disabled = False
        if bump:
            self.refresh_from_db(fields=["password_version"])
