"""Test data builders: users and tickets. Reservations come only from the services."""

import itertools
from datetime import datetime, timedelta

from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from tickets.models import Ticket

PASSWORD = "correct-horse-battery-9"
_seq = itertools.count()


def make_user(username: str | None = None, *, is_staff: bool = False, password: str = PASSWORD, **extra) -> User:
    n = next(_seq)
    username = username or f"user{n}"
    user = User(username=username, email=extra.pop("email", f"{username}@example.com"), is_staff=is_staff, **extra)
    user.set_password(password)
    user.save()
    return user


def make_ticket(
    *,
    title: str = "Concert",
    quantity: int = 10,
    event_time: datetime | None = None,
    sale_starts_at: datetime | None = None,
    issued_count: int = 0,
) -> Ticket:
    """Build a ticket directly (tests may need states the services refuse, e.g. a past event)."""
    return Ticket.objects.create(
        title=title,
        quantity=quantity,
        event_time=event_time or timezone.now() + timedelta(days=30),
        sale_starts_at=sale_starts_at,
        issued_count=issued_count,
    )


def access_token(user: User) -> str:
    return str(RefreshToken.for_user(user).access_token)


def auth_header(user: User) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {access_token(user)}"}
