"""Account reads beyond a one-line query."""

from django.db import connection

from accounts.models import User


def username_folded(*, username: str) -> str:
    """Return the username as login compares it: NFKC-normalised, then PostgreSQL's UPPER().

    Login finds the account with `username__iexact` on the normalised name, which PostgreSQL runs
    as UPPER(username) = UPPER(%s), so two spellings that log in to one account (a long s for `s`,
    a dotless i for `i`, the Kelvin sign for `K`) fold to one string here. The database folds it, not Python:
    `str.upper()` disagrees with UPPER() on some letters (`ß`), and UPPER() follows the database's
    locale.
    """
    # 150 characters: no stored username is longer, so a longer name matches no account anyway.
    # NUL and lone surrogates cannot reach PostgreSQL; they match no account either.
    normalised = User.normalize_username(username)[:150]
    text = normalised.encode("utf-8", "replace").decode().replace("\x00", "\ufffd")
    with connection.cursor() as cursor:
        cursor.execute("SELECT UPPER(%s)", [text])
        return cursor.fetchone()[0]
