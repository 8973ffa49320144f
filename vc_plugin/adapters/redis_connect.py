"""How the signalling server's own Redis connections are opened, and how Redis's errors read.

Both (:mod:`.redis_link`, :mod:`.redis_channels`) take the same ``VC_REDIS_URL`` as the app's
redis-py client and honour what it says the same way: TCP, TLS (``rediss://`` with its
``ssl_*`` options) or a Unix socket, a user and password, and the same timeouts.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import Any, TypeVar

import hiredis
from redis.connection import SSLConnection
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
)

from .steps import Command

#: As the app's redis-py client (``socket_connect_timeout``).
CONNECT_TIMEOUT = 3.0
#: As the app's redis-py client (``socket_timeout``).
REPLY_TIMEOUT = 5.0

P = TypeVar("P", bound=asyncio.Protocol)

#: Redis's error codes as redis-py names them: a loading Redis is a connection error (retried).
_ERRORS: dict[str, type[Exception]] = {
    "NOSCRIPT": NoScriptError,
    "LOADING": BusyLoadingError,
    "READONLY": ReadOnlyError,
    "NOAUTH": AuthenticationError,
    "WRONGPASS": AuthenticationError,
    "NOPERM": NoPermissionError,
    "OOM": OutOfMemoryError,
}


def reply_error(error: hiredis.ReplyError) -> Exception:
    message = str(error)
    return _ERRORS.get(message.split(" ", 1)[0], ResponseError)(message)


def error_code(error: Exception) -> str:
    """What may be logged of an error reply: its code, not its text (which can name keys and channels)."""
    return str(error).split(" ", 1)[0][:20] or type(error).__name__


async def open_connection(options: dict[str, Any], loop: asyncio.AbstractEventLoop, protocol: Callable[[], P]) -> P:
    """A connection to the Redis that ``options`` (``redis.connection.parse_url``) name, with TCP
    keep-alive: a connection a firewall dropped while it was quiet is noticed."""
    if "path" in options:
        _, wire = await loop.create_unix_connection(protocol, options["path"])
        return wire
    host, port = options.get("host", "localhost"), options.get("port", 6379)
    secure = _tls(options) if options.get("connection_class") is SSLConnection else None
    transport, wire = await loop.create_connection(protocol, host, port, ssl=secure)
    raw = transport.get_extra_info("socket")
    if raw is not None:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return wire


def _tls(options: dict[str, Any]) -> ssl.SSLContext:
    """As redis-py's ``SSLConnection`` reads the URL: certificate checks on unless ``ssl_cert_reqs`` says otherwise."""
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"), capath=options.get("ssl_ca_path"))
    required = str(options.get("ssl_cert_reqs", "required")).lower()
    if required in ("none", "optional"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE if required == "none" else ssl.CERT_OPTIONAL
    elif str(options.get("ssl_check_hostname", True)).lower() in ("false", "0", "no"):
        context.check_hostname = False
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"), options.get("ssl_password"))
    return context


class RespWire(asyncio.Protocol):
    """One of our own connections to Redis: bytes in, replies out (parsed by hiredis). A subclass says
    what a reply means (``replied``), what to do with bytes that are not RESP (``garbled``) and
    when the connection ended (``ended``)."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        try:
            reader.feed(data)
            reply = reader.gets()
            while reply is not False:
                self.replied(reply)
                reply = reader.gets()
        except hiredis.ProtocolError:
            self.garbled()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.ended()

    def replied(self, reply: Any) -> None:
        raise NotImplementedError

    def garbled(self) -> None:
        raise NotImplementedError

    def ended(self) -> None:
        raise NotImplementedError


def greeting(options: dict[str, Any]) -> list[Command]:
    """What a new connection says first: AUTH, if the URL has a password."""
    if options.get("password") is None:
        return []
    user = options.get("username")
    return [("AUTH", user, options["password"]) if user else ("AUTH", options["password"])]
