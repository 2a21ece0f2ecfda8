"""A ticket's sale mirrored in Redis: its stock, sale window and waiting-room settings.

The booking line and the waiting room read it in their Lua scripts instead of the database. It is
written after commit by every writer of the ticket row (the ticket services, bookings, cancels),
each with the row's `sale_version`, which every such write raises by one: a write lands only when
its version is newer than the stored one, so a late or repeated write can never roll the mirror
back. When it is missing (a new ticket, a Redis restart), the booking and waiting-room code
rebuilds it from the database with the same rule.

The mirror only ever hints. A refusal it suggests (sold out, sale not open or closed) is confirmed
by the database before anyone hears it, and every booking is checked again under the row lock, so
a stale mirror can cost time but never a wrong answer.
"""

from datetime import UTC, datetime, timedelta
from uuid import UUID

from fastticket import redis as ft_redis
from tickets.models import Ticket

# The mirror's fields, in the order `sale_state_args` gives them to the Lua function below: the
# row's sale_version, quantity, issued_count, sale_starts_at and event_time (microseconds since
# the epoch; -1: no start), waiting_room, admit_per_minute, admission_seconds, queue_generation.
FIELDS = ("v", "q", "i", "s", "e", "wr", "apm", "as", "g")

# SALE_WRITE(key, args, first): write the mirror from args[first..first+8] if it is newer.
# Keeps: the stored version never decreases, so the mirror converges on the newest row.
SALE_LUA = """
local SALE_FIELDS = {"v", "q", "i", "s", "e", "wr", "apm", "as", "g"}

local function sale_write(key, args, first)
  local stored = tonumber(redis.call("HGET", key, "v") or "-1")
  if tonumber(args[first]) <= stored then
    return 0
  end
  local pairs_ = {}
  for n, name in ipairs(SALE_FIELDS) do
    pairs_[#pairs_ + 1] = name
    pairs_[#pairs_ + 1] = args[first + n - 1]
  end
  redis.call("HSET", key, unpack(pairs_))
  return 1
end

-- The mirror as a table of numbers (the sale's start s and the event e in ms, -1: no start), or
-- nil when it is missing.
local function sale_read(key)
  local raw = redis.call("HGETALL", key)
  if #raw == 0 then
    return nil
  end
  local sale = {}
  for n = 1, #raw, 2 do
    sale[raw[n]] = tonumber(raw[n + 1])
  end
  if sale.s ~= -1 then
    sale.s = sale.s / 1000
  end
  sale.e = sale.e / 1000
  return sale
end
"""

_WRITE = ft_redis.Script(
    SALE_LUA
    + """
return sale_write(KEYS[1], ARGV, 1)
"""
)
# What writes the mirror: KEYS mirror, ARGV the row (9 values) and the waiting room's key base. The
# waiting room (reservations.apps) puts a script of its own here, which first admits the queue's
# places due under the mirror as it was, so that a change applies from the moment it is written.
_writer: ft_redis.Script = _WRITE


def sale_state_writer(script: ft_redis.Script) -> None:
    """Make `script` the one that writes the mirror (see _writer)."""
    global _writer
    _writer = script


def sale_key(ticket_id: UUID | str) -> str:
    return ft_redis.key("sale", ticket_id)


def room_base(ticket_id: UUID | str) -> str:
    """Return the prefix of a ticket's waiting-room keys, before the turn's generation (reservations.room).

    Named here because a ticket edit that turns the waiting room off ends its queue.
    """
    return ft_redis.key("wr", ticket_id, "")


def room_prefix(ticket_id: UUID | str, generation: int) -> str:
    """Return the prefix of the keys of one turn of a ticket's waiting room."""
    return f"{room_base(ticket_id)}{generation}:"


ROOM_KEY_SUFFIXES = ("p", "q", "a", "s")


def room_end(*, ticket_id: UUID | str, generation: int) -> None:
    """Delete one turn of the waiting room: its places and admissions are gone."""
    prefix = room_prefix(ticket_id, generation)
    ft_redis.call(lambda r: r.delete(*(prefix + suffix for suffix in ROOM_KEY_SUFFIXES)), None)


def sale_state_forget(*, ticket_id: UUID | str) -> None:
    """Delete a deleted ticket's mirror."""
    ft_redis.call(lambda r: r.delete(sale_key(ticket_id)), None)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(moment: datetime | None) -> int:
    """Return a time as whole microseconds since the epoch (-1 for none), exactly, as the mirror keeps it."""
    return -1 if moment is None else (moment - _EPOCH) // timedelta(microseconds=1)


def sale_state_args(ticket: Ticket) -> list[int]:
    """Return the mirror's values for a ticket row as read or written under its row lock."""
    return [
        ticket.sale_version,
        ticket.quantity,
        ticket.issued_count,
        epoch_us(ticket.sale_starts_at),
        epoch_us(ticket.event_time),
        int(ticket.waiting_room),
        ticket.admit_per_minute,
        ticket.admission_seconds,
        ticket.queue_generation,
    ]


def sale_state_write(*, ticket: Ticket) -> None:
    """Write the ticket's mirror unless a newer one is stored; skipped while Redis is down."""
    args = [*sale_state_args(ticket), room_base(ticket.pk)]
    ft_redis.call(lambda r: _writer(r, keys=[sale_key(ticket.pk)], args=args), None)


def sale_state_rebuild(*, ticket_id: UUID | str) -> bool:
    """Write the mirror from the database row as it is now; False when there is no such ticket."""
    ticket = Ticket.objects.filter(pk=ticket_id).first()
    if ticket is None:
        return False
    sale_state_write(ticket=ticket)
    return True
