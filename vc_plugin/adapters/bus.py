"""Publish/subscribe between the sockets of all app processes.

``LocalBus`` serves the embedded mode (one process). ``RedisBus`` holds one Redis pub/sub
connection per process, not one per socket, and one listener thread that hands each
message to the callbacks registered for its channel. Callbacks must not block: they
queue the message for a socket and return.

Revocations (:mod:`vc_plugin.domain.revocation`) leave *tombstones* (:mod:`.tombstones`), written
here. ``publish_unless_revoked`` checks them and publishes in one step (a Lua script on Redis),
so no message from or to a revoked socket is relayed once ``revoke`` returned, whichever process
the socket is on and whether it has heard of the revocation yet.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .steps import Step
from .tombstones import LUA_REVOKED, Claims, MemoryTombstones, RedisTombstones

log = logging.getLogger(__name__)

Callback = Callable[[str], None]
#: A channel and who hears it.
Subscription = tuple[str, Callback]
RESTART_CHECK_SECONDS = 2.0

#: KEYS: tombstones; ARGV: since per key, then channel and message. Publishes unless revoked.
_PUBLISH_UNLESS_REVOKED = (
    LUA_REVOKED
    + """
if revoked(1, 1) then return -1 end
return redis.call('PUBLISH', ARGV[#KEYS + 1], ARGV[#KEYS + 2])
"""
)
#: KEYS: tombstones; ARGV: time, reason, seconds to keep, channel, message. Later times win.
_REVOKE = """
for _, key in ipairs(KEYS) do
  local old = redis.call('GET', key)
  if not old or tonumber(string.match(old, '^%S+')) < tonumber(ARGV[1]) then
    redis.call('SET', key, ARGV[1] .. ' ' .. ARGV[2], 'EX', tonumber(ARGV[3]))
  end
end
return redis.call('PUBLISH', ARGV[4], ARGV[5])
"""


class Bus(Protocol):
    def publish(self, channel: str, message: str) -> None: ...

    def publish_to_all(self, channels: Sequence[str], message: str) -> None:
        """One message on several channels, in one round trip."""
        ...

    def publishing(self, messages: Sequence[tuple[str, str]]) -> Step[None]:
        """(channel, message) pairs published in this order, in one round trip, as a :class:`~.steps.Step`."""
        ...

    def publish_unless_revoked(self, channel: str, message: str, claims: Claims) -> bool:
        """Publish unless a tombstone is later than a claim's ``since``; False when refused."""
        ...

    def revoked_reason(self, claims: Claims) -> str | None:
        """The reason of a tombstone later than a claim's ``since``, or None."""
        ...

    def revoke(
        self, scopes: Sequence[str], at: float, reason: str, *, keep_seconds: int, channel: str, message: str
    ) -> None:
        """Leave tombstones for ``scopes`` and publish ``message`` on ``channel``, in one step."""
        ...

    def subscribe(self, channel: str, callback: Callback) -> None: ...

    def unsubscribe(self, channel: str, callback: Callback) -> None: ...

    def subscribe_all(self, subscriptions: Sequence[Subscription]) -> None:
        """Several at once: on Redis, the channels new to this process in one command."""
        ...

    def unsubscribe_all(self, subscriptions: Sequence[Subscription]) -> None:
        """Several at once: on Redis, the channels nobody here hears any more in one command."""
        ...

    def on_reconnect(self, callback: Callable[[], None]) -> None: ...

    def close(self) -> None: ...


class _Subscribers:
    """Channel → callbacks, shared by both implementations."""

    def __init__(self) -> None:
        self._by_channel: dict[str, list[Callback]] = defaultdict(list)
        self._lock = threading.Lock()

    def add(self, channel: str, callback: Callback) -> bool:
        """Returns True when this is the channel's first subscriber."""
        with self._lock:
            first = channel not in self._by_channel
            self._by_channel[channel].append(callback)
            return first

    def remove(self, channel: str, callback: Callback) -> bool:
        """Returns True when the channel has no subscriber left."""
        with self._lock:
            callbacks = self._by_channel.get(channel)
            if not callbacks:
                return False
            try:
                callbacks.remove(callback)
            except ValueError:
                return False
            if not callbacks:
                del self._by_channel[channel]
                return True
            return False

    def get(self, channel: str) -> list[Callback]:
        with self._lock:
            return list(self._by_channel.get(channel, ()))

    def channels(self) -> list[str]:
        with self._lock:
            return list(self._by_channel)

    def __bool__(self) -> bool:
        """Any subscriber at all; cheap, unlike copying the channel list (3 channels per socket)."""
        with self._lock:
            return bool(self._by_channel)

    def deliver(self, channel: str, message: str) -> None:
        for callback in self.get(channel):
            try:
                callback(message)
            except Exception:
                log.exception("bus subscriber failed")


class LocalBus:
    def __init__(self, tombstones: MemoryTombstones | None = None) -> None:
        self._subscribers = _Subscribers()
        self._tombstones = tombstones or MemoryTombstones()

    def publish(self, channel: str, message: str) -> None:
        self._subscribers.deliver(channel, message)

    def publish_to_all(self, channels: Sequence[str], message: str) -> None:
        for channel in channels:
            self._subscribers.deliver(channel, message)

    def publishing(self, messages: Sequence[tuple[str, str]]) -> Step[None]:
        def run() -> None:
            for channel, message in messages:
                self._subscribers.deliver(channel, message)

        return Step(run=run)

    def publish_unless_revoked(self, channel: str, message: str, claims: Claims) -> bool:
        if self._tombstones.hit(claims) is not None:
            return False
        self._subscribers.deliver(channel, message)
        return True

    def revoked_reason(self, claims: Claims) -> str | None:
        return self._tombstones.hit(claims)

    def revoke(
        self, scopes: Sequence[str], at: float, reason: str, *, keep_seconds: int, channel: str, message: str
    ) -> None:
        self._tombstones.add(scopes, at, reason, keep_seconds)
        self._subscribers.deliver(channel, message)

    def subscribe(self, channel: str, callback: Callback) -> None:
        self._subscribers.add(channel, callback)

    def unsubscribe(self, channel: str, callback: Callback) -> None:
        self._subscribers.remove(channel, callback)

    def subscribe_all(self, subscriptions: Sequence[Subscription]) -> None:
        for channel, callback in subscriptions:
            self._subscribers.add(channel, callback)

    def unsubscribe_all(self, subscriptions: Sequence[Subscription]) -> None:
        for channel, callback in subscriptions:
            self._subscribers.remove(channel, callback)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """The in-process bus never loses its connection."""

    def close(self) -> None:
        pass


def _published(replies: list[Any]) -> None:
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply


class RedisBus:
    """One pub/sub connection and one listener thread per process."""

    def __init__(self, redis: Any, *, prefix: str = "vc:bus:", tombstones: RedisTombstones | None = None) -> None:
        self._redis = redis
        self._prefix = prefix
        self._subscribers = _Subscribers()
        self._pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self._tombstones = tombstones or RedisTombstones(prefix + "revoked:")
        self._publish_unless_revoked = redis.register_script(_PUBLISH_UNLESS_REVOKED)
        self._revoke = redis.register_script(_REVOKE)
        self._reconnect_callbacks: list[Callable[[], None]] = []
        self._pubsub_lock = threading.Lock()
        self._run_id: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="vc_plugin-bus", daemon=True)
        self._thread.start()

    @property
    def prefix(self) -> str:
        """What every channel's name starts with in Redis (others listening on their own connection need it)."""
        return self._prefix

    def publish(self, channel: str, message: str) -> None:
        self._redis.publish(self._prefix + channel, message)

    def publish_to_all(self, channels: Sequence[str], message: str) -> None:
        self.publishing([(channel, message) for channel in channels]).run()

    def publishing(self, messages: Sequence[tuple[str, str]]) -> Step[None]:
        commands = tuple(("PUBLISH", self._prefix + channel, message) for channel, message in messages)

        def run() -> None:
            with self._redis.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                _published(pipe.execute(raise_on_error=False))

        return Step(run=run, commands=commands, parse=_published)

    def publish_unless_revoked(self, channel: str, message: str, claims: Claims) -> bool:
        stones = self._tombstones
        args = [*stones.sinces(claims), self._prefix + channel, message]
        return self._publish_unless_revoked(keys=stones.claim_keys(claims), args=args) != -1

    def revoked_reason(self, claims: Claims) -> str | None:
        if not claims:
            return None
        return self._tombstones.reason(self._redis.mget(self._tombstones.claim_keys(claims)), claims)

    def revoke(
        self, scopes: Sequence[str], at: float, reason: str, *, keep_seconds: int, channel: str, message: str
    ) -> None:
        self._revoke(
            keys=self._tombstones.keys(scopes),
            args=[repr(float(at)), reason, keep_seconds, self._prefix + channel, message],
        )

    def subscribe(self, channel: str, callback: Callback) -> None:
        self.subscribe_all(((channel, callback),))

    def unsubscribe(self, channel: str, callback: Callback) -> None:
        self.unsubscribe_all(((channel, callback),))

    def subscribe_all(self, subscriptions: Sequence[Subscription]) -> None:
        # Listeners and Redis change under one lock: a channel's last listener leaving in one thread
        # and its first arriving in another must reach Redis in that order.
        with self._pubsub_lock:
            new = [self._prefix + c for c, callback in subscriptions if self._subscribers.add(c, callback)]
            if new:
                self._safely(self._pubsub.subscribe, new)

    def unsubscribe_all(self, subscriptions: Sequence[Subscription]) -> None:
        with self._pubsub_lock:
            gone = [self._prefix + c for c, callback in subscriptions if self._subscribers.remove(c, callback)]
            if gone:
                self._safely(self._pubsub.unsubscribe, gone)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        self._reconnect_callbacks.append(callback)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)
        with contextlib.suppress(Exception):  # a broken connection may fail to close; nothing to do
            self._pubsub.close()

    def _safely(self, operation: Callable[..., Any], channels: list[str]) -> None:
        """While Redis is away, (un)subscribing is remembered and replayed on reconnect."""
        try:
            operation(*channels)
        except Exception as error:  # noqa: BLE001
            log.warning("bus: Redis unavailable while changing subscriptions (%s)", type(error).__name__)

    def _listen(self) -> None:
        lost = False
        next_check = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + RESTART_CHECK_SECONDS
                if self._restarted():
                    lost = True
            if not self._subscribers:
                time.sleep(0.05)
                continue
            try:
                if lost:
                    self._resubscribe()
                    lost = False
                    self._announce_reconnect()
                message = self._pubsub.get_message(timeout=0.5)
            except Exception as error:  # noqa: BLE001 - any Redis failure: back off and retry
                if not lost:
                    log.warning("bus: lost Redis (%s); reconnecting", type(error).__name__)
                lost = True
                time.sleep(0.5)
                continue
            if message and message.get("type") == "message":
                channel = _text(message["channel"])[len(self._prefix) :]
                self._subscribers.deliver(channel, _text(message["data"]))

    def _restarted(self) -> bool:
        """Has Redis restarted since we last looked? Its data (presence) is then gone.

        redis-py reconnects pub/sub connections by itself, so a lost connection is not always
        seen here; the server's run id changes with every start.
        """
        try:
            run_id = self._redis.info("server").get("run_id")
        except Exception:  # noqa: BLE001 - unreachable right now: the next check tells
            return False
        previous, self._run_id = self._run_id, run_id
        return previous is not None and run_id != previous

    def _resubscribe(self) -> None:
        with self._pubsub_lock:
            self._pubsub.reset()
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            channels = [self._prefix + channel for channel in self._subscribers.channels()]
            if channels:
                self._pubsub.subscribe(*channels)
        log.info("bus: reconnected to Redis, %d channels", len(channels))

    def _announce_reconnect(self) -> None:
        for callback in list(self._reconnect_callbacks):
            try:
                callback()
            except Exception:
                log.exception("bus reconnect callback failed")


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value
