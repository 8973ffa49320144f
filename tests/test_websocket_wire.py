"""The signalling server's WebSocket wire (``vc_plugin.web.websocket_wire``), on a real socket.

The whole server is tested through its endpoints on both transports (test_signaling and the
others); this checks what the wire itself does that ``websockets``' own connection did before:
messages in parts, bad UTF-8, oversized messages, refused and unfinished handshakes, and frames
that arrive together with the handshake.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.sync.client import connect

from tests.support.processes import wait_for
from vc_plugin.web import websocket_wire
from vc_plugin.web.websocket_wire import Handler, Wire

MAX_SIZE = 4096


@dataclass
class Recorder:
    """A handler that keeps what it was given, and echoes text back."""

    wire: Wire
    messages: list[str | bytes] = field(default_factory=list)
    lost_calls: int = 0

    def received(self, message: str | bytes) -> None:
        self.messages.append(message)
        if isinstance(message, str):
            self.wire.send_text("echo:" + message)

    def ponged(self) -> None:
        pass

    def lost(self) -> None:
        self.lost_calls += 1


@dataclass
class WireServer:
    port: int
    handlers: list[Recorder]
    refuse: set[str]
    loop: asyncio.AbstractEventLoop

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


@pytest.fixture
def wire_server() -> Iterator[WireServer]:
    loop = asyncio.new_event_loop()
    handlers: list[Recorder] = []
    refuse: set[str] = set()
    tasks: set[asyncio.Future[None]] = set()

    def spawn(work: object) -> None:
        task = asyncio.ensure_future(work)  # type: ignore[call-overload]
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def decide(wire: Wire, request: Request) -> tuple[Response, Callable[[Wire], Handler] | None]:
        if request.path in refuse:
            return wire.protocol.reject(403, "refused\n"), None

        def make(accepted: Wire) -> Handler:
            handlers.append(Recorder(accepted))
            return handlers[-1]

        return wire.protocol.accept(request), make

    server = loop.run_until_complete(loop.create_server(lambda: Wire(decide, spawn, max_size=MAX_SIZE), "127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield WireServer(server.sockets[0].getsockname()[1], handlers, refuse, loop)
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


def test_a_message_in_parts_arrives_whole(wire_server: WireServer) -> None:
    with connect(wire_server.url) as ws:
        ws.send(["hel", "lo ", "room"])  # three frames: text, continuation, continuation
        assert ws.recv(timeout=10) == "echo:hello room"
    assert wire_server.handlers[0].messages == ["hello room"]


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_a_text_frame_is_written_byte_for_byte_as_websockets_writes_it(length: int) -> None:
    text = ("ä" * length)[: max(0, length - length // 3)] + "x" * (length // 3)  # some of it two bytes long
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    assert websocket_wire.text_frame(text) == expected


def test_answers_of_every_length_class_arrive_whole_and_in_order(wire_server: WireServer) -> None:
    """Short (7-bit length), medium (16-bit) and, between them, the protocol's own pong."""
    with connect(wire_server.url, max_size=None) as client:
        for text in ("kurz", "ü" * 200, "m" * 3000):
            client.send(text)
            assert client.recv(timeout=5) == "echo:" + text
        client.ping(b"p").wait(timeout=5)
        client.send("danach")
        assert client.recv(timeout=5) == "echo:danach"


def test_bad_utf8_closes_with_1007_and_reaches_no_session(wire_server: WireServer) -> None:
    with connect(wire_server.url) as ws:
        ws.send(b"\xff\xfe", text=True)
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    assert wire_server.handlers[0].messages == []


def test_an_oversized_message_closes_with_1009_and_reaches_no_session(wire_server: WireServer) -> None:
    with connect(wire_server.url, max_size=None) as ws:
        ws.send("x" * (MAX_SIZE + 1))
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert wire_server.handlers[0].messages == []


def test_a_refused_handshake_gets_its_status_and_builds_no_handler(wire_server: WireServer) -> None:
    wire_server.refuse.add("/nope")
    with pytest.raises(InvalidStatus) as refused:
        connect(wire_server.url + "/nope")
    assert refused.value.response.status_code == 403
    assert wire_server.handlers == []


def test_a_handshake_never_finished_is_cut_off(wire_server: WireServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(websocket_wire, "OPEN_TIMEOUT", 0.3)
    with socket.create_connection(("127.0.0.1", wire_server.port), timeout=10) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
        assert raw.recv(1024) == b""  # closed by the server, well before the socket's own 10 s timeout
    assert wire_server.handlers == []


def test_frames_sent_with_the_handshake_are_handled_after_it(wire_server: WireServer) -> None:
    handshake = (
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    frame = Frame(Opcode.TEXT, b"early").serialize(mask=True, extensions=[])
    with socket.create_connection(("127.0.0.1", wire_server.port), timeout=10) as raw:
        raw.sendall(handshake + frame)
        received = b""
        while b"echo:early" not in received:
            chunk = raw.recv(4096)
            assert chunk, f"closed before the echo: {received!r}"
            received += chunk
    assert received.startswith(b"HTTP/1.1 101")
    assert wire_server.handlers[0].messages == ["early"]


def test_a_closed_socket_is_lost_once(wire_server: WireServer) -> None:
    with connect(wire_server.url) as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "echo:hi"
    wait_for(lambda: wire_server.handlers[0].lost_calls > 0, 10, what="the handler to hear the close")
    assert wire_server.handlers[0].lost_calls == 1
    assert not wire_server.handlers[0].wire.open
