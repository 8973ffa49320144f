"""Wrong access codes, held back per client and invitation, so that nobody can lock a patient out.

There is no lock for everybody on an invitation. Each client gets ``VC_CODE_MAX_ATTEMPTS``
tries per invitation; the try that uses up this allowance, if its code is wrong, makes that
client pause for ``VC_CODE_LOCK_MINUTES``, and every further wrong code from it doubles the
pause (at most :data:`MAX_PAUSE`). While it pauses, the client's tries are refused before the
code is checked, the right code too: that is what keeps guessing hopeless. Every other client
(the patient on their phone) is not affected, and the right code ends a client's record.

A try is counted *before* its code is checked, in one atomic step (a lock in memory, a Lua
script in Redis), so parallel requests cannot slip past the allowance; a right code deletes the
record again. Records hold two numbers under a key that hashes the invitation, its current code
hash and the client as the web layer names it (an HMAC of its address or IPv6 /64 network): no
address. They expire when the link closes or the pause ends, whichever is later; a new code
starts afresh because its hash is part of the key. Times come from the injected clock, passed in
as ``now``; Redis' own expiry only removes records nobody needs any more.

``MemoryCodeGuard`` serves the embedded mode; ``RedisCodeGuard`` shares records between
processes, next to the rate limiter's keys. A Redis outage lets tries through (logged), as the
rate limiter does: it must not lock patients out.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from redis import Redis

    from ..core.config import Settings

log = logging.getLogger(__name__)

PREFIX = "vc:limiter:code-guard:"
#: The longest pause one client is made to wait for one invitation.
MAX_PAUSE = 24 * 3600.0


@dataclass(frozen=True)
class Allowance:
    """Tries per client and invitation before pauses begin, and how long the first pause lasts."""

    tries: int
    first_pause: float  # seconds
    max_pause: float = MAX_PAUSE

    @classmethod
    def of(cls, settings: Settings) -> Allowance:
        return cls(tries=settings.code_max_attempts, first_pause=settings.code_lock_minutes * 60.0)

    def pause_after(self, number: int) -> float:
        """The pause that try ``number`` starts if its code is wrong (0: none yet)."""
        if number < self.tries:
            return 0.0
        doublings = number - self.tries
        if doublings >= 64:
            return self.max_pause
        return min(self.first_pause * 2.0**doublings, self.max_pause)


def most_tries(window: float, allowance: Allowance) -> int:
    """Codes one client can have checked for one invitation within ``window`` seconds.

    The best a guesser can do: all free tries at once, then one try the moment each pause ends.
    ``docs/security.md`` quotes these numbers; a test checks them against the running service.
    """
    tries = allowance.tries
    elapsed = 0.0
    while True:
        elapsed += allowance.pause_after(tries)
        if elapsed > window:
            return tries
        tries += 1


def guard_key(invitation: str, code_hash: str, client: str) -> str:
    """The record's key: no address in it, and a new code (a new hash) gives new keys."""
    digest = hashlib.sha256(f"{invitation}\n{code_hash}\n{client}".encode()).hexdigest()[:32]
    return PREFIX + digest


@dataclass(frozen=True)
class Attempt:
    """One try at a code, counted before the code is checked.

    ``allowed`` False: the client pauses until ``paused_until`` and the code must not be checked.
    ``allowed`` True: ``number`` is this try's number (0 when it could not be counted), and
    ``paused_until`` is set when this try, if its code is wrong, starts a pause.
    """

    allowed: bool
    number: int
    paused_until: float | None


class CodeGuard(Protocol):
    def attempt(self, key: str, *, now: float, keep_until: float) -> Attempt: ...

    def paused_until(self, key: str, *, now: float) -> float | None: ...

    def forget(self, key: str) -> None: ...


class MemoryCodeGuard:
    """One process: a dictionary under a lock, swept of expired records as it goes."""

    SWEEP_EVERY = 512

    def __init__(self, allowance: Allowance) -> None:
        self._allowance = allowance
        self._records: dict[str, tuple[int, float, float]] = {}  # key → (tries, paused until, expires)
        self._lock = threading.Lock()
        self._since_sweep = 0

    def attempt(self, key: str, *, now: float, keep_until: float) -> Attempt:
        with self._lock:
            self._sweep(now)
            tries, until, _ = self._live(key, now)
            if until > now:
                return Attempt(False, tries, until)
            tries += 1
            pause = self._allowance.pause_after(tries)
            until = now + pause if pause else 0.0
            self._records[key] = (tries, until, max(keep_until, until))
            return Attempt(True, tries, until or None)

    def paused_until(self, key: str, *, now: float) -> float | None:
        with self._lock:
            _, until, _ = self._live(key, now)
            return until if until > now else None

    def forget(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)

    def _live(self, key: str, now: float) -> tuple[int, float, float]:
        record = self._records.get(key)
        if record is None or record[2] < now:
            return 0, 0.0, 0.0
        return record

    def _sweep(self, now: float) -> None:
        self._since_sweep += 1
        if self._since_sweep >= self.SWEEP_EVERY:
            self._since_sweep = 0
            for key in [k for k, record in self._records.items() if record[2] < now]:
                del self._records[key]


# KEYS[1]: the record. ARGV: now, free tries, first pause, longest pause, keep until (seconds).
# Returns {allowed (0/1), tries, paused until as a string (0: none)}.
_ATTEMPT = """
local tries = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local pause_end = tonumber(redis.call('HGET', KEYS[1], 'u') or '0')
local now = tonumber(ARGV[1])
if pause_end > now then
  return {0, tries, tostring(pause_end)}
end
tries = tries + 1
local free = tonumber(ARGV[2])
pause_end = 0
if tries >= free then
  pause_end = now + math.min(tonumber(ARGV[3]) * math.pow(2, math.min(tries - free, 64)), tonumber(ARGV[4]))
end
redis.call('HSET', KEYS[1], 'n', tries, 'u', tostring(pause_end))
local keep = math.max(tonumber(ARGV[5]), pause_end) - now
redis.call('PEXPIRE', KEYS[1], math.max(1000, math.ceil(keep * 1000)))
return {1, tries, tostring(pause_end)}
"""


class RedisCodeGuard:
    """Records in Redis hashes with expiry, shared by every app process."""

    def __init__(self, redis: Redis, allowance: Allowance) -> None:
        self._redis = redis
        self._allowance = allowance
        self._script = redis.register_script(_ATTEMPT)

    def attempt(self, key: str, *, now: float, keep_until: float) -> Attempt:
        a = self._allowance
        try:
            allowed, tries, until = self._script(
                keys=[key], args=[repr(now), a.tries, a.first_pause, a.max_pause, repr(keep_until)]
            )
        except Exception:  # noqa: BLE001 - like the rate limiter: an outage must not lock people out
            log.warning("code guard storage unavailable; a code entry was not counted")
            return Attempt(True, 0, None)
        paused = float(until)
        return Attempt(bool(allowed), int(tries), paused if paused > 0 else None)

    def paused_until(self, key: str, *, now: float) -> float | None:
        try:
            raw = self._redis.hget(key, "u")
        except Exception:  # noqa: BLE001
            log.warning("code guard storage unavailable")
            return None
        until = float(raw) if raw else 0.0
        return until if until > now else None

    def forget(self, key: str) -> None:
        try:
            self._redis.delete(key)
        except Exception:  # noqa: BLE001
            log.warning("code guard storage unavailable; a record was not deleted (it expires by itself)")


def code_guard(redis: Redis | None, settings: Settings) -> CodeGuard:
    allowance = Allowance.of(settings)
    return RedisCodeGuard(redis, allowance) if redis is not None else MemoryCodeGuard(allowance)
