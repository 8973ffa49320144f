"""The bus's channels on an asyncio loop: the signalling server's subscriptions without a listener thread.

:class:`~.bus.RedisBus` listens in a thread of its own through redis-py, and every message and
every subscription crosses between that thread and the loop; for a socket's two topics that was
a tenth of a connect's CPU (docs/benchmarks.md). Here one connection in subscribe mode lives on
the loop: what the sockets of one turn of the loop subscribe or leave goes to Redis in one command
each, and messages are handed to ``heard`` as they are parsed (hiredis). After the connection was
lost, it connects again, subscribes everything again and calls ``came_back``: messages published
meanwhile reached no one (the same contract as ``Bus.on_reconnect``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

import hiredis
from redis.connection import parse_url

from . import redis_connect
from .redis_connect import RespWire, error_code, greeting, open_connection

log = logging.getLogger(__name__)
#: Waits before connecting again after a failure: doubling from the first to the last.
FIRST_RETRY, LAST_RETRY = 0.25, 4.0
#: A quiet connection is asked for a PONG this often (as the app's redis-py client checks its
#: connections); one that has not answered by the next time is dropped and opened again.
HEALTH_CHECK_SECONDS = 15.0


class _Wire(RespWire):
    def __init__(self, channels: RedisChannels) -> None:
        super().__init__()
        self.channels = channels

    def replied(self, reply: Any) -> None:
        self.channels.replied(reply)

    def garbled(self) -> None:
        log.warning("bus: Redis sent something that is not RESP; connecting again")
        if self.transport is not None:
            self.transport.abort()

    def ended(self) -> None:
        self.channels.lost(self)


class RedisChannels:
    """``subscribe``/``unsubscribe`` by topic; ``heard(topic, message)`` for each message, on the loop."""

    def __init__(
        self,
        url: str,
        loop: asyncio.AbstractEventLoop,
        *,
        prefix: str,
        heard: Callable[[str, str], None],
        came_back: Callable[[], None],
    ) -> None:
        self._options = parse_url(url)
        self._loop = loop
        self._prefix = prefix
        self._heard = heard
        self._came_back = came_back
        self._wanted: set[str] = set()  # topics someone here listens to
        self._asked: set[str] = set()  # topics this connection asked Redis for
        self._changed: list[str] = []  # topics whose wish changed in this turn of the loop
        self._wire: _Wire | None = None
        self._connector: asyncio.Task[None] | None = None
        self._retry = FIRST_RETRY  # the wait before the next attempt: longer after each that failed
        self._confirming = False  # connected, and waiting for Redis to confirm the subscriptions
        self._missed = False  # a connection failed or was lost: messages may have been missed
        self._unanswered = False  # a health check's PING has had no PONG yet
        self._health: asyncio.TimerHandle | None = None
        self._closed = False

    # --- the hub's calls ------------------------------------------------------------------------------
    def start(self) -> None:
        self._connect_soon(0.0)

    def subscribe(self, topics: Iterable[str]) -> None:
        self._change(topics, self._wanted.add)

    def unsubscribe(self, topics: Iterable[str]) -> None:
        self._change(topics, self._wanted.discard)

    @property
    def connected(self) -> bool:
        return self._wire is not None

    def close(self) -> None:
        self._closed = True
        if self._connector is not None:
            self._connector.cancel()
        if self._health is not None:
            self._health.cancel()
        wire, self._wire = self._wire, None
        if wire is not None and wire.transport is not None:
            wire.transport.close()

    # --- subscriptions ----------------------------------------------------------------------------------
    def _change(self, topics: Iterable[str], change: Callable[[str], None]) -> None:
        if not self._changed:
            self._loop.call_soon(self._send_changes)
        for topic in topics:
            change(topic)
            self._changed.append(topic)

    def _send_changes(self) -> None:
        """What changed in this turn, as one SUBSCRIBE and one UNSUBSCRIBE: a topic left and taken
        again in the same turn costs nothing."""
        changed, self._changed = self._changed, []
        if self._wire is None:
            return  # sent with everything else once connected
        new = {t for t in changed if t in self._wanted and t not in self._asked}
        gone = {t for t in changed if t not in self._wanted and t in self._asked}
        self._write(("SUBSCRIBE", new), ("UNSUBSCRIBE", gone))

    def _write(self, *commands: tuple[str, set[str]]) -> None:
        assert self._wire is not None and self._wire.transport is not None
        data = []
        for command, topics in commands:
            if topics:
                data.append(hiredis.pack_command((command, *(self._prefix + t for t in topics))))
                (self._asked.update if command == "SUBSCRIBE" else self._asked.difference_update)(topics)
        if data:
            self._wire.transport.write(b"".join(data))

    # --- what the wire reports ------------------------------------------------------------------------------
    def replied(self, reply: Any) -> None:
        if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
            channel, data = reply[1], reply[2]
            try:
                topic, message = channel.decode()[len(self._prefix) :], data.decode()
            except UnicodeDecodeError:
                log.warning("bus: a message that is not UTF-8 was dropped")
                return
            try:
                self._heard(topic, message)
            except Exception:
                log.exception("bus subscriber failed")
        elif isinstance(reply, hiredis.ReplyError):
            log.warning("bus: Redis refused a command (%s); connecting again", error_code(reply))
            if self._wire is not None and self._wire.transport is not None:
                self._wire.transport.abort()
        elif reply == b"PONG" or (isinstance(reply, list) and reply and reply[0] == b"pong"):
            self._unanswered = False  # (the second form while subscribed)
        elif self._confirming and isinstance(reply, list) and reply and reply[0] == b"subscribe":
            self._confirmed()
        # else: confirmations of (un)subscribing, and AUTH's OK

    def _confirmed(self) -> None:
        """Subscribed (again): if a connection failed or was lost before, whoever relies on messages
        hears that some may have been missed."""
        self._confirming, self._retry = False, FIRST_RETRY
        if self._missed:
            self._missed = False
            log.info("bus: reconnected to Redis, %d channels", len(self._wanted))
            self._came_back()

    def _check_health(self) -> None:
        """A PING on the quiet connection; no PONG since the last one: it is dropped and opened again."""
        self._health = None
        wire = self._wire
        if wire is None or wire.transport is None or self._closed:
            return
        if self._unanswered:
            log.warning("bus: Redis did not answer a health check; connecting again")
            wire.transport.abort()
            return
        self._unanswered = True
        wire.transport.write(hiredis.pack_command(("PING",)))
        self._health = self._loop.call_later(HEALTH_CHECK_SECONDS, self._check_health)

    def lost(self, wire: _Wire) -> None:
        if wire is not self._wire:
            return
        self._wire = None
        self._asked = set()
        self._missed = True
        if self._health is not None:
            self._health.cancel()
            self._health = None
        if self._confirming:  # refused before it was set up (AUTH): wait longer next time
            self._retry = min(LAST_RETRY, self._retry * 2)
        self._confirming = False
        if not self._closed:
            log.warning("bus: lost Redis; connecting again")
            self._connect_soon(self._retry)

    # --- the connection ---------------------------------------------------------------------------------
    def _connect_soon(self, wait: float) -> None:
        if self._connector is None or self._connector.done():
            self._connector = self._loop.create_task(self._connect(wait))

    async def _connect(self, wait: float) -> None:
        while not self._closed:
            await asyncio.sleep(wait)
            opening = open_connection(self._options, self._loop, lambda: _Wire(self))
            try:
                wire = await asyncio.wait_for(opening, redis_connect.CONNECT_TIMEOUT)
            except (TimeoutError, OSError) as error:
                log.warning("bus: could not connect to Redis (%s); trying again", type(error).__name__)
                self._missed = True
                wait = self._retry = min(LAST_RETRY, self._retry * 2)
                continue
            if wire.closed or wire.transport is None:  # lost while it was being opened
                self._missed = True
                wait = self._retry
                continue
            self._wire = wire
            hello = greeting(self._options)
            if hello:
                wire.transport.write(b"".join(hiredis.pack_command(command) for command in hello))
            self._confirming, self._unanswered = True, False
            self._write(("SUBSCRIBE", set(self._wanted)))
            self._health = self._loop.call_later(HEALTH_CHECK_SECONDS, self._check_health)
            if not self._wanted:
                self._confirmed()
            return
