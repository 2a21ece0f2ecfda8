"""JWT authentication that trusts a looked-up user for a few seconds per process.

Every API call would otherwise pay a user SELECT. API.md allows a deactivated user's access
tokens to keep working for up to 60 seconds; AUTH_USER_CACHE_SECONDS (30 by default) stays under
that. A save of the user in this process drops its entry at once.
"""

import threading
import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.tokens import Token

from accounts.models import User

_MAX_ENTRIES = 50_000
_cache: dict[str, tuple[float, User]] = {}
_cache_lock = threading.Lock()


class CachedJWTAuthentication(JWTAuthentication):
    """simplejwt's JWTAuthentication with a short per-process user cache."""

    def get_user(self, validated_token: Token) -> User:
        user_id = str(validated_token.get(settings.SIMPLE_JWT["USER_ID_CLAIM"], ""))
        now = time.monotonic()
        entry = _cache.get(user_id)
        if entry is not None and entry[0] > now:
            return entry[1]
        user = super().get_user(validated_token)
        with _cache_lock:
            if len(_cache) >= _MAX_ENTRIES:
                _cache.clear()
            _cache[user_id] = (now + settings.AUTH_USER_CACHE_SECONDS, user)
        return user


def forget_user(user_id: object) -> None:
    """Drop a user from this process's cache."""
    _cache.pop(str(user_id), None)


def clear_user_cache() -> None:
    _cache.clear()


@receiver(post_save, sender=User)
@receiver(post_delete, sender=User)
def _user_changed(sender, instance: User, **kwargs) -> None:
    forget_user(instance.pk)
