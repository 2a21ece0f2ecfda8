"""The booking line: bookings of one ticket wait in Redis, first in, first out, for its lock.

A booking enters the line and, if the ticket's lock (tickets.locks) is free, takes it and becomes
the holder; otherwise it waits for its answer. The holder takes the waiting bookings in arrival
order, up to BOOKING_BATCH_MAX at a time, books them together in one transaction
(reservations.batch), pushes each its answer, and goes on while bookings wait (or hands the lock
to a cancel or staff edit that waits for it). A waiter whose wait runs out takes itself out of the
line; taking itself out and being taken by a holder are one script each, so exactly one of them
succeeds: a booking that answered 503 `busy` from the line was never taken, and is never booked.

Each step is one Lua script over the ticket's keys (tickets.locks.TicketKeys, then the mirror).
Bookings of a ticket with a waiting room use the caller's admission in the same script that puts
them in the line (reservations.room). Refusals are counted per second for the sales view in the
same scripts, in reservations.refusals' layout.
"""

from dataclasses import dataclass
from uuid import UUID

from fastticket import redis as ft_redis
from reservations.refusals import REFUSAL_TTL_SECONDS, refusal_prefix
from reservations.room import ROOM_LUA, PlaceState, room_base
from tickets.locks import ANSWER_EXPIRE_MS, LOCK_LUA, TicketKeys
from tickets.sale_state import SALE_LUA

LINE_LUA = """
-- Take the first `max` bookings of the line, in arrival order, as batch `batch`.
-- Keeps: a booking is taken at most once; from then on only its batch may answer it.
local function line_take(batch, max)
  local popped = redis.call("ZPOPMIN", KEYS[4], max)
  local out = {batch}
  for n = 1, #popped, 2 do
    local rid = popped[n]
    redis.call("HSET", KEYS[6], rid, batch)
    out[#out + 1] = rid
    out[#out + 1] = redis.call("HGET", KEYS[5], rid) or ""
  end
  return out
end

local function refusal_count(prefix, second, code, by)
  local key = prefix .. second
  redis.call("HINCRBY", key, code, by)
  redis.call("EXPIRE", key, $REFUSALS_KEEP)
end
""".replace("$REFUSALS_KEEP", str(REFUSAL_TTL_SECONDS))

_PRELUDE = LOCK_LUA + SALE_LUA + ROOM_LUA + LINE_LUA

# ARGV: rid, payload (Entry.payload), holder id, lock ms, batch max, batch id, answers prefix,
# room base, user, admission hold ms, refusals prefix, the ticket row the booking read (9 values,
# tickets.sale_state).
# Keeps: a booking of a waiting-room ticket enters the line only with the caller's unexpired
# admission, which it holds from then on; arrivals are numbered in the order they enter; the lock
# is taken only when free and no cancel or staff edit waits for it.
_ENTER = ft_redis.Script(
    _PRELUDE
    + """
local now = now_ms()
room_sale_update(KEYS[8], ARGV, 12, ARGV[8], now)
local sale = sale_read(KEYS[8])
local room = "0"
local R = room_of(sale, ARGV[8])
if R then
  room_advance(R, sale, now)
  if not room_use_admission(R, ARGV[9], ARGV[1], now, tonumber(ARGV[10])) then
    refusal_count(ARGV[11], math.floor(now / 1000), "not_admitted", 1)
    return {"not_admitted", unpack(room_view(R, sale, ARGV[9], now))}
  end
  room = tostring(sale.g)
end
redis.call("ZADD", KEYS[4], redis.call("INCR", KEYS[7]), ARGV[1])
redis.call("HSET", KEYS[5], ARGV[1], room .. "|" .. ARGV[2])
if not outside_waiting(KEYS[3], now) and redis.call("SET", KEYS[1], ARGV[3], "NX", "PX", ARGV[4]) then
  return {"lead", unpack(line_take(ARGV[6], tonumber(ARGV[5])))}
end
return {"wait"}
"""
)

# ARGV: rid, holder id, lock ms, batch max, batch id.
_TRY_LEAD = ft_redis.Script(
    _PRELUDE
    + """
if not redis.call("ZSCORE", KEYS[4], ARGV[1]) then
  return {"gone"}
end
if outside_waiting(KEYS[3], now_ms()) then
  return {"wait"}
end
if redis.call("SET", KEYS[1], ARGV[2], "NX", "PX", ARGV[3]) then
  return {"lead", unpack(line_take(ARGV[5], tonumber(ARGV[4])))}
end
return {"wait"}
"""
)

# ARGV: holder id, batch id, lock ms, batch max, next batch id, answers prefix, go on (1/0), room
# base, refusals prefix, the ticket row (9 values, tickets.sale_state), sold-out and busy answers of
# the batch, then per booking: rid, answer, booked (1/0), room generation (0: none), user.
# Keeps: only the batch that took a booking answers it; a booking that used an admission ends it
# (booked, or the admission is back); the mirror moves only forward; the lock goes on to the next
# batch only while no cancel or staff edit waits for it, and its release wakes the line.
_FINISH = ft_redis.Script(
    _PRELUDE
    + """
local now = now_ms()
room_sale_update(KEYS[8], ARGV, 10, ARGV[8], now)
local sale = sale_read(KEYS[8])
for n = 21, #ARGV, 5 do
  local rid = ARGV[n]
  if redis.call("HGET", KEYS[6], rid) == ARGV[2] then
    redis.call("HDEL", KEYS[6], rid)
    redis.call("HDEL", KEYS[5], rid)
    redis.call("RPUSH", ARGV[6] .. rid, ARGV[n + 1])
    redis.call("PEXPIRE", ARGV[6] .. rid, $ANSWER_EXPIRE)
  end
  local room = ARGV[n + 3]
  if room ~= "0" and sale and sale.wr == 1 and tostring(sale.g) == room then
    room_booking_done(ARGV[8] .. room .. ":", ARGV[n + 4], rid, ARGV[n + 2] == "1", now)
  end
end
local second = math.floor(now / 1000)
if tonumber(ARGV[19]) > 0 then
  refusal_count(ARGV[9], second, "sold_out", tonumber(ARGV[19]))
end
if tonumber(ARGV[20]) > 0 then
  refusal_count(ARGV[9], second, "busy", tonumber(ARGV[20]))
end
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return {"lost"}
end
if ARGV[7] == "1" and redis.call("ZCARD", KEYS[4]) > 0 and not outside_waiting(KEYS[3], now) then
  redis.call("PEXPIRE", KEYS[1], ARGV[3])
  return {"batch", unpack(line_take(ARGV[5], tonumber(ARGV[4])))}
end
lock_release(KEYS, ARGV[1], now, ARGV[6])
return {"released"}
""".replace("$ANSWER_EXPIRE", str(ANSWER_EXPIRE_MS))
)

# ARGV: rid, answers prefix, room base, user, refusals prefix.
# Keeps: a booking leaves the line only if no holder took it (then it is never booked); an
# admission it held is back; the lock, if free, goes to the next booking.
_WITHDRAW = ft_redis.Script(
    _PRELUDE
    + """
local now = now_ms()
if redis.call("ZREM", KEYS[4], ARGV[1]) == 1 then
  local payload = redis.call("HGET", KEYS[5], ARGV[1]) or "0|"
  redis.call("HDEL", KEYS[5], ARGV[1])
  redis.call("DEL", ARGV[2] .. ARGV[1])
  local room = string.match(payload, "^(%d+)|")
  if room and room ~= "0" then
    room_booking_done(ARGV[3] .. room .. ":", ARGV[4], ARGV[1], false, now)
  end
  refusal_count(ARGV[5], math.floor(now / 1000), "busy", 1)
  if redis.call("EXISTS", KEYS[1]) == 0 then
    line_wake_head(KEYS[4], ARGV[2])
  end
  return {"withdrawn"}
end
local answer = redis.call("LPOP", ARGV[2] .. ARGV[1])
while answer == "" do
  answer = redis.call("LPOP", ARGV[2] .. ARGV[1])
end
if answer then
  return {"answer", answer}
end
if redis.call("HEXISTS", KEYS[6], ARGV[1]) == 1 then
  return {"taken"}
end
return {"gone"}
"""
)

# KEYS: mirror. ARGV: room base, the admission's generation, user, rid, booked (1/0).
_ADMISSION_DONE = ft_redis.Script(
    _PRELUDE
    + """
local sale = sale_read(KEYS[1])
if sale and sale.wr == 1 and tostring(sale.g) == ARGV[2] then
  room_booking_done(ARGV[1] .. ARGV[2] .. ":", ARGV[3], ARGV[4], ARGV[5] == "1", now_ms())
end
return 0
"""
)


@dataclass(frozen=True)
class Entry:
    """One booking in the line: the reservation id it gets if booked, the caller, its key, and
    when its request stops waiting (wall-clock ms; bounds its batch's wait for the row lock)."""

    rid: str
    user_id: str
    key: str | None
    deadline_ms: int
    room: int = 0  # the waiting room's generation whose admission it holds (0: none)

    def payload(self) -> str:
        """The entry as the line stores it, after the room generation the script puts first."""
        return f"{self.user_id}|{self.deadline_ms}|{self.key or ''}"

    @classmethod
    def parse(cls, rid: bytes, payload: bytes) -> "Entry":
        room, user_id, deadline_ms, key = payload.decode().split("|", 3)
        return cls(rid.decode(), user_id, key or None, int(deadline_ms), int(room))


@dataclass(frozen=True)
class Batch:
    batch_id: str
    entries: list[Entry]


@dataclass(frozen=True)
class Entered:
    """What entering the line gave: `lead` (with a batch), `wait`, or `not_admitted` (with the
    caller's place in the ticket's waiting room, None when they hold none)."""

    kind: str
    batch: Batch | None = None
    place: PlaceState | None = None


def _batch(raw: list) -> Batch:
    return Batch(raw[0].decode(), [Entry.parse(raw[n], raw[n + 1]) for n in range(1, len(raw), 2)])


class Line:
    """One ticket's booking line, as one request (with its holder id) sees it."""

    def __init__(self, client, *, keys: TicketKeys, mirror: str, ticket_id: UUID | str, holder_id: str) -> None:
        self.client = client
        self.ticket_id = str(ticket_id)
        self.keys = [*keys.all(), mirror]
        self.mirror = mirror
        self.answers = keys.answers
        self.room_base = room_base(ticket_id)
        self.refusals = refusal_prefix(ticket_id)
        self.holder_id = holder_id

    def answer_key(self, rid: str) -> str:
        return self.answers + rid

    def enter(
        self, entry: Entry, *, sale_row: list[int], lock_ms: int, batch_max: int, batch_id: str, hold_ms: int
    ) -> Entered:
        args = [
            entry.rid,
            entry.payload(),
            self.holder_id,
            lock_ms,
            batch_max,
            batch_id,
            self.answers,
            self.room_base,
            entry.user_id,
            hold_ms,
            self.refusals,
            *sale_row,
        ]
        raw = _ENTER(self.client, keys=self.keys, args=args)
        kind = raw[0].decode()
        if kind == "lead":
            return Entered(kind, batch=_batch(raw[1:]))
        if kind == "not_admitted":
            place = None if raw[1] == b"none" else PlaceState(raw[2].decode(), *(int(value) for value in raw[3:]))
            return Entered(kind, place=place)
        return Entered(kind)

    def try_lead(self, rid: str, *, lock_ms: int, batch_max: int, batch_id: str) -> Batch | bool | None:
        """Take the lock if free: a batch; None to keep waiting; False when no longer in the line."""
        raw = _TRY_LEAD(self.client, keys=self.keys, args=[rid, self.holder_id, lock_ms, batch_max, batch_id])
        kind = raw[0]
        if kind == b"lead":
            return _batch(raw[1:])
        return False if kind == b"gone" else None

    def finish(
        self,
        batch: Batch,
        answers: list[tuple[Entry, bytes, bool]],
        *,
        sale_row: list[int],
        refused: tuple[int, int],
        go_on: bool,
        lock_ms: int,
        batch_max: int,
        next_batch_id: str,
    ) -> Batch | str:
        """Answer a batch's bookings; the next batch, or "released" / "lost" (the lock expired meanwhile)."""
        args: list = [
            self.holder_id,
            batch.batch_id,
            lock_ms,
            batch_max,
            next_batch_id,
            self.answers,
            int(go_on),
            self.room_base,
            self.refusals,
            *sale_row,
            *refused,
        ]
        for entry, answer, booked in answers:
            args += [entry.rid, answer, int(booked), entry.room, entry.user_id]
        raw = _FINISH(self.client, keys=self.keys, args=args)
        if raw[0] == b"batch":
            return _batch(raw[1:])
        return raw[0].decode()

    def wait(self, rid: str, seconds: float) -> bytes | None:
        """Wait up to `seconds` (at most one WAIT_SLICE) for the booking's answer or a wake-up (b"")."""
        popped = self.client.blpop([self.answer_key(rid)], max(min(seconds, ft_redis.WAIT_SLICE), 0.01))
        return None if popped is None else popped[1]

    def withdraw(self, entry: Entry) -> tuple[str, bytes | None]:
        """Leave the line at the end of the wait: ("withdrawn" | "answer" | "taken" | "gone", answer)."""
        args = [entry.rid, self.answers, self.room_base, entry.user_id, self.refusals]
        raw = _WITHDRAW(self.client, keys=self.keys, args=args)
        return raw[0].decode(), (raw[1] if len(raw) > 1 else None)

    def admission_done(self, entry: Entry, *, booked: bool) -> None:
        """End the admission a booking held, when no holder did (the booking was settled apart)."""
        if entry.room:
            args = [self.room_base, entry.room, entry.user_id, entry.rid, int(booked)]
            _ADMISSION_DONE(self.client, keys=[self.mirror], args=args)
