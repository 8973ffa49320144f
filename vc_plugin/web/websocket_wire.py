"""WebSocket on an asyncio transport, driven by callbacks: the signalling server's sockets.

The protocol itself (handshake parsing, framing, masking, close and ping rules, size limits) is
the ``websockets`` library's sans-I/O ``ServerProtocol``; this module moves bytes between it and
the transport. Two frames skip it, as they make up nearly all of the traffic: the server's own
text frames are written straight to the transport (:func:`text_frame`), and a client's
unfragmented, masked text frame within the size limit is read straight from the transport while
the protocol stands between two frames (:meth:`Wire._read_directly`); everything else (control
frames, parts of a message, anything malformed or too large, whatever follows a close) goes
through ``websockets``, which then decides as it always does.

Unlike ``websockets``' own asyncio connection, the wire keeps no task, message queue, reader
buffer or keepalive timer per socket: a frame becomes a call on the socket's :class:`Handler`
as soon as it is read. That halves what an idle socket costs
(docs/benchmarks.md, "Where a socket's memory goes").
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import Awaitable, Callable
from typing import Protocol as Interface

from websockets.frames import CloseCode, Frame, Opcode, apply_mask
from websockets.http11 import Request, Response
from websockets.protocol import Protocol, State
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

log = logging.getLogger(__name__)

#: A client that has not finished its handshake by then is cut off.
OPEN_TIMEOUT = 10.0
#: After a close frame, how long the other side gets to close the TCP connection.
CLOSE_TIMEOUT = 10.0
#: The first byte of a frame read directly: final fragment, no reserved bits, text.
_TEXT_FIN = 0x81
#: Where ``websockets``' parser waits when it stands between two frames with nothing left to read,
#: and the generator that reads frames (the one that discards input after a failure waits there too).
_BETWEEN_FRAMES = StreamReader.at_eof.__code__
_READING_FRAMES = Protocol.parse.__code__


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


#: The response to a handshake, and (for a 101) how to build the socket's handler.
Decision = tuple[Response, Callable[["Wire"], Handler] | None]
#: Decides a handshake: at once (a socket ticket, on the loop), or later (the app's checks, in a thread).
Decide = Callable[["Wire", Request], Decision | Awaitable[Decision]]


class Wire(asyncio.Protocol):
    """One TCP connection speaking WebSocket."""

    __slots__ = (
        "_direct",
        "_early",
        "_failed",
        "_fragments",
        "_limit",
        "_partial",
        "_timer",
        "decide",
        "handler",
        "protocol",
        "spawn",
        "transport",
    )

    def __init__(self, decide: Decide, spawn: Callable[[Awaitable[None]], None], *, max_size: int) -> None:
        self.decide = decide
        self.spawn = spawn
        # No extensions: permessage-deflate is never negotiated (signalling is small JSON, and
        # deflate's state costs about 100 KB per socket).
        self.protocol = ServerProtocol(max_size=max_size)
        self._limit = max_size
        self.transport: asyncio.Transport | None = None
        self.handler: Handler | None = None
        self._early: list[Frame] = []  # frames that came with the handshake, before the handler existed
        self._fragments: tuple[Opcode, list[bytes]] | None = None  # a message that came in parts, so far
        self._timer: asyncio.TimerHandle | None = None
        self._direct = False  # text frames are read straight from the transport (see _read_directly)
        self._partial = bytearray()  # the start of a frame read directly, until the rest arrives
        self._failed = False  # the wire failed the connection itself (bad UTF-8)

    # --- asyncio.Protocol -----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._timer = asyncio.get_running_loop().call_later(OPEN_TIMEOUT, self.abort)

    def data_received(self, data: bytes) -> None:
        if self._direct:
            self._read_directly(data)
        else:
            self._through_protocol(data)

    def eof_received(self) -> None:
        self._hand_over()  # an unfinished frame is the protocol's to judge ("unexpected end of stream")
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

    @property
    def reads_directly(self) -> bool:
        """Whether text frames are read here now, not by ``websockets``' parser (see ``_read_directly``)."""
        return self._direct

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
    def _through_protocol(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        self._handle(self.protocol.events_received())
        if self.handler is not None:
            self._direct = self._between_frames()

    def _read_directly(self, data: bytes) -> None:
        """The frames of ``data``, read here while they are whole, masked, unfragmented text frames
        within the size limit; from the first other one on, the rest goes through the protocol,
        which stands between two frames then, as if it had read everything before itself."""
        partial = self._partial
        if partial:
            partial += data  # in place: a frame in many small pieces is not copied again for each
            buffer: bytes | bytearray = partial
        else:
            buffer = data
        handler, limit, end, at = self.handler, self._limit, len(buffer), 0
        while at < end:
            second = buffer[at + 1] if end - at > 1 else 0
            length, start = second & 0x7F, at + 2
            if length >= 126:  # the length follows in 2 or 8 bytes
                start += 2 if length == 126 else 8
                length = int.from_bytes(buffer[at + 2 : start])
            if start > end:  # not even the header is here yet
                self._keep(buffer, at)
                return
            if self._given_up():
                self._partial = bytearray()
                return
            if (
                buffer[at] != _TEXT_FIN
                or not second & 0x80  # unmasked: the protocol refuses it
                or length > limit
                or self.protocol.state is not State.OPEN
            ):
                break
            stop = start + 4 + length
            if stop > end:
                self._keep(buffer, at)
                return
            try:
                text = apply_mask(buffer[start + 4 : stop], buffer[start : start + 4]).decode()
            except UnicodeDecodeError:
                self._direct, self._partial = False, bytearray()
                self._fail_invalid_text()
                return
            at = stop
            handler.received(text)  # type: ignore[union-attr]
        else:
            if buffer is partial:
                partial.clear()
            return
        self._direct, self._partial = False, bytearray()
        self._through_protocol(bytes(buffer[at:]))

    def _keep(self, buffer: bytes | bytearray, at: int) -> None:
        """The start of a frame whose rest has not arrived: kept until it has."""
        if buffer is not self._partial or at:
            self._partial = bytearray(buffer[at:])

    def _hand_over(self) -> None:
        """What was read directly but not yet whole goes to the protocol, which reads on from there."""
        if self._partial:
            partial, self._partial, self._direct = self._partial, bytearray(), False
            self._through_protocol(bytes(partial))

    def _between_frames(self) -> bool:
        """Whether the protocol is open, has nothing unread and waits for the first byte of a frame
        that is not part of a message in parts: only then may frames be read without it. If a
        ``websockets`` release parses differently, this says no, and everything goes through it."""
        protocol = self.protocol
        if protocol.state is not State.OPEN or protocol.eof_sent or self._fragments is not None:
            return False
        reader = getattr(protocol, "reader", None)
        if reader is None or getattr(reader, "buffer", b"x"):
            return False
        codes = []  # the parser's generators, outermost first: ServerProtocol.parse, Protocol.parse, at_eof
        waiting = getattr(protocol, "parser", None)
        while waiting is not None:
            codes.append(getattr(waiting, "gi_code", None))
            waiting = getattr(waiting, "gi_yieldfrom", None)
        # Reading frames (not discarding what follows a failure), and waiting for the next one.
        return _READING_FRAMES in codes and codes[-1] is _BETWEEN_FRAMES

    def _handle(self, events: list[Request | Frame]) -> None:
        self._flush()  # the protocol's own answers: pongs, the closing frame, a failure's close
        for event in events:
            if isinstance(event, Request):
                self._handshake(event)
            elif self.handler is None:
                self._early.append(event)
            else:
                self._frame(event, self.handler)

    def _handshake(self, request: Request) -> None:
        """Answered at once when it is decided at once; else nothing more is read until it is."""
        try:
            decision = self.decide(self, request)
        except Exception:
            log.exception("signalling: a handshake could not be decided")
            decision = self._failed_to_decide()
        if isinstance(decision, tuple):
            self._answer(*decision)
            return
        self.pause_reading()
        self.spawn(self._decided_later(decision))

    async def _decided_later(self, deciding: Awaitable[Decision]) -> None:
        try:
            decision = await deciding
        except Exception:
            log.exception("signalling: a handshake could not be decided")
            decision = self._failed_to_decide()
        self._answer(*decision)

    def _failed_to_decide(self) -> Decision:
        return self.protocol.reject(500, "Failed to open a WebSocket connection.\n"), None

    def _answer(self, response: Response, make_handler: Callable[[Wire], Handler] | None) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.protocol.eof_sent:  # what came with the request failed the connection: nothing to answer
            self.abort()
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
        self._direct = self._between_frames()
        self.resume_reading()

    def _given_up(self) -> bool:
        """The wire failed the connection (bad UTF-8) or cut it off (the transport is closing): nothing
        read after that reaches the handler, even frames the protocol had parsed in the same read."""
        return self._failed or self.transport is None or self.transport.is_closing()

    def _frame(self, frame: Frame, handler: Handler) -> None:
        if self._given_up():
            return
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
            self._fail_invalid_text()
            return
        handler.received(text)

    def _fail_invalid_text(self) -> None:
        """A text message that is not UTF-8 fails the connection (1007); nothing after it is read."""
        self._failed = True
        self.protocol.fail(CloseCode.INVALID_DATA, "invalid UTF-8")
        self._flush()

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
