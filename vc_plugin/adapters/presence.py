"""Who is in which waiting room right now: soft state that expires by itself.

Presence holds display names and queue positions, so it never touches the database. Every
room expires at the latest ``VC_RETENTION_PRESENCE_GRACE_MINUTES`` after the planned end,
and is deleted at once when the consultation ends. A member whose connection has not been
heard of for ``STALE_AFTER`` seconds counts as gone (a crashed process cannot clean up).

Presence also holds each invitation's current check-in (:class:`CheckInRecord`): which member
may use it and the display name, which therefore never sits in a cookie. It expires with
the participant's pass.

``MemoryPresence`` serves the embedded mode; ``RedisPresence`` shares rooms between
processes. Member updates are atomic in both (a lock, or a Lua script).

An arrival reads the revocations' tombstones (:mod:`.tombstones`) in the same step as the room,
and enters only unless one is later than the socket's claims: no round trip of its own, and no
window between the check and the entry.
"""

from __future__ import annotations

import enum
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from typing import Any, Protocol

from redis.exceptions import NoScriptError

from .steps import Command, ScriptMissing, Step
from .tombstones import LUA_REVOKED, Claims, MemoryTombstones, RedisTombstones

STALE_AFTER = 45.0
PREFIX = "vc:room:"
CHECK_IN_PREFIX = "vc:checkin:"
LATE_PREFIX = "vc:late:"
#: Per practitioner, their rooms by planned start (a sorted set): the estimate reads only earlier ones.
STARTS_PREFIX = "vc:starts:"


class MemberRole(enum.StrEnum):
    PATIENT = "patient"  # everyone invited: patients, interpreters, relatives (see ``kind``)
    PRACTITIONER = "practitioner"
    PROBE = "probe"  # the operator probe's peers


class MemberState(enum.StrEnum):
    WAITING = "waiting"
    ADMITTED = "admitted"


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    role: MemberRole
    name: str
    state: MemberState
    since: float
    invitation: str | None = None
    kind: str = "patient"  # patient, interpreter, relative, other
    resume: str = ""  # digest of the resume token
    resume_before: str = ""  # digest of the token it replaced (see WaitingRoom.arrive)
    connection: str = ""  # the socket that speaks for this member now
    #: What the page's device check found before entering (None: not told, e.g. an older page).
    camera: bool | None = None
    microphone: bool | None = None
    #: Who sent this member back from the call to wait (the page says so again after a reload).
    asked_to_wait_by: str = ""

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "role": self.role, "name": self.name, "kind": self.kind, "since": self.since}

    def listed(self) -> dict[str, Any]:
        """What dashboards list: the public part, the state, and whether a socket speaks for it now."""
        return {**self.public(), "state": self.state, "offline": not self.connection}


@dataclass(frozen=True, slots=True)
class Room:
    appointment: str
    organisation: int
    practitioner: str
    starts_at: float
    ends_at: float
    expires_at: float
    relay_only: bool = False
    notice: str | None = None
    kind: str = "single"
    #: Members the practitioner sent away; they cannot come back with the same check-in.
    declined: tuple[str, ...] = ()
    #: Said in every welcome and dashboard update: kept here so that no socket asks the database.
    #: Empty in rooms an older version opened (then the directory is asked).
    practitioner_name: str = ""
    members: tuple[Member, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Ahead:
    """What comes before a waiting person's turn (see ``PresenceStore.ahead``)."""

    busy_until: float | None
    late_minutes: int


@dataclass(frozen=True, slots=True)
class AheadOf:
    """The question ``PresenceStore.ahead`` answers, asked along with an arrival."""

    practitioner: str
    before: float
    now: float


@dataclass(frozen=True, slots=True)
class CheckInRecord:
    """The one check-in an invitation has at a time: the member it admits, their name, and
    a tag of the code it was made with (a new code makes it void, even if a revocation was lost)."""

    invitation: str
    member: str
    name: str
    expires_at: float
    code_tag: str = ""


@dataclass(frozen=True, slots=True)
class Arriving:
    """What an arrival reads before it decides, in one step (``PresenceStore.arriving``)."""

    room: Room | None
    earlier: Member | None  # the member's record from before (a reconnect keeps its place)
    check_in: CheckInRecord | None  # the invitation's current check-in (None: not asked, or none)
    revoked: str | None = None  # the reason of a tombstone later than one of the claims asked about
    ahead: Ahead | None = None  # the answer to ``ahead_of``, when asked


@dataclass(frozen=True, slots=True)
class Entered:
    """What ``PresenceStore.enter`` did: who is present now (the member too; [] when the room is
    gone), or, with ``revoked``, nothing: a claim was revoked, and the member did not enter."""

    present: list[Member]
    revoked: str | None = None


class PresenceStore(Protocol):
    def open_room(self, room: Room) -> None: ...
    def room_or_open(self, room: Room) -> Room:
        """The room as stored, or ``room`` opened if there is none: one step, so two first sockets open it once."""
        ...

    def room(self, appointment: str) -> Room | None: ...
    def update_room(self, appointment: str, **changes: Any) -> Room | None: ...
    def put(self, appointment: str, member: Member, now: float) -> None: ...
    def enter(self, appointment: str, member: Member, now: float, claims: Claims = ()) -> Entered:
        """``put`` unless one of ``claims`` was revoked, and who is present then, in the same step."""
        ...

    def enter_step(self, appointment: str, member: Member, now: float, claims: Claims = ()) -> Step[Entered]:
        """``enter`` as a :class:`~.steps.Step`."""
        ...

    def update(self, appointment: str, member_id: str, **changes: Any) -> Member | None: ...
    def get(self, appointment: str, member_id: str) -> Member | None: ...
    def members(self, appointment: str, now: float) -> list[Member]: ...
    def touch(self, appointment: str, member_id: str, now: float) -> None: ...
    def touch_many(self, members: list[tuple[str, str]], now: float) -> None:
        """``touch`` for many (appointment, member) pairs at once: one round trip for a whole process."""
        ...

    def remove(self, appointment: str, member_id: str) -> Member | None: ...
    def disconnect(self, appointment: str, member_id: str, connection: str) -> Member | None:
        """Mark the member offline if ``connection`` still speaks for it; None if a newer one does."""
        ...

    def close_room(self, appointment: str) -> None: ...
    def rooms_of(self, index: str) -> list[str]: ...
    def ahead(self, practitioner: str, before: float, now: float) -> Ahead:
        """What a waiting person's estimate waits for, in one question (not one per room): the latest
        planned end among the practitioner's rooms that start before ``before`` and have someone
        present, and the delay the practitioner announced."""
        ...

    def purge_stale(self, now: float) -> int: ...
    def hold_check_in(self, check_in: CheckInRecord) -> CheckInRecord | None:
        """Make this the invitation's check-in; returns the one it replaces."""
        ...

    def check_in(self, invitation: str) -> CheckInRecord | None: ...
    def arriving(
        self,
        appointment: str,
        member_id: str,
        invitation: str | None,
        claims: Claims = (),
        ahead_of: AheadOf | None = None,
    ) -> Arriving:
        """``room``, ``get``, ``check_in`` (when ``invitation`` is given), whether one of ``claims``
        was revoked, and ``ahead`` (when ``ahead_of`` is given), in one round trip."""
        ...

    def arriving_step(
        self,
        appointment: str,
        member_id: str,
        invitation: str | None,
        claims: Claims = (),
        ahead_of: AheadOf | None = None,
    ) -> Step[Arriving]:
        """``arriving`` as a :class:`~.steps.Step`."""
        ...

    def drop_check_in(self, invitation: str) -> None: ...
    def set_running_late(self, practitioner: str, minutes: int, until: float) -> None:
        """The practitioner said they run ``minutes`` late; forgotten at ``until`` (0: on time again)."""
        ...

    def running_late(self, practitioner: str) -> int: ...


def index_of_practitioner(practitioner: str) -> str:
    return f"practitioner:{practitioner}"


def index_of_organisation(organisation: int) -> str:
    return f"organisation:{organisation}"


_MEMBER_FIELDS = tuple(each.name for each in fields(Member))


def _member_json(member: Member) -> str:
    """As ``asdict`` would give it (a member holds no nested objects), without its deep copy."""
    return json.dumps({name: getattr(member, name) for name in _MEMBER_FIELDS}, separators=(",", ":"))


def _room(raw: dict[bytes, bytes]) -> Room:
    """A room from its meta hash (JSON values, read in one go as one JSON array)."""
    values = json.loads(b"[" + b",".join(raw.values()) + b"]")
    stored = {name.decode(): value for name, value in zip(raw, values, strict=True)}
    stored["declined"] = tuple(stored.get("declined") or ())
    return Room(**stored)


def _present(members: dict[bytes, bytes], seen: dict[bytes, bytes], now: float) -> list[Member]:
    """The members (id → JSON) heard of (id → time) within ``STALE_AFTER`` of ``now``."""
    return [_member(raw) for member_id, raw in members.items() if now - float(seen.get(member_id, 0)) < STALE_AFTER]


def _hash(raw: dict[bytes, bytes] | Sequence[bytes] | None) -> dict[bytes, bytes]:
    """``HGETALL`` as redis-py answers it (a dict) or as Redis does (field, value, field, …)."""
    if not raw:
        return {}
    if isinstance(raw, dict):
        return raw
    return dict(zip(raw[::2], raw[1::2], strict=True))


def _entered(replies: list[Any], *, now: float) -> Entered:
    """The ``_PUT_MEMBER`` script's answer: a revocation's reason, nothing (the room is gone), or who is present."""
    [listed] = replies
    if isinstance(listed, NoScriptError):
        raise ScriptMissing
    if isinstance(listed, Exception):
        raise listed
    if isinstance(listed, bytes):
        return Entered([], listed.decode())
    if not listed:
        return Entered([])
    members, seen = (_hash(flat) for flat in listed)
    return Entered(_present(members, seen, now))


def _ahead(raw: list[bytes]) -> Ahead:
    """The ``_AHEAD`` script's answer: the latest end ("" if none) and the announced delay ("" if none)."""
    until, minutes = raw
    return Ahead(float(until) if until else None, int(minutes) if minutes else 0)


def _member(raw: str | bytes) -> Member:
    data = json.loads(raw)
    return Member(**{**data, "role": MemberRole(data["role"]), "state": MemberState(data["state"])})


# --- in-process ---------------------------------------------------------------------------------


class MemoryPresence:
    def __init__(self, clock: Callable[[], float] = time.time, tombstones: MemoryTombstones | None = None) -> None:
        self._tombstones = tombstones or MemoryTombstones()
        self._rooms: dict[str, Room] = {}
        self._members: dict[str, dict[str, Member]] = {}
        self._seen: dict[str, dict[str, float]] = {}
        self._indices: dict[str, set[str]] = {}
        self._check_ins: dict[str, CheckInRecord] = {}
        self._late: dict[str, tuple[int, float]] = {}
        self._lock = threading.RLock()
        self._clock = clock

    def _alive(self, appointment: str) -> Room | None:
        room = self._rooms.get(appointment)
        if room is not None and room.expires_at <= self._clock():
            self.close_room(appointment)
            return None
        return room

    def open_room(self, room: Room) -> None:
        with self._lock:
            existing = self._rooms.get(room.appointment)
            if existing is not None:
                room = replace(room, notice=existing.notice, declined=existing.declined)
            self._rooms[room.appointment] = room
            self._members.setdefault(room.appointment, {})
            self._seen.setdefault(room.appointment, {})
            for index in (index_of_practitioner(room.practitioner), index_of_organisation(room.organisation)):
                self._indices.setdefault(index, set()).add(room.appointment)

    def room_or_open(self, room: Room) -> Room:
        with self._lock:
            existing = self._alive(room.appointment)
            if existing is not None:
                return existing
            self.open_room(room)
            return room

    def room(self, appointment: str) -> Room | None:
        with self._lock:
            return self._alive(appointment)

    def update_room(self, appointment: str, **changes: Any) -> Room | None:
        with self._lock:
            room = self._alive(appointment)
            if room is None:
                return None
            updated = replace(room, **changes)
            self._rooms[appointment] = updated
            if updated.practitioner != room.practitioner:
                self._indices.get(index_of_practitioner(room.practitioner), set()).discard(appointment)
                self._indices.setdefault(index_of_practitioner(updated.practitioner), set()).add(appointment)
            return updated

    def put(self, appointment: str, member: Member, now: float) -> None:
        with self._lock:
            if self._alive(appointment) is None:
                return
            self._members[appointment][member.id] = member
            self._seen[appointment][member.id] = now

    def enter(self, appointment: str, member: Member, now: float, claims: Claims = ()) -> Entered:
        with self._lock:
            revoked = self._tombstones.hit(claims)
            if revoked is not None:
                return Entered([], revoked)
            self.put(appointment, member, now)
            return Entered(self.members(appointment, now))

    def enter_step(self, appointment: str, member: Member, now: float, claims: Claims = ()) -> Step[Entered]:
        return Step(run=partial(self.enter, appointment, member, now, claims))

    def arriving_step(
        self,
        appointment: str,
        member_id: str,
        invitation: str | None,
        claims: Claims = (),
        ahead_of: AheadOf | None = None,
    ) -> Step[Arriving]:
        return Step(run=partial(self.arriving, appointment, member_id, invitation, claims, ahead_of))

    def update(self, appointment: str, member_id: str, **changes: Any) -> Member | None:
        with self._lock:
            members = self._members.get(appointment, {})
            if member_id not in members:
                return None
            members[member_id] = replace(members[member_id], **changes)
            return members[member_id]

    def get(self, appointment: str, member_id: str) -> Member | None:
        with self._lock:
            if self._alive(appointment) is None:
                return None
            return self._members[appointment].get(member_id)

    def members(self, appointment: str, now: float) -> list[Member]:
        with self._lock:
            if self._alive(appointment) is None:
                return []
            seen = self._seen[appointment]
            return [m for m in self._members[appointment].values() if now - seen.get(m.id, 0) < STALE_AFTER]

    def touch(self, appointment: str, member_id: str, now: float) -> None:
        with self._lock:
            if member_id in self._members.get(appointment, {}):
                self._seen[appointment][member_id] = now

    def touch_many(self, members: list[tuple[str, str]], now: float) -> None:
        for appointment, member_id in members:
            self.touch(appointment, member_id, now)

    def remove(self, appointment: str, member_id: str) -> Member | None:
        with self._lock:
            self._seen.get(appointment, {}).pop(member_id, None)
            return self._members.get(appointment, {}).pop(member_id, None)

    def disconnect(self, appointment: str, member_id: str, connection: str) -> Member | None:
        with self._lock:
            members = self._members.get(appointment, {})
            member = members.get(member_id)
            if member is None or member.connection != connection:
                return None
            members[member_id] = replace(member, connection="")
            return members[member_id]

    def set_running_late(self, practitioner: str, minutes: int, until: float) -> None:
        with self._lock:
            if minutes > 0:
                self._late[practitioner] = (minutes, until)
            else:
                self._late.pop(practitioner, None)

    def running_late(self, practitioner: str) -> int:
        with self._lock:
            minutes, until = self._late.get(practitioner, (0, 0.0))
            if minutes and until <= self._clock():
                del self._late[practitioner]
                return 0
            return minutes

    def close_room(self, appointment: str) -> None:
        with self._lock:
            room = self._rooms.pop(appointment, None)
            self._members.pop(appointment, None)
            self._seen.pop(appointment, None)
            if room is not None:
                for index in (index_of_practitioner(room.practitioner), index_of_organisation(room.organisation)):
                    self._indices.get(index, set()).discard(appointment)

    def rooms_of(self, index: str) -> list[str]:
        with self._lock:
            return sorted(a for a in self._indices.get(index, set()) if self._alive(a) is not None)

    def ahead(self, practitioner: str, before: float, now: float) -> Ahead:
        with self._lock:
            rooms = (self._alive(a) for a in self.rooms_of(index_of_practitioner(practitioner)))
            busy = [
                r.ends_at for r in rooms if r is not None and r.starts_at < before and self.members(r.appointment, now)
            ]
            return Ahead(max(busy, default=None), self.running_late(practitioner))

    def hold_check_in(self, check_in: CheckInRecord) -> CheckInRecord | None:
        with self._lock:
            previous = self.check_in(check_in.invitation)
            self._check_ins[check_in.invitation] = check_in
            return previous

    def arriving(
        self,
        appointment: str,
        member_id: str,
        invitation: str | None,
        claims: Claims = (),
        ahead_of: AheadOf | None = None,
    ) -> Arriving:
        check_in = self.check_in(invitation) if invitation is not None else None
        revoked = self._tombstones.hit(claims)
        ahead = self.ahead(ahead_of.practitioner, ahead_of.before, ahead_of.now) if ahead_of is not None else None
        return Arriving(self.room(appointment), self.get(appointment, member_id), check_in, revoked, ahead)

    def check_in(self, invitation: str) -> CheckInRecord | None:
        with self._lock:
            found = self._check_ins.get(invitation)
            if found is not None and found.expires_at <= self._clock():
                del self._check_ins[invitation]
                return None
            return found

    def drop_check_in(self, invitation: str) -> None:
        with self._lock:
            self._check_ins.pop(invitation, None)

    def purge_stale(self, now: float) -> int:
        """Drop expired rooms and check-ins, and members not heard of for four times the stale period."""
        removed = 0
        with self._lock:
            for invitation, check_in in list(self._check_ins.items()):
                if check_in.expires_at <= now:
                    del self._check_ins[invitation]
                    removed += 1
            for appointment in list(self._rooms):
                if self._alive(appointment) is None:
                    removed += 1
                    continue
                for member_id, seen in list(self._seen[appointment].items()):
                    if now - seen > 4 * STALE_AFTER:
                        self.remove(appointment, member_id)
                        removed += 1
        return removed


# --- Redis ----------------------------------------------------------------------------------------

#: Open a room: its meta written (but what a reopening keeps: notice, declined), its keys expiring
#: with it, and the room listed in its practitioner's and organisation's index and its practitioner's
#: starts. With ARGV[1] "if-new" a room already open is returned as it is instead (HGETALL).
#: KEYS=[meta, members, seen, practitioner index, organisation index, starts];
#: ARGV=[mode, appointment, starts_at, expire at (s), field, value, ...]
_OPEN_ROOM = """
if ARGV[1] == "if-new" and redis.call("HEXISTS", KEYS[1], "appointment") == 1 then
  return redis.call("HGETALL", KEYS[1])
end
local at = ARGV[4]
redis.call("HSET", KEYS[1], unpack(ARGV, 5))
redis.call("HSETNX", KEYS[1], "notice", "null")
redis.call("HSETNX", KEYS[1], "declined", "[]")
for i = 1, 3 do redis.call("EXPIREAT", KEYS[i], at) end
for i = 4, 5 do redis.call("SADD", KEYS[i], ARGV[2]) end
redis.call("ZADD", KEYS[6], ARGV[3], ARGV[2])
for i = 4, 6 do
  redis.call("EXPIREAT", KEYS[i], at, "GT")
  redis.call("EXPIREAT", KEYS[i], at, "NX")
end
return false
"""

#: Put a member into a room that still exists, and let its keys expire with the room's meta. With
#: ARGV[4] "list", the members and when each was heard of are returned too (two flat HGETALL lists).
#: Tombstones after the room's keys refuse the entry: their reason is returned instead.
#: KEYS=[meta, members, seen, tombstone, ...], ARGV=[id, member JSON, now, "list" or "", since, ...]
_PUT_MEMBER = (
    LUA_REVOKED
    + """
local refused = revoked(4, 5)
if refused then return refused end
local expires = redis.call("PEXPIRETIME", KEYS[1])  -- -2: the room is gone
if expires == -2 then return false end
redis.call("HSET", KEYS[2], ARGV[1], ARGV[2])
redis.call("HSET", KEYS[3], ARGV[1], ARGV[3])
if expires > 0 then
  redis.call("PEXPIREAT", KEYS[2], expires)
  redis.call("PEXPIREAT", KEYS[3], expires)
end
if ARGV[4] == "list" then
  return {redis.call("HGETALL", KEYS[2]), redis.call("HGETALL", KEYS[3])}
end
return 1
"""
)

#: Merge a JSON object of changes into a member, atomically. KEYS[1]=members hash, ARGV=[id, changes]
_UPDATE_MEMBER = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local member = cjson.decode(raw)
for k, v in pairs(cjson.decode(ARGV[2])) do member[k] = v end
local encoded = cjson.encode(member)
redis.call('HSET', KEYS[1], ARGV[1], encoded)
return encoded
"""

#: Clear a member's connection if it is still ARGV[2]. KEYS[1]=members hash, ARGV=[id, connection]
_DISCONNECT_MEMBER = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local member = cjson.decode(raw)
if member['connection'] ~= ARGV[2] then return false end
member['connection'] = ''
local encoded = cjson.encode(member)
redis.call('HSET', KEYS[1], ARGV[1], encoded)
return encoded
"""


#: The latest ``ends_at`` of the practitioner's rooms that start before ARGV[3] and have a member heard
#: of within ARGV[5] seconds of ARGV[4] ("" if none), and the announced delay (key ARGV[6]; "" if none).
#: Only earlier rooms are read (by their start, the sorted set's score, rewritten whenever the room is
#: opened), and entries of rooms that are gone are dropped. ARGV=[starts key, prefix, before, now,
#: stale after, late key]
_AHEAD = """
local now, stale = tonumber(ARGV[4]), tonumber(ARGV[5])
local latest = nil
for _, room in ipairs(redis.call("ZRANGEBYSCORE", ARGV[1], "-inf", "(" .. ARGV[3])) do
  local base = ARGV[2] .. room
  local times = redis.call("HMGET", base .. ":meta", "starts_at", "ends_at")
  local starts, ends = tonumber(times[1]), tonumber(times[2])
  if not starts then
    redis.call("ZREM", ARGV[1], room)
  elseif ends and (latest == nil or ends > latest) then
    for _, heard in ipairs(redis.call("HVALS", base .. ":seen")) do
      if now - tonumber(heard) < stale then
        latest = ends
        break
      end
    end
  end
end
local ends_last = latest and string.format("%.17g", latest) or ""
return {ends_last, redis.call("GET", ARGV[6]) or ""}
"""

#: Mark members as heard of now, each only while still in its room (no key is created for a closed room).
#: Each argument after the first two is "<appointment> <member>" (ids never hold a space).
_TOUCH_MANY = """
local prefix, now = ARGV[1], ARGV[2]
for i = 3, #ARGV do
  local sep = string.find(ARGV[i], " ", 1, true)
  local room, member = string.sub(ARGV[i], 1, sep - 1), string.sub(ARGV[i], sep + 1)
  if redis.call("HEXISTS", prefix .. room .. ":members", member) == 1 then
    redis.call("HSET", prefix .. room .. ":seen", member, now)
  end
end
return 0
"""


class RedisPresence:
    """Keys per room: ``…:meta`` (hash), ``…:members`` (id → JSON), ``…:seen`` (id → time)."""

    def __init__(
        self, redis: Any, clock: Callable[[], float] = time.time, tombstones: RedisTombstones | None = None
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._tombstones = tombstones or RedisTombstones()
        self._update_member = redis.register_script(_UPDATE_MEMBER)
        self._disconnect_member = redis.register_script(_DISCONNECT_MEMBER)
        self._touch_many = redis.register_script(_TOUCH_MANY)
        self._ahead = redis.register_script(_AHEAD)
        self._put_member = redis.register_script(_PUT_MEMBER)
        self._open_room = redis.register_script(_OPEN_ROOM)

    @staticmethod
    def _keys(appointment: str) -> tuple[str, str, str]:
        base = PREFIX + appointment
        return f"{base}:meta", f"{base}:members", f"{base}:seen"

    def open_room(self, room: Room) -> None:
        self._open(room, "reopen")

    def room_or_open(self, room: Room) -> Room:
        raw = self._open(room, "if-new")
        return _room(dict(zip(raw[::2], raw[1::2], strict=True))) if raw else room

    def _open(self, room: Room, mode: str) -> Any:
        kept = {"members", "notice", "declined"}  # what a reopening must not reset
        values = [part for k, v in asdict(room).items() if k not in kept for part in (k, json.dumps(v))]
        indices = [
            f"vc:index:{index_of_practitioner(room.practitioner)}",
            f"vc:index:{index_of_organisation(room.organisation)}",
        ]
        keys = [*self._keys(room.appointment), *indices, STARTS_PREFIX + room.practitioner]
        return self._open_room(
            keys=keys, args=[mode, room.appointment, room.starts_at, int(room.expires_at) + 1, *values]
        )

    @staticmethod
    def _list_start(pipe: Any, room: Room) -> None:
        starts = STARTS_PREFIX + room.practitioner
        pipe.zadd(starts, {room.appointment: room.starts_at})
        pipe.expireat(starts, int(room.expires_at) + 1, gt=True)
        pipe.expireat(starts, int(room.expires_at) + 1, nx=True)

    def room(self, appointment: str) -> Room | None:
        raw = self._redis.hgetall(self._keys(appointment)[0])
        if not raw or b"appointment" not in raw:
            return None
        return _room(raw)

    def update_room(self, appointment: str, **changes: Any) -> Room | None:
        before = self.room(appointment)
        if before is None:
            return None
        meta = self._keys(appointment)[0]
        self._redis.hset(meta, mapping={k: json.dumps(v) for k, v in changes.items()})
        after = replace(before, **changes)
        if after.practitioner != before.practitioner:
            key = f"vc:index:{index_of_practitioner(after.practitioner)}"
            with self._redis.pipeline() as pipe:
                pipe.srem(f"vc:index:{index_of_practitioner(before.practitioner)}", appointment)
                pipe.zrem(STARTS_PREFIX + before.practitioner, appointment)
                pipe.sadd(key, appointment)
                pipe.expireat(key, int(after.expires_at) + 1)
                self._list_start(pipe, after)
                pipe.execute()
        return after

    def put(self, appointment: str, member: Member, now: float) -> None:
        self._put_member(keys=list(self._keys(appointment)), args=[member.id, _member_json(member), now, ""])

    def enter(self, appointment: str, member: Member, now: float, claims: Claims = ()) -> Entered:
        return self.enter_step(appointment, member, now, claims).run()

    def enter_step(self, appointment: str, member: Member, now: float, claims: Claims = ()) -> Step[Entered]:
        stones = self._tombstones
        keys = [*self._keys(appointment), *stones.claim_keys(claims)]
        args = [member.id, _member_json(member), now, "list", *stones.sinces(claims)]
        parse = partial(_entered, now=now)
        return Step(
            run=lambda: parse([self._put_member(keys=keys, args=args)]),
            commands=(("EVALSHA", self._put_member.sha, len(keys), *keys, *args),),
            parse=parse,
        )

    def update(self, appointment: str, member_id: str, **changes: Any) -> Member | None:
        raw = self._update_member(keys=[self._keys(appointment)[1]], args=[member_id, json.dumps(changes)])
        return _member(raw) if raw else None

    def get(self, appointment: str, member_id: str) -> Member | None:
        raw = self._redis.hget(self._keys(appointment)[1], member_id)
        return _member(raw) if raw else None

    def members(self, appointment: str, now: float) -> list[Member]:
        _, members, seen = self._keys(appointment)
        with self._redis.pipeline() as pipe:
            pipe.hgetall(members)
            pipe.hgetall(seen)
            raw_members, raw_seen = pipe.execute()
        return _present(raw_members, raw_seen, now)

    def touch(self, appointment: str, member_id: str, now: float) -> None:
        _, members, seen = self._keys(appointment)
        if self._redis.hexists(members, member_id):
            self._redis.hset(seen, member_id, now)

    def touch_many(self, members: list[tuple[str, str]], now: float) -> None:
        if members:
            self._touch_many(keys=[], args=[PREFIX, now, *(f"{a} {m}" for a, m in members)])

    def remove(self, appointment: str, member_id: str) -> Member | None:
        _, members, seen = self._keys(appointment)
        with self._redis.pipeline() as pipe:
            pipe.hget(members, member_id)
            pipe.hdel(members, member_id)
            pipe.hdel(seen, member_id)
            raw, _, _ = pipe.execute()
        return _member(raw) if raw else None

    def disconnect(self, appointment: str, member_id: str, connection: str) -> Member | None:
        raw = self._disconnect_member(keys=[self._keys(appointment)[1]], args=[member_id, connection])
        return _member(raw) if raw else None

    def close_room(self, appointment: str) -> None:
        room = self.room(appointment)
        with self._redis.pipeline() as pipe:
            pipe.delete(*self._keys(appointment))
            if room is not None:
                for index in (index_of_practitioner(room.practitioner), index_of_organisation(room.organisation)):
                    pipe.srem(f"vc:index:{index}", appointment)
                pipe.zrem(STARTS_PREFIX + room.practitioner, appointment)
            pipe.execute()

    def rooms_of(self, index: str) -> list[str]:
        return self._prune_index(index)[0]

    def ahead(self, practitioner: str, before: float, now: float) -> Ahead:
        return _ahead(self._ahead(keys=[], args=self._ahead_args(practitioner, before, now)))

    @staticmethod
    def _ahead_args(practitioner: str, before: float, now: float) -> list[Any]:
        return [STARTS_PREFIX + practitioner, PREFIX, before, now, STALE_AFTER, LATE_PREFIX + practitioner]

    def _prune_index(self, index: str) -> tuple[list[str], int]:
        """Rooms of an index that still exist; entries of expired rooms are removed."""
        appointments = sorted(a.decode() for a in self._redis.smembers(f"vc:index:{index}"))
        if not appointments:
            return [], 0
        with self._redis.pipeline() as pipe:
            for appointment in appointments:
                pipe.exists(self._keys(appointment)[0])
            alive = pipe.execute()
        gone = [a for a, exists in zip(appointments, alive, strict=True) if not exists]
        if gone:
            self._redis.srem(f"vc:index:{index}", *gone)
        return [a for a, exists in zip(appointments, alive, strict=True) if exists], len(gone)

    def hold_check_in(self, check_in: CheckInRecord) -> CheckInRecord | None:
        raw = self._redis.set(
            f"{CHECK_IN_PREFIX}{check_in.invitation}",
            json.dumps(asdict(check_in), separators=(",", ":")),
            ex=max(1, int(check_in.expires_at - self._clock()) + 1),  # by the app's clock, not Redis's
            get=True,
        )
        return CheckInRecord(**json.loads(raw)) if raw else None

    def arriving(
        self,
        appointment: str,
        member_id: str,
        invitation: str | None,
        claims: Claims = (),
        ahead_of: AheadOf | None = None,
    ) -> Arriving:
        return self.arriving_step(appointment, member_id, invitation, claims, ahead_of).run()

    def arriving_step(
        self,
        appointment: str,
        member_id: str,
        invitation: str | None,
        claims: Claims = (),
        ahead_of: AheadOf | None = None,
    ) -> Step[Arriving]:
        meta, members = self._keys(appointment)[:2]
        commands: list[Command] = [("HGETALL", meta), ("HGET", members, member_id)]
        if invitation is not None:
            commands.append(("GET", f"{CHECK_IN_PREFIX}{invitation}"))
        if claims:
            commands.append(("MGET", *self._tombstones.claim_keys(claims)))
        if ahead_of is not None:
            # By its digest: a script object in a pipeline costs a round trip of its own (SCRIPT EXISTS).
            args = self._ahead_args(ahead_of.practitioner, ahead_of.before, ahead_of.now)
            commands.append(("EVALSHA", self._ahead.sha, 0, *args))
        parse = partial(self._arrived, invitation=invitation, claims=claims, ahead_of=ahead_of)

        def run() -> Arriving:
            with self._redis.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                return parse(pipe.execute(raise_on_error=False), ask_again=True)

        return Step(run=run, commands=tuple(commands), parse=parse)

    def _arrived(
        self,
        replies: list[Any],
        *,
        invitation: str | None,
        claims: Claims,
        ahead_of: AheadOf | None,
        ask_again: bool = False,
    ) -> Arriving:
        """``ask_again``: a script Redis lost (a restart) is loaded again by asking ``ahead`` on its
        own; else that raises :class:`ScriptMissing`."""
        raw_room, raw_member, *rest = replies
        raw_ahead = rest.pop() if ahead_of is not None else None
        for reply in (raw_room, raw_member, *rest):
            if isinstance(reply, Exception):
                raise reply
        raw_check_in = rest.pop(0) if invitation is not None else None
        ahead = None
        if ahead_of is not None:
            if isinstance(raw_ahead, NoScriptError):
                if not ask_again:
                    raise ScriptMissing
                ahead = self.ahead(ahead_of.practitioner, ahead_of.before, ahead_of.now)
            elif isinstance(raw_ahead, Exception):
                raise raw_ahead
            else:
                ahead = _ahead(raw_ahead)
        meta = _hash(raw_room)
        return Arriving(
            _room(meta) if b"appointment" in meta else None,
            _member(raw_member) if raw_member else None,
            CheckInRecord(**json.loads(raw_check_in)) if raw_check_in else None,
            self._tombstones.reason(rest[0], claims) if claims else None,
            ahead,
        )

    def check_in(self, invitation: str) -> CheckInRecord | None:
        raw = self._redis.get(f"{CHECK_IN_PREFIX}{invitation}")
        return CheckInRecord(**json.loads(raw)) if raw else None

    def drop_check_in(self, invitation: str) -> None:
        self._redis.delete(f"{CHECK_IN_PREFIX}{invitation}")

    def set_running_late(self, practitioner: str, minutes: int, until: float) -> None:
        key = f"{LATE_PREFIX}{practitioner}"
        if minutes > 0:
            self._redis.set(key, minutes, ex=max(1, int(until - self._clock()) + 1))  # the app's clock
        else:
            self._redis.delete(key)

    def running_late(self, practitioner: str) -> int:
        raw = self._redis.get(f"{LATE_PREFIX}{practitioner}")
        return int(raw) if raw else 0

    def purge_stale(self, now: float) -> int:
        """Remove members not heard of for a long time, and index entries of expired rooms."""
        removed = 0
        for key in self._redis.scan_iter(match=f"{PREFIX}*:seen", count=500):
            appointment = key.decode()[len(PREFIX) : -len(":seen")]
            for member_id, heard in self._redis.hgetall(key).items():
                if now - float(heard) > 4 * STALE_AFTER:
                    self.remove(appointment, member_id.decode())
                    removed += 1
        for key in self._redis.scan_iter(match="vc:index:*", count=500):
            removed += self._prune_index(key.decode()[len("vc:index:") :])[1]
        return removed
