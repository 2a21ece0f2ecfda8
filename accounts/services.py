"""Account actions: signup and logout."""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User


def _taken(field: str) -> ValidationError:
    return ValidationError({field: [f"A user with that {field} already exists."]})


def user_create(*, username: str, email: str, password: str, is_staff: bool = False) -> User:
    """Create a user after Django's password validators; a taken username or email is a 400.

    The case-insensitive unique constraints are the net for two signups racing with the same
    name: the loser's IntegrityError becomes the same field error as the check.
    """
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
        field = "email" if "email" in str(exc) else "username"
        raise _taken(field) from exc
    return user


def user_logout(*, user: User, refresh: str) -> None:
    """Blacklist the caller's refresh token so that it can never be used again."""
    try:
        token = RefreshToken(refresh)
    except TokenError as exc:
        raise InvalidToken(str(exc)) from exc
    if str(token.get("user_id")) != str(user.pk):
        raise InvalidToken("Token does not belong to the authenticated user.")
    token.blacklist()
