"""Seed the scratch database from the benchmark process: users, their access tokens, tickets.

Django is set up here against the same database and secret key as the server, so the tokens minted
with simplejwt are the ones the server accepts.
"""

import os
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path


def django_setup(env: dict[str, str], root: Path) -> None:
    """Configure Django in this process with the server's environment."""
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "fastticket.settings"
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import logging

    import django

    django.setup()
    # The app logs every lock and every 4xx; in this process they are only noise on the console.
    logging.getLogger("redis_lock").setLevel(logging.WARNING)
    logging.getLogger("django.request").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Seeded:
    tokens_file: Path
    users: int
    seconds: float


def users_with_tokens(*, count: int, tokens_file: Path) -> Seeded:
    """Insert `count` users in bulk with one shared password hash; write one access token per line."""
    from django.contrib.auth.hashers import make_password
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User

    started = time.monotonic()
    password = make_password("bench-password-never-used-to-log-in")
    users = [
        User(username=f"bench{n:06d}", email=f"bench{n:06d}@bench.invalid", password=password) for n in range(count)
    ]
    User.objects.bulk_create(users, batch_size=5000)
    with tokens_file.open("w") as out:
        for user in users:
            out.write(f"{AccessToken.for_user(user)}\n")
    return Seeded(tokens_file=tokens_file, users=count, seconds=time.monotonic() - started)


def ticket(*, title: str, quantity: int, **fields: object) -> str:
    """Create a ticket through the service (on sale unless `fields` say otherwise) and return its id."""
    from django.utils import timezone

    from tickets.services import ticket_create

    created = ticket_create(title=title, quantity=quantity, event_time=timezone.now() + timedelta(days=30), **fields)
    return str(created.pk)


def waiting_room_ticket(
    *, title: str, quantity: int, admit_per_minute: int, admission_seconds: int, opens_in: float
) -> str:
    """Create a ticket with a waiting room whose sale opens `opens_in` seconds from now (its queue
    is open already while that is within QUEUE_OPENS_MINUTES, 30 by default)."""
    from django.utils import timezone

    return ticket(
        title=title,
        quantity=quantity,
        sale_starts_at=timezone.now() + timedelta(seconds=opens_in),
        waiting_room=True,
        admit_per_minute=admit_per_minute,
        admission_seconds=admission_seconds,
    )


def sold_out_ticket(*, title: str) -> str:
    """Create a one-seat ticket and sell its seat to a user outside the token pool."""
    from django.contrib.auth.hashers import make_password

    from accounts.models import User
    from reservations.services import reservation_create

    ticket_id = ticket(title=title, quantity=1)
    buyer = User.objects.create(username="bench-buyer", email="buyer@bench.invalid", password=make_password(None))
    reservation_create(user=buyer, ticket_id=ticket_id)
    return ticket_id


def confirmed_seats(ticket_id: str) -> tuple[int, int]:
    """Return (issued_count, confirmed reservations) of a ticket, read from the database."""
    from reservations.models import Reservation, ReservationStatus
    from tickets.models import Ticket

    issued = Ticket.objects.values_list("issued_count", flat=True).get(pk=ticket_id)
    confirmed = Reservation.objects.filter(ticket_id=ticket_id, status=ReservationStatus.CONFIRMED).count()
    return issued, confirmed


def close_connections() -> None:
    """Close this process's database connections (so the scratch database can be dropped)."""
    from django.db import connections

    connections.close_all()
