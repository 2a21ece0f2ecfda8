"""The environment of a FastTicket server started for a test, the benchmark, the fuzzer or a check."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping

THROTTLES = ("THROTTLE_ANON", "THROTTLE_USER", "THROTTLE_AUTH", "THROTTLE_BOOKING")
THROTTLES_OFF = dict.fromkeys(THROTTLES, "off")


def random_secret_key() -> str:
    return secrets.token_urlsafe(50)


def child_env(base: Mapping[str, str] | None = None, **overrides: str | None) -> dict[str, str]:
    """Return `base` (this process's environment by default) with overrides applied; None removes a variable."""
    env = dict(os.environ if base is None else base)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def server_env(
    base: Mapping[str, str] | None = None,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    redis_prefix: str | None = None,
    secret_key: str | None = None,
    throttles_off: bool = False,
    **overrides: str | None,
) -> dict[str, str]:
    """Return the environment of a server on 127.0.0.1 under test: production settings, plain HTTP.

    DEBUG off, HTTPS off (no proxy in front), the loopback names allowed; the database, Redis, key
    prefix and secret key given (else those of `base`); every throttle off when asked; then
    `overrides` (None removes a variable).
    """
    given = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": redis_prefix,
        "DJANGO_SECRET_KEY": secret_key,
    }
    env = child_env(
        base,
        DJANGO_SETTINGS_MODULE="fastticket.settings",
        DJANGO_DEBUG="false",
        DJANGO_HTTPS="false",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        **{name: value for name, value in given.items() if value is not None},
        **(THROTTLES_OFF if throttles_off else {}),
    )
    return child_env(env, **overrides)
