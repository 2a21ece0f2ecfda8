"""JWT authentication that trusts a looked-up user for a few seconds per process.

BearerJWTAuthentication, for an endpoint whose own statement reads the caller's account anyway
(reserve: reservations.batch.booking_read), skips the user SELECT of a user this process has not
seen and names the caller by its token (TokenBearer); that endpoint then checks the account with
`check_caller` in its own round trip.

Every API call would otherwise pay a user SELECT. API.md allows a deactivated user's access
tokens to keep working for up to 60 seconds; AUTH_USER_CACHE_SECONDS (30 by default) stays under
that. The tokens issued before a password change stop within the same time: their `pwv` claim is
compared with the cached user's `password_version`, at no extra query. A save of the user in this
process drops its entry at once. A miss reads the user with one plain SQL statement: the ORM's
`objects.get()` cost three times the CPU (about 0.2 ms more per request, measured), and on sale
day most requests come from a user this worker has not seen.
"""

import threading
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.tokens import Token

from accounts.models import User
from accounts.tokens import PASSWORD_CHANGED, PASSWORD_VERSION_CLAIM
from fastticket.sql import columns, table

_MAX_ENTRIES = 50_000
_cache: dict[str, tuple[float, User]] = {}
# Verified access tokens by their raw bytes -> (expiry, epoch seconds; the token).
_tokens: dict[bytes, tuple[float, Token]] = {}
_cache_lock = threading.Lock()


# Every concrete field, so the loaded user is whole (a new column is read without a change here).
_COLUMNS = [field.attname for field in User._meta.concrete_fields]
_SELECT_USER = (
    f"SELECT {columns(User, *(field.name for field in User._meta.concrete_fields))}"  # noqa: S608 (model's own names)
    f" FROM {table(User)} WHERE id = %s"
)


def _load_user(user_id: uuid.UUID) -> User | None:
    with connection.cursor() as cursor:
        cursor.execute(_SELECT_USER, [user_id])
        row = cursor.fetchone()
    return None if row is None else User.from_db(DEFAULT_DB_ALIAS, _COLUMNS, row)


# An account as a statement read it: (found, is_active, password_version).
Account = tuple[bool, bool, int]


def _refuse(account: Account, *, expected_version: int) -> None:
    """Raise the 401 of an account that may not act: missing, inactive, or its password changed since."""
    found, is_active, password_version = account
    if not found:
        raise AuthenticationFailed(_("User not found"), code="user_not_found")
    if not is_active:
        raise AuthenticationFailed(_("User is inactive"), code="user_inactive")
    if password_version != expected_version:
        raise InvalidToken(PASSWORD_CHANGED)


def _user_id(validated_token: Token) -> uuid.UUID:
    try:
        return uuid.UUID(str(validated_token.get(settings.SIMPLE_JWT["USER_ID_CLAIM"], "")))
    except ValueError as exc:
        raise InvalidToken(_("Token contained no recognizable user identification")) from exc


def _cached(validated_token: Token) -> User | None:
    entry = _cache.get(str(validated_token.get(settings.SIMPLE_JWT["USER_ID_CLAIM"], "")))
    if entry is None or entry[0] <= time.monotonic():
        return None
    _check(validated_token, entry[1])
    return entry[1]


def _check(validated_token: Token, user: User | None) -> None:
    account = (True, user.is_active, user.password_version) if user is not None else (False, False, -1)
    _refuse(account, expected_version=validated_token.get(PASSWORD_VERSION_CLAIM, 0))


class CachedJWTAuthentication(JWTAuthentication):
    """simplejwt's JWTAuthentication with short per-process caches of verified tokens and of users.

    A client that polls (the waiting room) sends the same access token again and again: its
    signature and claims are verified once, and the verified token is kept until it expires.
    """

    def get_validated_token(self, raw_token: bytes) -> Token:
        entry = _tokens.get(raw_token)
        if entry is not None and entry[0] > time.time():
            return entry[1]
        validated = super().get_validated_token(raw_token)
        with _cache_lock:
            if len(_tokens) >= _MAX_ENTRIES:
                _tokens.clear()
            _tokens[raw_token] = (float(validated["exp"]), validated)
        return validated

    def get_user(self, validated_token: Token) -> User:
        cached = _cached(validated_token)
        if cached is not None:
            return cached
        user_id = _user_id(validated_token)
        user = _load_user(user_id)
        _check(validated_token, user)
        with _cache_lock:
            if len(_cache) >= _MAX_ENTRIES:
                _cache.clear()
            _cache[str(user_id)] = (time.monotonic() + settings.AUTH_USER_CACHE_SECONDS, user)
        return user


@dataclass(frozen=True)
class TokenBearer:
    """The caller as a valid access token names it, before its account was read.

    Only an endpoint that reads the account in its own statement and refuses it with
    `check_caller` (as booking does) may take one; anything else must use the user.
    """

    pk: uuid.UUID
    token: Token
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_active: bool = True
    is_staff: bool = False


def check_caller(user: User | TokenBearer, account: Account) -> None:
    """Raise the 401 of a caller that may not act, given its account as the caller's own statement just read it.

    A TokenBearer is checked as its token's user would be; a user (cached, or from a session) must
    still be active and have the password it was loaded with.
    """
    expected = user.token.get(PASSWORD_VERSION_CLAIM, 0) if isinstance(user, TokenBearer) else user.password_version
    _refuse(account, expected_version=expected)


class BearerJWTAuthentication(CachedJWTAuthentication):
    """CachedJWTAuthentication that, for a user this process has not seen, reads no account: a TokenBearer."""

    def get_user(self, validated_token: Token) -> User | TokenBearer:
        return _cached(validated_token) or TokenBearer(_user_id(validated_token), validated_token)


def forget_user(user_id: object) -> None:
    """Drop a user from this process's cache."""
    _cache.pop(str(user_id), None)


def clear_user_cache() -> None:
    _cache.clear()
    _tokens.clear()


@receiver(post_save, sender=User)
@receiver(post_delete, sender=User)
def _user_changed(sender, instance: User, **kwargs) -> None:
    forget_user(instance.pk)
