"""Publish/subscribe between the sockets of all app processes.

``LocalBus`` serves the embedded mode (one process). ``RedisBus`` holds one Redis pub/sub
connection per process, not one per socket, and one listener thread that hands each
message to the callbacks registered for its channel. Callbacks must not block: they
queue the message for a socket and return.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

Callback = Callable[[str], None]
RESTART_CHECK_SECONDS = 2.0


class Bus(Protocol):
    def publish(self, channel: str, message: str) -> None: ...

    def subscribe(self, channel: str, callback: Callback) -> None: ...

    def unsubscribe(self, channel: str, callback: Callback) -> None: ...

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
    def __init__(self) -> None:
        self._subscribers = _Subscribers()

    def publish(self, channel: str, message: str) -> None:
        self._subscribers.deliver(channel, message)

    def subscribe(self, channel: str, callback: Callback) -> None:
        self._subscribers.add(channel, callback)

    def unsubscribe(self, channel: str, callback: Callback) -> None:
        self._subscribers.remove(channel, callback)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """The in-process bus never loses its connection."""

    def close(self) -> None:
        pass


class RedisBus:
    """One pub/sub connection and one listener thread per process."""

    def __init__(self, redis: Any, *, prefix: str = "vc:bus:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._subscribers = _Subscribers()
        self._pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self._reconnect_callbacks: list[Callable[[], None]] = []
        self._pubsub_lock = threading.Lock()
        self._run_id: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="vc_plugin-bus", daemon=True)
        self._thread.start()

    def publish(self, channel: str, message: str) -> None:
        self._redis.publish(self._prefix + channel, message)

    def subscribe(self, channel: str, callback: Callback) -> None:
        if self._subscribers.add(channel, callback):
            with self._pubsub_lock:
                self._safely(self._pubsub.subscribe, self._prefix + channel)

    def unsubscribe(self, channel: str, callback: Callback) -> None:
        if self._subscribers.remove(channel, callback):
            with self._pubsub_lock:
                self._safely(self._pubsub.unsubscribe, self._prefix + channel)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        self._reconnect_callbacks.append(callback)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)
        with contextlib.suppress(Exception):  # a broken connection may fail to close; nothing to do
            self._pubsub.close()

    def _safely(self, operation: Callable[[str], Any], channel: str) -> None:
        """While Redis is away, (un)subscribing is remembered and replayed on reconnect."""
        try:
            operation(channel)
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
