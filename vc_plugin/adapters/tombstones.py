"""Tombstones: what a revocation leaves behind, scope → when and why, for as long as a socket
could still act on an older claim (:mod:`vc_plugin.domain.revocation`).

One record, two readers. The bus reads it before it relays (``publish_unless_revoked``), and
presence reads it while someone arrives, in the same step as the room: a connect asks "revoked
meanwhile?" without a round trip of its own, and a socket revoked while it arrived never enters.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

#: (scope, since): the sender's or receiver's claims, see :class:`vc_plugin.domain.revocation.Claim`.
Claims = Sequence[tuple[str, float]]

#: A Lua function for scripts that check tombstones: the reason of the first tombstone among
#: ``KEYS[first..]`` later than its claim's since (``ARGV[since_at]``, ``ARGV[since_at + 1]``, …),
#: or false. A tombstone's value is "<time> <reason>".
LUA_REVOKED = """
local function revoked(first, since_at)
  for i = first, #KEYS do
    local stone = redis.call('GET', KEYS[i])
    if stone then
      local at, reason = string.match(stone, '^(%S+) ?(.*)$')
      if tonumber(at) > tonumber(ARGV[since_at + i - first]) then return reason end
    end
  end
  return false
end
"""


class MemoryTombstones:
    """Scope → (revocation time, reason, monotonic expiry), for the embedded mode (one process)."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, str, float]] = {}
        self._lock = threading.Lock()

    def add(self, scopes: Sequence[str], at: float, reason: str, keep_seconds: int) -> None:
        expires = time.monotonic() + keep_seconds
        with self._lock:
            for scope in scopes:
                old = self._items.get(scope)
                if old is None or old[0] < at:
                    self._items[scope] = (at, reason, expires)
            if len(self._items) > 10_000:  # keep the dictionary small: drop what expired
                now = time.monotonic()
                self._items = {k: v for k, v in self._items.items() if v[2] > now}

    def hit(self, claims: Claims) -> str | None:
        """The reason of a tombstone later than a claim's since, or None."""
        if not self._items:
            return None
        now = time.monotonic()
        with self._lock:
            for scope, since in claims:
                found = self._items.get(scope)
                if found is not None and found[2] > now and found[0] > since:
                    return found[1]
        return None


class RedisTombstones:
    """Where tombstones live in Redis (one key per scope, expiring by itself), and how to read them.
    The scripts that write and check them belong to their callers (bus, presence)."""

    def __init__(self, prefix: str = "vc:bus:revoked:") -> None:
        self.prefix = prefix

    def keys(self, scopes: Sequence[str]) -> list[str]:
        return [self.prefix + scope for scope in scopes]

    def claim_keys(self, claims: Claims) -> list[str]:
        return [self.prefix + scope for scope, _ in claims]

    @staticmethod
    def sinces(claims: Claims) -> list[str]:
        """Each claim's since as a script argument (``repr``: exact, as Lua reads it)."""
        return [repr(float(since)) for _, since in claims]

    @staticmethod
    def reason(found: Sequence[bytes | str | None], claims: Claims) -> str | None:
        """What ``MGET`` of ``claim_keys`` found, read: the first reason later than its claim's since."""
        for stone, (_, since) in zip(found, claims, strict=True):
            if stone is not None:
                text = stone.decode() if isinstance(stone, bytes) else stone
                at, _, reason = text.partition(" ")
                if float(at) > since:
                    return reason
        return None
