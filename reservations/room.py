"""The waiting room's line in Redis: places, their order, admissions and their expiry.

Every change is one Lua script (join, ask, leave, use an admission, end a booking), so no
interleaving of requests across processes can break a rule of API.md's Waiting room section.

Admission happens as requests ask, with no process of its own to forget in a deployment: each
script first runs `room_advance`, which admits and expires places in time order up to now, each
admission at the exact time its turn came (the pace allowed one more, a seat was free, every place
ahead was admitted). A turn is never dated before the last time anyone looked at the queue, so no
answer ever showed a place waiting after it had been admitted: to everyone who asks, a place is
admitted at its turn, and its `admitted_until` counts from then.

Keys of one turn of a ticket's waiting room (tickets.sale_state.room_prefix, generation g):
- `<R>p` HASH user id -> "status|joined ms|admitted until ms|reservation id"; status w (waiting),
  a (admitted), p (admitted, with a booking under way), b (booked), e (expired).
- `<R>q` ZSET of the waiting users -> order: joiners before the opening get a random score in
  [0, 1), later ones 1 + their join number, so the first are shuffled ahead of the rest.
- `<R>a` ZSET of admitted users -> when the admission ends (for p: when its booking gives up).
- `<R>s` HASH: admitted_at (the time of the latest admission), last (when it last advanced),
  opened (the sale has been open: later joiners, also during a pause, queue in join order), seq
  (join counter), admitted, pending, booked, expired (counts of places in those states).
The seats come from the ticket's mirror (tickets.sale_state): never more admissions held (a + p)
than `quantity - issued_count`.
"""

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from django.conf import settings

from fastticket import redis as ft_redis
from tickets.locks import LOCK_LUA
from tickets.sale_state import SALE_LUA, room_base, sale_key

# Admissions one call may grant: bounds a script's run time after a long pause.
ADMIT_PER_CALL = 2000

ROOM_LUA = """
local function room_get(R, user)
  local raw = redis.call("HGET", R .. "p", user)
  if not raw then
    return nil
  end
  local status, joined, till, rid = string.match(raw, "^(%a)|(%d+)|(-?%d+)|(.*)$")
  return {status = status, joined = tonumber(joined), till = tonumber(till), rid = rid}
end

local function room_put(R, user, place)
  redis.call("HSET", R .. "p", user, place.status .. "|" .. place.joined .. "|" .. place.till .. "|" .. place.rid)
end

local function room_count(R, name)
  return tonumber(redis.call("HGET", R .. "s", name) or "0")
end

local function room_bump(R, name, by)
  redis.call("HINCRBY", R .. "s", name, by)
end

local STATE_COUNTER = {a = "admitted", p = "pending", b = "booked", e = "expired"}

-- End the admissions that ran out by `t` (and those whose booking never came back): expired.
-- Keeps: an expired admission hands its seat to the next place.
local function room_expire(R, t)
  local ended = redis.call("ZRANGEBYSCORE", R .. "a", "-inf", t, "LIMIT", 0, 1000)
  for _, user in ipairs(ended) do
    redis.call("ZREM", R .. "a", user)
    local place = room_get(R, user)
    if place and (place.status == "a" or place.status == "p") then
      room_bump(R, STATE_COUNTER[place.status], -1)
      room_bump(R, "expired", 1)
      place.status = "e"
      room_put(R, user, place)
    end
  end
end

-- Admit and expire places, in time order, up to `now`.
-- Keeps: places are admitted in their order; from the opening, at most 1 + t * rate places in any
-- t seconds (each admission at least 60000 / admit_per_minute ms after the one before, at the
-- rate set now, so a new rate applies from then on), never before the last time anyone looked
-- (no answer ever showed a place waiting after it was admitted), never while the sale is not open;
-- never more admissions held than seats remain.
local function room_advance(R, sale, now)
  local state = R .. "s"
  local last = tonumber(redis.call("HGET", state, "last") or now)
  local previous = tonumber(redis.call("HGET", state, "admitted_at") or "-1")
  local interval = 60000 / sale.apm
  local admitted = 0
  if (sale.s == -1 or now >= sale.s) and now < sale.e then
    redis.call("HSETNX", state, "opened", 1)
    local t = last
    if previous >= 0 then
      t = math.max(t, previous + interval)
    end
    if sale.s ~= -1 then
      t = math.max(t, sale.s)
    end
    local seats = sale.q - sale.i
    while admitted < $ADMIT_PER_CALL do
      local head = redis.call("ZRANGE", R .. "q", 0, 0)[1]
      if not head then
        break
      end
      t = math.max(t, room_get(R, head).joined)
      if t > now then
        break
      end
      room_expire(R, t)
      if room_count(R, "admitted") + room_count(R, "pending") >= seats then
        -- No seat at t: the next chance is when the next admission ends, if that is by now.
        local next_end = redis.call("ZRANGE", R .. "a", 0, 0, "WITHSCORES")[2]
        if not next_end or tonumber(next_end) > now then
          break
        end
        t = math.max(t, tonumber(next_end))
      else
        local place = room_get(R, head)
        redis.call("ZREM", R .. "q", head)
        place.status = "a"
        place.till = math.floor(t + sale.as * 1000)
        room_put(R, head, place)
        redis.call("ZADD", R .. "a", place.till, head)
        room_bump(R, "admitted", 1)
        admitted = admitted + 1
        previous = t
        t = t + interval
      end
    end
    if admitted > 0 then
      redis.call("HSET", state, "admitted_at", previous)
    end
  end
  room_expire(R, now)
  redis.call("HSET", state, "last", now)
  return admitted
end

-- A place as the API shows it: status, joined, admitted until, rank among the waiting (0 = next,
-- -1 when not waiting), places in all, held admissions, and the sale's numbers.
local function room_view(R, sale, user, now)
  local place = room_get(R, user)
  if not place then
    return {"none"}
  end
  local rank = -1
  if place.status == "w" then
    rank = redis.call("ZRANK", R .. "q", user)
  end
  local places = redis.call("ZCARD", R .. "q") + room_count(R, "admitted") + room_count(R, "pending")
    + room_count(R, "booked") + room_count(R, "expired")
  return {"place", place.status, place.joined, place.till, rank, places,
          room_count(R, "admitted") + room_count(R, "pending"), sale.q - sale.i, sale.s, sale.e, sale.apm, now}
end

-- Use the caller's unexpired admission for the booking `rid` (it stays held until that booking
-- ends). Keeps: a booking needs an unexpired admission; the seat stays counted as held meanwhile.
local function room_use_admission(R, user, rid, now, pending_ms)
  local place = room_get(R, user)
  if not place or (place.status ~= "a" and place.status ~= "p") or place.till <= now then
    return false
  end
  if place.status == "a" then
    room_bump(R, "admitted", -1)
    room_bump(R, "pending", 1)
  end
  place.status = "p"
  place.rid = rid
  room_put(R, user, place)
  redis.call("ZADD", R .. "a", now + pending_ms, user)
  return true
end

-- The booking `rid` that used the caller's admission has ended: booked, or the admission is
-- back (or expired, if its time ran out meanwhile).
local function room_booking_done(R, user, rid, booked, now)
  local place = room_get(R, user)
  if not place or place.status ~= "p" or place.rid ~= rid then
    return
  end
  room_bump(R, "pending", -1)
  if booked then
    place.status = "b"
    redis.call("ZREM", R .. "a", user)
  elseif place.till > now then
    place.status = "a"
    redis.call("ZADD", R .. "a", place.till, user)
  else
    place.status = "e"
    redis.call("ZREM", R .. "a", user)
  end
  room_bump(R, STATE_COUNTER[place.status], 1)
  room_put(R, user, place)
end

-- The waiting room of the mirror's current turn: its key prefix, or nil when the ticket has none.
local function room_of(sale, base)
  if sale.wr ~= 1 then
    return nil
  end
  return base .. sale.g .. ":"
end

-- Write the ticket's mirror from a row (sale_write's rule: only a newer version lands), first
-- admitting and expiring the waiting room's places up to now under the mirror as it was.
-- Keeps: a change of the sale (a seat back, a new rate, a pause, a moved opening) applies from the
-- moment it is written, never to the turns that came before it.
local function room_sale_update(key, args, first, base, now)
  local old = sale_read(key)
  if old and tonumber(args[first]) > old.v then
    local R = room_of(old, base)
    if R then
      room_advance(R, old, now)
    end
  end
  return sale_write(key, args, first)
end
""".replace("$ADMIT_PER_CALL", str(ADMIT_PER_CALL))

_PRELUDE = LOCK_LUA + SALE_LUA + ROOM_LUA

# KEYS: mirror. ARGV: room base, user, random score, held (1/0), queue opens ms before the sale.
# Keeps: one place per user and ticket; joining twice never moves anyone; the joiners before the
# opening in random order ahead of the later ones, those in join order.
_JOIN = ft_redis.Script(
    _PRELUDE
    + """
local sale = sale_read(KEYS[1])
if not sale then
  return {"rebuild"}
end
local R = room_of(sale, ARGV[1])
if not R then
  return {"no_waiting_room"}
end
local now = now_ms()
local user = ARGV[2]
room_advance(R, sale, now)
local place = room_get(R, user)
if place and (place.status == "w" or place.status == "a" or place.status == "p") then
  return {"held", unpack(room_view(R, sale, user, now))}
end
if sale.s ~= -1 and now < sale.s - tonumber(ARGV[5]) then
  return {"sale_not_open", redis.call("HGET", KEYS[1], "s")}
end
if now >= sale.e then
  return {"sale_closed"}
end
if ARGV[4] == "1" then
  return {"already_reserved"}
end
if sale.i >= sale.q then
  return {"sold_out"}
end
if place then
  room_bump(R, STATE_COUNTER[place.status], -1)
end
local score
if sale.s ~= -1 and now < sale.s and not redis.call("HGET", R .. "s", "opened") then
  score = ARGV[3]
else
  score = 1 + redis.call("HINCRBY", R .. "s", "seq", 1)
end
redis.call("ZADD", R .. "q", score, user)
room_put(R, user, {status = "w", joined = now, till = -1, rid = ""})
room_advance(R, sale, now)
return {"joined", unpack(room_view(R, sale, user, now))}
"""
)

# KEYS: mirror. ARGV: room base, user.
_ASK = ft_redis.Script(
    _PRELUDE
    + """
local sale = sale_read(KEYS[1])
if not sale then
  return {"rebuild"}
end
local R = room_of(sale, ARGV[1])
if not R then
  return {"none"}
end
local now = now_ms()
room_advance(R, sale, now)
return room_view(R, sale, ARGV[2], now)
"""
)

# KEYS: mirror. ARGV: room base, user. Keeps: a place given up hands its admission to the next.
_LEAVE = ft_redis.Script(
    _PRELUDE
    + """
local sale = sale_read(KEYS[1])
if not sale then
  return "rebuild"
end
local R = room_of(sale, ARGV[1])
if not R then
  return "none"
end
local now = now_ms()
room_advance(R, sale, now)
local place = room_get(R, ARGV[2])
if not place then
  return "none"
end
if place.status == "w" then
  redis.call("ZREM", R .. "q", ARGV[2])
else
  redis.call("ZREM", R .. "a", ARGV[2])
  room_bump(R, STATE_COUNTER[place.status], -1)
end
redis.call("HDEL", R .. "p", ARGV[2])
room_advance(R, sale, now)
return "left"
"""
)

# KEYS: mirror. ARGV: room base.
_STATS = ft_redis.Script(
    _PRELUDE
    + """
local sale = sale_read(KEYS[1])
if not sale then
  return {"rebuild"}
end
local R = room_of(sale, ARGV[1])
if not R then
  return {"none"}
end
room_advance(R, sale, now_ms())
return {"stats", redis.call("ZCARD", R .. "q"), room_count(R, "admitted") + room_count(R, "pending"),
        room_count(R, "booked"), room_count(R, "expired")}
"""
)


class MirrorMissing(Exception):
    """The ticket's mirror is not in Redis: rebuild it from the database and ask again."""


@dataclass(frozen=True)
class PlaceState:
    """A place as the line holds it, with what the API derives its answer from."""

    status: str  # w, a, p, b, e
    joined_ms: int
    admitted_until_ms: int
    rank: int  # among the waiting places, 0 = next; -1 when not waiting
    places: int  # all places of this queue
    held: int  # admissions held now (admitted, or admitted with a booking under way)
    seats: int  # quantity - issued_count, as the mirror has it
    sale_starts_ms: int
    event_ms: int
    admit_per_minute: int
    now_ms: int


def _place(raw: Sequence) -> PlaceState | None:
    if raw[0] == b"none":
        return None
    return PlaceState(raw[1].decode(), *(int(value) for value in raw[2:]))


def _client():
    client = ft_redis.client()
    if client is None:
        raise ft_redis.RedisUnavailable()
    return client


def _run(script: ft_redis.Script, ticket_id: UUID | str, args: list) -> object:
    """Run a waiting-room script; MirrorMissing when the ticket's mirror must be rebuilt first."""
    try:
        result = script(_client(), keys=[sale_key(ticket_id)], args=[room_base(ticket_id), *args])
    except ft_redis.REDIS_ERRORS as exc:
        ft_redis.mark_down(exc)
        raise ft_redis.RedisUnavailable() from exc
    if result == b"rebuild" or (isinstance(result, list) and result[:1] == [b"rebuild"]):
        raise MirrorMissing()
    return result


@dataclass(frozen=True)
class Joined:
    """What joining gave: "joined" or "held" with the place, or a refusal's code (and for
    sale_not_open the sale's start, in microseconds since the epoch)."""

    outcome: str
    place: PlaceState | None = None
    sale_starts_us: int | None = None


def room_join(*, ticket_id: UUID | str, user_id: UUID | str, holds_reservation: bool) -> Joined:
    """Join the ticket's queue at the back (a place that has not ended is given back as it is)."""
    opens_ms = settings.QUEUE_OPENS_MINUTES * 60_000
    args = [str(user_id), repr(_random_score()), int(holds_reservation), opens_ms]
    result = _run(_JOIN, ticket_id, args)
    outcome = result[0].decode()
    if outcome in ("joined", "held"):
        return Joined(outcome, _place(result[1:]))
    if outcome == "sale_not_open":
        return Joined(outcome, sale_starts_us=int(result[1]))
    return Joined(outcome)


def room_ask(*, ticket_id: UUID | str, user_id: UUID | str) -> PlaceState | None:
    """Return the caller's place (None when they hold none, or the ticket has no waiting room)."""
    return _place(_run(_ASK, ticket_id, [str(user_id)]))


def room_leave(*, ticket_id: UUID | str, user_id: UUID | str) -> bool:
    """Give up the caller's place; False when they hold none."""
    return _run(_LEAVE, ticket_id, [str(user_id)]) == b"left"


def room_stats(*, ticket_id: UUID | str) -> dict[str, int] | None:
    """Return how many places are waiting, admitted, booked and expired (None: no waiting room)."""
    result = _run(_STATS, ticket_id, [])
    if result[0] == b"none":
        return None
    waiting, admitted, booked, expired = (int(value) for value in result[1:])
    return {"waiting": waiting, "admitted": admitted, "booked": booked, "expired": expired}


def _random_score() -> float:
    """A place's order among the joiners before the opening: uniform in [0, 1)."""
    return secrets.randbelow(2**52) / 2**52


# What the API shows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """A place in line as API.md's Waiting room section shows it."""

    ticket: str
    status: str
    position: int | None
    joined_at: datetime
    admitted_until: datetime | None
    estimated_wait_seconds: int | None
    poll_after_seconds: int


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def poll_after_seconds(index: int, places: int, budget: int) -> int:
    """When the place with this index (1 = first) should ask again, so that all `places` of a queue
    together ask at most `budget` times a second, however long the line.

    The first places ask every second, later ones less often in proportion to their index, and
    the tail (at most half the budget) every `tail` seconds: with tail = 2N/B and the ramp's slope
    k = 2(1 + ln tail)/B, the places on the ramp ask at most (1 + ln tail)/k = B/2 times a second.
    """
    budget = max(budget, 1)
    tail = max(1, math.ceil(2 * places / budget))
    slope = 2 * (1 + math.log(tail)) / budget
    return int(min(tail, max(1, math.ceil(slope * index))))


def place_of(*, ticket_id: UUID | str, state: PlaceState) -> Place:
    """Derive a place's answer from its state in the line, at the time the line was read."""
    now = state.now_ms
    closed = now >= state.event_ms
    open_ = (state.sale_starts_ms == -1 or now >= state.sale_starts_ms) and not closed
    if state.status == "b":
        status = "booked"
    elif state.status == "e":
        status = "expired"
    elif closed:
        status = "closed"
    elif state.status in ("a", "p"):
        status = "admitted"
    elif state.seats <= 0:
        status = "sold_out"
    else:
        status = "waiting"
    position = state.rank + 1 if status == "waiting" and open_ and state.rank >= 0 else None
    if state.status == "w":
        index = state.held + state.rank + 1
    elif state.status in ("a", "p"):
        index = state.held
    else:
        index = state.places
    return Place(
        ticket=str(ticket_id),
        status=status,
        position=position,
        joined_at=_moment(state.joined_ms),
        admitted_until=_moment(state.admitted_until_ms) if status == "admitted" else None,
        estimated_wait_seconds=None if position is None else math.ceil(position * 60 / state.admit_per_minute),
        poll_after_seconds=poll_after_seconds(index, state.places, settings.QUEUE_POLL_BUDGET),
    )


# KEYS: mirror. ARGV: the row (9 values), the waiting room's key base. tickets.sale_state writes
# the mirror with it (reservations.apps registers it).
ROOM_SALE_WRITE = ft_redis.Script(
    _PRELUDE
    + """
return room_sale_update(KEYS[1], ARGV, 1, ARGV[10], now_ms())
"""
)
