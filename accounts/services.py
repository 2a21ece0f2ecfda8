"""Account actions: signup, a password change, and using up a refresh token (refresh, logout)."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User


def _taken(field: str) -> ValidationError:
    return ValidationError({field: [f"A user with that {field} already exists."]})


def user_create(*, username: str, email: str, password: str, is_staff: bool = False) -> User:
    """Create a user after Django's password validators; a taken username or email is a 400.

    The case-insensitive unique constraints are the net for two signups racing with the same
    name: the loser's IntegrityError becomes the same field error as the check. The username and
    email are NFKC-normalised first (API.md), so look-alike spellings meet in that check.
    """
    username = User.normalize_username(username)
    email = User.objects.normalize_email(email)
    if User.objects.filter(username__iexact=username).exists():
        raise _taken("username")
    if User.objects.filter(email__iexact=email).exists():
        raise _taken("email")
    user = User(username=username, email=email, is_staff=is_staff)
    try:
        validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save(force_insert=True)
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
        raise _taken("email" if constraint == "accounts_user_email_ci_unique" else "username") from exc
    return user


def user_password_change(*, user: User, old_password: str, new_password: str) -> User:
    """Change the user's password; every token issued before it stops working (accounts.tokens).

    The old password is checked against the stored row, locked, not against the caller's user:
    that may come from a worker's cache (accounts.authentication) and still hold a password that
    staff have just replaced.
    """
    with transaction.atomic():
        stored = User.objects.select_for_update().get(pk=user.pk)
        if not stored.check_password(old_password):
            raise ValidationError({"old_password": ["Your old password was entered incorrectly."]})
        try:
            validate_password(new_password, user=stored)
        except ValidationError as exc:
            raise ValidationError({"new_password": exc.messages}) from exc
        stored.set_password(new_password)
        stored.save(update_fields=["password"])
    return stored


@contextmanager
def refresh_token_locked(refresh: str) -> Iterator[None]:
    """Run the block in a transaction holding the refresh token's row lock.

    Two refreshes (or a refresh and a logout) racing with one token would both pass simplejwt's
    blacklist check before either blacklisted it, and both get new tokens. With the lock the second
    waits until the first commits, then finds the token blacklisted. An invalid token locks nothing:
    simplejwt refuses it inside the block.
    """
    with transaction.atomic():
        try:
            jti = RefreshToken(refresh)[api_settings.JTI_CLAIM]
        except TokenError:
            jti = None
        if jti is not None:
            # order_by(): the model's default ordering joins its nullable user, and FOR UPDATE
            # cannot lock the nullable side of an outer join.
            list(OutstandingToken.objects.select_for_update().filter(jti=jti).order_by().values_list("id", flat=True))
        yield


def user_logout(*, user: User, refresh: str) -> None:
    """Blacklist the caller's refresh token so that it can never be used again."""
    with refresh_token_locked(refresh):
        try:
            token = RefreshToken(refresh)
        except TokenError as exc:
            raise InvalidToken(str(exc)) from exc
        if str(token.get("user_id")) != str(user.pk):
            raise InvalidToken("Token does not belong to the authenticated user.")
        token.blacklist()
