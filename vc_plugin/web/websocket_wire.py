"""WebSocket on an asyncio transport, driven by callbacks: the signalling server's sockets.

The protocol itself (handshake parsing, framing, masking, close and ping rules, size limits) is
the ``websockets`` library's sans-I/O ``ServerProtocol``; this module only moves bytes between it
and the transport. Unlike ``websockets``' own asyncio connection it keeps no task, message queue,
reader buffer or keepalive timer per socket: a frame becomes a call on the socket's
:class:`Handler` as soon as it is read. That halves what an idle socket costs
(docs/benchmarks.md, "Where a socket's memory goes").
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import Awaitable, Callable
from typing import Protocol as Interface

from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

log = logging.getLogger(__name__)

#: A client that has not finished its handshake by then is cut off.
OPEN_TIMEOUT = 10.0
#: After a close frame, how long the other side gets to close the TCP connection.
CLOSE_TIMEOUT = 10.0


def text_frame(text: str) -> bytes:
    """One unfragmented text frame from the server: unmasked, no extension (none is negotiated),
    byte for byte what ``websockets`` writes, without its frame object, buffer and write queue,
    which cost a relayed message an eighth of its CPU (docs/benchmarks.md)."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        return bytes((0x81, length)) + payload
    if length < 65536:
        return struct.pack("!BBH", 0x81, 126, length) + payload
    return struct.pack("!BBQ", 0x81, 127, length) + payload


class Handler(Interface):
    """What a socket's frames are handed to, once its handshake is accepted."""

    def received(self, message: str | bytes) -> None: ...

    def ponged(self) -> None: ...

    def lost(self) -> None: ...


#: Decides a handshake: the response to send, and (for a 101) how to build the socket's handler.
Decide = Callable[["Wire", Request], Awaitable[tuple[Response, Callable[["Wire"], Handler] | None]]]


class Wire(asyncio.Protocol):
    """One TCP connection speaking WebSocket."""

    __slots__ = ("_early", "_fragments", "_timer", "decide", "handler", "protocol", "spawn", "transport")

    def __init__(self, decide: Decide, spawn: Callable[[Awaitable[None]], None], *, max_size: int) -> None:
        self.decide = decide
        self.spawn = spawn
        # No extensions: permessage-deflate is never negotiated (signalling is small JSON, and
        # deflate's state costs about 100 KB per socket).
        self.protocol = ServerProtocol(max_size=max_size)
        self.transport: asyncio.Transport | None = None
        self.handler: Handler | None = None
        self._early: list[Frame] = []  # frames that came with the handshake, before the handler existed
        self._fragments: tuple[Opcode, list[bytes]] | None = None  # a message that came in parts, so far
        self._timer: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol -----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._timer = asyncio.get_running_loop().call_later(OPEN_TIMEOUT, self.abort)

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        self._handle(self.protocol.events_received())

    def eof_received(self) -> None:
        self.protocol.receive_eof()
        self._flush()  # returning None lets the transport close: WebSocket never writes after EOF

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.receive_eof()  # idempotent: the protocol is CLOSED after this
        self._cancel_timer()
        handler, self.handler = self.handler, None
        if handler is not None:
            handler.lost()

    # --- what a handler calls -------------------------------------------------------------------------
    @property
    def open(self) -> bool:
        return self.protocol.state is State.OPEN

    def peer(self) -> str:
        """The client's address, for the handshake's join limit only: never stored or logged."""
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return str(peer[0]) if peer else "unknown"

    def unsent_bytes(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport else 0

    def send_text(self, text: str) -> None:
        # Straight to the transport: the protocol's own frames (pongs, close) are flushed as soon
        # as it makes them, so nothing of its waits to go before this.
        if self.protocol.state is State.OPEN and self.transport is not None:
            self.transport.write(text_frame(text))

    def ping(self) -> None:
        if self.protocol.state is State.OPEN:
            self.protocol.send_ping(os.urandom(4))
            self._flush()

    def close(self, code: int, reason: str) -> None:
        """The closing handshake: our close frame now, the TCP close when the client answers (or a timeout)."""
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(code, reason)
            self._flush()

    def abort(self) -> None:
        """Cut off at once: what is unsent is dropped, and no closing handshake is waited for."""
        if self.transport is not None:
            self.transport.abort()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    # --- inside -----------------------------------------------------------------------------------------
    def _handle(self, events: list[Request | Frame]) -> None:
        self._flush()  # the protocol's own answers: pongs, the closing frame, a failure's close
        for event in events:
            if isinstance(event, Request):
                self.pause_reading()  # nothing more is read until the handshake is decided
                self.spawn(self._handshake(event))
            elif self.handler is None:
                self._early.append(event)
            else:
                self._frame(event, self.handler)

    async def _handshake(self, request: Request) -> None:
        try:
            response, make_handler = await self.decide(self, request)
        except Exception:
            log.exception("signalling: a handshake could not be decided")
            response, make_handler = self.protocol.reject(500, "Failed to open a WebSocket connection.\n"), None
        if self.transport is None or self.transport.is_closing():
            return
        self.protocol.send_response(response)
        self._flush()
        if self.protocol.state is not State.OPEN or make_handler is None:
            return
        self._cancel_timer()
        self.handler = handler = make_handler(self)
        early, self._early = self._early, []
        for frame in early:
            self._frame(frame, handler)
        self.resume_reading()

    def _frame(self, frame: Frame, handler: Handler) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                self._message(opcode, frame.data, handler)
            else:
                self._fragments = (opcode, [frame.data])
        elif opcode is Opcode.CONT and self._fragments is not None:
            kind, parts = self._fragments
            parts.append(frame.data)
            if frame.fin:
                self._fragments = None
                self._message(kind, b"".join(parts), handler)
        elif opcode is Opcode.PONG:
            handler.ponged()

    def _message(self, opcode: Opcode, data: bytes, handler: Handler) -> None:
        if opcode is Opcode.BINARY:
            handler.received(data)
            return
        try:
            text = data.decode()
        except UnicodeDecodeError:
            self.protocol.fail(CloseCode.INVALID_DATA, "invalid UTF-8")
            self._flush()
            return
        handler.received(text)

    def _flush(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for data in self.protocol.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()
        if self.protocol.close_expected() and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self.abort)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
