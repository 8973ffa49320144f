"""One pipelined Redis connection on an asyncio loop: the signalling server's ``hello`` without a thread.

redis-py's asyncio client spends about twice the CPU of its blocking one per command, and the
blocking one needs a thread, whose hop onto and off the loop cost a connect a fifth of its CPU
(docs/benchmarks.md). This link only moves bytes: hiredis packs the commands and parses the
replies (both in C); commands of many sockets share one connection, in order, each caller
awaiting its own replies. A caller whose replies are lost with the connection gets
:class:`redis.exceptions.ConnectionError` (or ``TimeoutError`` when Redis stopped answering); the
next command connects again, but not within ``RETRY_AFTER`` of a failed attempt.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import redis_connect
from .redis_connect import RespWire, greeting, open_connection, reply_error
from .steps import Command

#: After a failed attempt to connect, commands fail at once for this long (each would wait for
#: the connect timeout otherwise); the caller does its work the blocking way meanwhile.
RETRY_AFTER = 1.0


class _Waiting:
    """One caller's replies, as they come."""

    __slots__ = ("count", "deadline", "future", "replies")

    def __init__(self, count: int, future: asyncio.Future[list[Any]], deadline: float) -> None:
        self.count = count
        self.future = future
        self.replies: list[Any] = []
        self.deadline = deadline


class _Wire(RespWire):
    def __init__(self, link: RedisLink) -> None:
        super().__init__()
        self.link = link

    def replied(self, reply: Any) -> None:
        self.link.replied(self, reply)

    def garbled(self) -> None:
        self.link.lost(self, RedisConnectionError("Redis sent something that is not RESP"))

    def ended(self) -> None:
        self.link.lost(self, RedisConnectionError("the connection to Redis was lost"))


class RedisLink:
    """``await link.execute([("GET", "k"), ...])``: the replies in order; an error reply is an
    exception in its place (as redis-py's ``execute(raise_on_error=False)``), not raised."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop) -> None:
        self._options = parse_url(url)
        self._loop = loop
        self._wire: _Wire | None = None  # ready: AUTH and SELECT done
        self._setting_up: _Wire | None = None  # connected, AUTH and SELECT on their way
        self._connecting: asyncio.Future[_Wire] | None = None
        self._failed_at = float("-inf")
        self._waiting: deque[_Waiting] = deque()
        self._unsent: list[bytes] = []  # commands of this turn of the loop, written together at its end
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        if not commands:
            return []
        packed = [hiredis.pack_command(command) for command in commands]  # before anything is queued
        wire = self._wire
        if wire is None or wire.closed:
            wire = await self._connect()
        return await self._send(wire, packed)

    def close(self) -> None:
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for wire in (self._wire, self._setting_up):
            if wire is not None and wire.transport is not None:
                wire.transport.close()

    def _send(self, wire: _Wire, packed: list[bytes]) -> asyncio.Future[list[Any]]:
        """Queued behind every command sent before; written at the end of this turn of the loop."""
        future: asyncio.Future[list[Any]] = self._loop.create_future()
        self._waiting.append(_Waiting(len(packed), future, self._loop.time() + redis_connect.REPLY_TIMEOUT))
        if not self._unsent:
            self._loop.call_soon(self._write, wire)
        self._unsent.extend(packed)
        if self._watchdog is None:
            self._watchdog = self._loop.call_later(redis_connect.REPLY_TIMEOUT, self._watch)
        return future

    # --- the connection ---------------------------------------------------------------------------------
    async def _connect(self) -> _Wire:
        """One connection for everyone: callers arriving meanwhile wait for the same one."""
        if self._closed:
            raise RedisConnectionError("the link is closed")
        if self._loop.time() - self._failed_at < RETRY_AFTER:
            raise RedisConnectionError("Redis could not be reached a moment ago")
        if self._connecting is None:
            self._connecting = self._loop.create_task(self._set_up())
            self._connecting.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    def _connected(self, attempt: asyncio.Future[_Wire]) -> None:
        self._connecting = None
        if attempt.cancelled() or attempt.exception() is not None:
            self._failed_at = self._loop.time()

    async def _set_up(self) -> _Wire:
        """Connected, authenticated and on the URL's database, or ``ConnectionError``."""
        try:
            opening = open_connection(self._options, self._loop, lambda: _Wire(self))
            wire = self._setting_up = await asyncio.wait_for(opening, redis_connect.CONNECT_TIMEOUT)
            hello = greeting(self._options)
            if self._options.get("db"):
                hello.append(("SELECT", self._options["db"]))
            if hello:
                sent = self._send(wire, [hiredis.pack_command(command) for command in hello])
                for reply in await asyncio.wait_for(sent, redis_connect.CONNECT_TIMEOUT):
                    if isinstance(reply, Exception):
                        raise reply
            if wire.closed:
                raise RedisConnectionError("the connection to Redis was lost")
        except Exception as error:
            self._abandon(RedisConnectionError(f"could not connect to Redis ({type(error).__name__})"))
            raise RedisConnectionError(f"could not connect to Redis ({type(error).__name__})") from error
        self._wire, self._setting_up = wire, None
        return wire

    def _abandon(self, error: Exception) -> None:
        wire, self._setting_up = self._setting_up, None
        if wire is not None:
            self.lost(wire, error)

    # --- what the wire reports ------------------------------------------------------------------------------
    def replied(self, wire: _Wire, reply: Any) -> None:
        if not self._current(wire) or not self._waiting:
            return
        waiting = self._waiting[0]
        waiting.replies.append(reply_error(reply) if isinstance(reply, hiredis.ReplyError) else reply)
        if len(waiting.replies) == waiting.count:
            self._waiting.popleft()
            if not waiting.future.done():
                waiting.future.set_result(waiting.replies)

    def lost(self, wire: _Wire, error: Exception) -> None:
        """Every caller still waiting hears of it; the next command connects again."""
        if not self._current(wire):
            return
        self._wire = self._setting_up = None
        if wire.transport is not None:
            wire.transport.abort()
        waiting, self._waiting, self._unsent = self._waiting, deque(), []
        for each in waiting:
            if not each.future.done():
                each.future.set_exception(error)

    def _current(self, wire: _Wire) -> bool:
        return wire is self._wire or wire is self._setting_up

    def _write(self, wire: _Wire) -> None:
        unsent, self._unsent = self._unsent, []
        if unsent and self._current(wire) and wire.transport is not None:
            wire.transport.write(b"".join(unsent))

    def _watch(self) -> None:
        """One timer for all callers: the oldest one waiting is the first to run out of time."""
        self._watchdog = None
        if not self._waiting:
            return
        oldest = self._waiting[0].deadline
        wire = self._wire or self._setting_up
        if oldest <= self._loop.time() and wire is not None:
            self.lost(wire, RedisTimeoutError(f"Redis did not answer within {redis_connect.REPLY_TIMEOUT:.0f} s"))
            return
        self._watchdog = self._loop.call_at(oldest, self._watch)
