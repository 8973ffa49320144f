"""One pipelined Redis connection on an asyncio loop: the signalling server's ``hello`` without a thread.

redis-py's asyncio client spends about twice the CPU of its blocking one per command, and the
blocking one needs a thread, whose hop onto and off the loop cost a connect a fifth of its CPU
(docs/benchmarks.md). This link only moves bytes: hiredis packs the commands and parses the
replies (both in C); commands of many sockets share one connection, in order, each caller
awaiting its own replies. It reconnects on the next use after the connection was lost; a caller
whose replies are lost with it gets :class:`redis.exceptions.ConnectionError`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import hiredis
from redis.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Command = tuple[Any, ...]
#: A reply that does not come within this long fails its caller and drops the connection (the
#: replies behind it could no longer be told apart); as the app's redis-py client (``socket_timeout``).
REPLY_TIMEOUT = 5.0
#: As the app's redis-py client (``socket_connect_timeout``).
CONNECT_TIMEOUT = 3.0


def reply_error(error: hiredis.ReplyError) -> ResponseError:
    """As redis-py reports it: a missing script is a :class:`NoScriptError`."""
    message = str(error)
    return NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)


P = TypeVar("P", bound=asyncio.Protocol)


async def open_connection(options: dict[str, Any], loop: asyncio.AbstractEventLoop, protocol: Callable[[], P]) -> P:
    """A connection to the Redis that ``options`` (``redis.connection.parse_url``) name: TCP, TLS or a Unix socket."""
    if "path" in options:
        _, wire = await loop.create_unix_connection(protocol, options["path"])
        return wire
    secure = ssl.create_default_context() if options.get("connection_class") is SSLConnection else None
    host, port = options.get("host", "localhost"), options.get("port", 6379)
    _, wire = await loop.create_connection(protocol, host, port, ssl=secure)
    return wire


def greeting(options: dict[str, Any]) -> list[Command]:
    """What a new connection says first: AUTH, if the URL has a password."""
    if options.get("password") is None:
        return []
    user = options.get("username")
    return [("AUTH", user, options["password"]) if user else ("AUTH", options["password"])]


class _Waiting:
    """One caller's replies, as they come."""

    __slots__ = ("count", "deadline", "future", "replies")

    def __init__(self, count: int, future: asyncio.Future[list[Any]], deadline: float) -> None:
        self.count = count
        self.future = future
        self.replies: list[Any] = []
        self.deadline = deadline


class _Wire(asyncio.Protocol):
    def __init__(self, link: RedisLink) -> None:
        self.link = link
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader, link = self.reader, self.link
        try:
            reader.feed(data)
            reply = reader.gets()
            while reply is not False:
                link.replied(self, reply)
                reply = reader.gets()
        except hiredis.ProtocolError:
            link.lost(self, RedisConnectionError("Redis sent something that is not RESP"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.link.lost(self, RedisConnectionError("the connection to Redis was lost"))


class RedisLink:
    """``await link.execute([("GET", "k"), ...])``: the replies in order; an error reply is an
    exception in its place (as redis-py's ``execute(raise_on_error=False)``), not raised."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop) -> None:
        self._options = parse_url(url)
        self._loop = loop
        self._wire: _Wire | None = None
        self._connecting: asyncio.Future[_Wire] | None = None
        self._waiting: deque[_Waiting] = deque()
        self._unsent: list[bytes] = []  # commands of this turn of the loop, written together at its end
        self._watchdog: asyncio.TimerHandle | None = None

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        wire = self._wire or await self._connect()
        transport = wire.transport
        if transport is None or transport.is_closing():
            raise RedisConnectionError("the connection to Redis is closing")
        future: asyncio.Future[list[Any]] = self._loop.create_future()
        self._waiting.append(_Waiting(len(commands), future, self._loop.time() + REPLY_TIMEOUT))
        if not self._unsent:
            self._loop.call_soon(self._write, wire)
        self._unsent.extend([hiredis.pack_command(command) for command in commands])
        if self._watchdog is None:
            self._watchdog = self._loop.call_later(REPLY_TIMEOUT, self._watch)
        return await future

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._wire is not None and self._wire.transport is not None:
            self._wire.transport.close()

    # --- the connection ---------------------------------------------------------------------------------
    async def _connect(self) -> _Wire:
        """One connection for everyone: callers arriving meanwhile wait for the same one."""
        if self._connecting is None:
            self._connecting = self._loop.create_future()
            try:
                wire = await asyncio.wait_for(self._open(), CONNECT_TIMEOUT)
            except Exception as error:
                if self._wire is not None:  # connected, but AUTH or SELECT failed or took too long
                    self.lost(self._wire, RedisConnectionError("the connection to Redis was not set up"))
                self._connecting.set_exception(RedisConnectionError(f"could not connect to Redis ({error})"))
                self._connecting.exception()  # retrieved: nobody else may be waiting for it
                self._connecting = None
                raise RedisConnectionError(f"could not connect to Redis ({error})") from error
            self._connecting.set_result(wire)
            self._connecting = None
            return wire
        return await asyncio.shield(self._connecting)

    async def _open(self) -> _Wire:
        wire = self._wire = await open_connection(self._options, self._loop, lambda: _Wire(self))
        hello = greeting(self._options)
        if self._options.get("db"):
            hello.append(("SELECT", self._options["db"]))
        if hello:
            for reply in await self.execute(hello):
                if isinstance(reply, Exception):
                    self.close()
                    raise reply
        return wire

    # --- what the wire reports ------------------------------------------------------------------------------
    def replied(self, wire: _Wire, reply: Any) -> None:
        if wire is not self._wire or not self._waiting:
            return
        waiting = self._waiting[0]
        waiting.replies.append(reply_error(reply) if isinstance(reply, hiredis.ReplyError) else reply)
        if len(waiting.replies) == waiting.count:
            self._waiting.popleft()
            if not waiting.future.done():
                waiting.future.set_result(waiting.replies)

    def lost(self, wire: _Wire, error: Exception) -> None:
        """Every caller still waiting hears of it; the next command connects again."""
        if wire is not self._wire:
            return
        self._wire = None
        if wire.transport is not None:
            wire.transport.abort()
        waiting, self._waiting, self._unsent = self._waiting, deque(), []
        for each in waiting:
            if not each.future.done():
                each.future.set_exception(error)

    def _write(self, wire: _Wire) -> None:
        unsent, self._unsent = self._unsent, []
        if unsent and wire is self._wire and wire.transport is not None:
            wire.transport.write(b"".join(unsent))

    def _watch(self) -> None:
        """One timer for all callers: the oldest one waiting is the first to run out of time."""
        self._watchdog = None
        if not self._waiting:
            return
        oldest = self._waiting[0].deadline
        if oldest <= self._loop.time() and self._wire is not None:
            self.lost(self._wire, RedisTimeoutError(f"Redis did not answer within {REPLY_TIMEOUT:.0f} s"))
            return
        self._watchdog = self._loop.call_at(oldest, self._watch)
