"""The sold-out flag in Redis: lets `reserve` answer 409 `sold_out` without a transaction.

The flag only ever refuses; it is never trusted for a 201. It is written and removed after commit
and expires after SOLD_OUT_FLAG_TTL seconds, so a flag whose removal failed (Redis blip) can refuse
a seat that came back only briefly. It carries the sale window, so the fast path still answers
`sale_not_open` and `sale_closed` first, as API.md orders them.
"""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.conf import settings

from fastticket import redis as ft_redis
from tickets.models import Ticket


@dataclass(frozen=True)
class SoldOutFlag:
    event_time: datetime
    sale_starts_at: datetime | None


def _flag_key(ticket_id: UUID | str) -> str:
    return ft_redis.key("soldout", ticket_id)


def sold_out_flag_set(*, ticket: Ticket) -> None:
    """Mark a ticket as sold out for a few seconds."""
    # ISO strings, not float timestamps: a float loses microseconds (and overflows near year 9999).
    sale = ticket.sale_starts_at.isoformat() if ticket.sale_starts_at else ""
    value = f"{ticket.event_time.isoformat()}|{sale}"
    ft_redis.call(lambda r: r.set(_flag_key(ticket.pk), value, ex=settings.SOLD_OUT_FLAG_TTL), None)


def sold_out_flag_clear(*, ticket_id: UUID | str) -> None:
    """Remove a ticket's sold-out flag (a seat came back or the sale window moved)."""
    ft_redis.call(lambda r: r.delete(_flag_key(ticket_id)), None)


def sold_out_flag_get(*, ticket_id: UUID | str) -> SoldOutFlag | None:
    """Return the ticket's sold-out flag, or None when it is absent or Redis is down."""
    raw = ft_redis.call(lambda r: r.get(_flag_key(ticket_id)), None)
    if raw is None:
        return None
    event_time, _, sale_starts_at = raw.decode().partition("|")
    return SoldOutFlag(
        event_time=datetime.fromisoformat(event_time),
        sale_starts_at=datetime.fromisoformat(sale_starts_at) if sale_starts_at else None,
    )
