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
from vc_plugin.web.websocket_wire import Decision, Handler, Wire

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


@pytest.fixture(params=["at once", "later"])
def wire_server(request: pytest.FixtureRequest) -> Iterator[WireServer]:
    """Handshakes decided at once (as with a socket ticket) or later (as by the app's checks in a thread)."""
    loop = asyncio.new_event_loop()
    handlers: list[Recorder] = []
    refuse: set[str] = set()
    tasks: set[asyncio.Future[None]] = set()

    def spawn(work: object) -> None:
        task = asyncio.ensure_future(work)  # type: ignore[call-overload]
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def decide_now(wire: Wire, handshake: Request) -> Decision:
        if handshake.path in refuse:
            return wire.protocol.reject(403, "refused\n"), None

        def make(accepted: Wire) -> Handler:
            handlers.append(Recorder(accepted))
            return handlers[-1]

        return wire.protocol.accept(handshake), make

    async def decide_later(wire: Wire, handshake: Request) -> Decision:
        await asyncio.sleep(0)
        return decide_now(wire, handshake)

    decide = decide_now if request.param == "at once" else decide_later
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


# --- frames read directly, beside websockets' own parser -------------------------------------------

HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
#: Room for a 64-bit length: the byte-level tests read frames of every length class.
BIG = 70_000


class Transport(asyncio.Transport):
    """Keeps what the wire writes; a stand-in for the network in tests that feed bytes one by one."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.eof = self.closed = self.aborted = False
        self.paused = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        self.paused += 1

    def resume_reading(self) -> None:
        pass


@dataclass
class Fed:
    """What one run of bytes through a wire came to."""

    messages: list[str | bytes]
    pongs: int
    lost: int
    written: bytes
    direct_at_end: bool


class Counting:
    def __init__(self, wire: Wire) -> None:
        self.wire, self.messages, self.pongs, self.lost_calls = wire, [], 0, 0

    def received(self, message: str | bytes) -> None:
        self.messages.append(message)
        if message == "schluss":
            self.wire.close(1000, "bye")
        if message == "schnitt":  # as a socket cut off for reading too slowly
            self.wire.abort()

    def ponged(self) -> None:
        self.pongs += 1

    def lost(self) -> None:
        self.lost_calls += 1


class ThroughWebsockets(Wire):
    """The wire as it was before it read frames itself: every frame through ``websockets``' parser."""

    def _between_frames(self) -> bool:
        return False


def feed(
    chunks: list[bytes],
    *,
    direct: bool = True,
    eof: bool = False,
    max_size: int = BIG,
    after_each: Callable[[Wire], None] = lambda wire: None,
) -> Fed:
    """The handshake, then ``chunks`` one ``data_received`` each; ``direct=False`` keeps every frame
    in ``websockets``' parser: what the wire did before it read frames itself."""

    async def run() -> Fed:
        tasks: list[asyncio.Future[None]] = []
        handlers: list[Counting] = []

        async def decide(wire: Wire, request: Request) -> tuple[Response, Callable[[Wire], Handler] | None]:
            def make(accepted: Wire) -> Handler:
                handlers.append(Counting(accepted))
                return handlers[-1]

            return wire.protocol.accept(request), make

        kind = Wire if direct else ThroughWebsockets
        wire = kind(decide, lambda work: tasks.append(asyncio.ensure_future(work)), max_size=max_size)  # type: ignore[arg-type]
        transport = Transport()
        wire.connection_made(transport)
        wire.data_received(HANDSHAKE)
        await asyncio.gather(*tasks)
        assert handlers, "the handshake was not accepted"
        assert wire.reads_directly is direct
        written_before = len(transport.written)
        for chunk in chunks:
            wire.data_received(chunk)
            after_each(wire)
        if eof:
            wire.eof_received()
            wire.connection_lost(None)
        handler = handlers[0]
        wire._cancel_timer()
        return Fed(
            handler.messages,
            handler.pongs,
            handler.lost_calls,
            bytes(transport.written[written_before:]),
            wire.reads_directly,
        )

    return asyncio.run(run())


def frame(opcode: Opcode, data: bytes, *, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin=fin).serialize(mask=True, extensions=[])


def one_by_one(stream: bytes) -> list[bytes]:
    return [stream[i : i + 1] for i in range(len(stream))]


MIXED = b"".join(
    [
        frame(Opcode.TEXT, b"kurz"),
        frame(Opcode.TEXT, "ü".encode() * 100),  # 16-bit length
        frame(Opcode.PING, b"p"),
        frame(Opcode.TEXT, b"x" * 66_000),  # 64-bit length
        frame(Opcode.TEXT, b"in ", fin=False),
        frame(Opcode.CONT, b"teilen"),
        frame(Opcode.PONG, b""),
        frame(Opcode.TEXT, b""),
        frame(Opcode.BINARY, b"\x00\x01"),
        frame(Opcode.TEXT, b"zuletzt"),
    ]
)
MIXED_MESSAGES = ["kurz", "ü" * 100, "x" * 66_000, "in teilen", "", b"\x00\x01", "zuletzt"]


@pytest.mark.parametrize("split", ["whole", "byte by byte", "in 7-byte pieces"])
def test_frames_read_directly_come_to_what_websockets_parser_makes_of_them(split: str) -> None:
    """Every length class, control frames, a message in parts and a binary one between them,
    however the network cuts the bytes: the same messages, pongs and bytes written as when
    ``websockets`` reads every frame."""
    chunks = {
        "whole": [MIXED],
        "byte by byte": one_by_one(MIXED),
        "in 7-byte pieces": [MIXED[i : i + 7] for i in range(0, len(MIXED), 7)],
    }[split]
    direct, through_websockets = feed(chunks), feed(chunks, direct=False)
    assert direct.messages == MIXED_MESSAGES
    assert (direct.messages, direct.pongs, direct.written) == (
        through_websockets.messages,
        through_websockets.pongs,
        through_websockets.written,
    )
    assert direct.pongs == 1 and direct.written.startswith(b"\x8a\x01p")  # the ping answered
    assert direct.direct_at_end  # back to reading directly after the frames websockets read


def test_nothing_after_a_close_frame_reaches_the_session() -> None:
    stream = frame(Opcode.TEXT, b"vorher") + frame(Opcode.CLOSE, b"\x03\xe8") + frame(Opcode.TEXT, b"danach")
    for chunks in ([stream], one_by_one(stream)):
        fed = feed(chunks)
        assert fed.messages == ["vorher"]
        assert fed.written == b"\x88\x02\x03\xe8"  # the close answered, and nothing else
        assert not fed.direct_at_end


def test_frames_after_the_server_closed_are_read_as_websockets_reads_them() -> None:
    """The server's close frame goes out before the client's is read (when all came at once,
    ``websockets`` alone had read the client's close first, and only echoed it); what follows
    the server's close is read by ``websockets``, and data frames still reach the session."""
    stream = b"".join(frame(Opcode.TEXT, t) for t in (b"eins", b"schluss", b"drei")) + frame(Opcode.CLOSE, b"\x03\xe8")
    whole, by_byte, by_byte_websockets = (
        feed([stream]),
        feed(one_by_one(stream)),
        feed(one_by_one(stream), direct=False),
    )
    assert whole.messages == by_byte.messages == by_byte_websockets.messages == ["eins", "schluss", "drei"]
    assert whole.written == by_byte.written == by_byte_websockets.written == b"\x88\x05\x03\xe8bye"
    assert not whole.direct_at_end and not by_byte.direct_at_end


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (Frame(Opcode.TEXT, b"ohne Maske").serialize(mask=False, extensions=[]), 1002),
        (frame(Opcode.TEXT, b"\xff\xfe"), 1007),
        (frame(Opcode.TEXT, b"y" * 101), 1009),
        (bytes([0xC1]) + frame(Opcode.TEXT, b"rsv1")[1:], 1002),  # a reserved bit: no extension agreed
        (frame(Opcode.CONT, b"ohne Anfang"), 1002),
    ],
    ids=["unmasked", "bad UTF-8", "too large", "reserved bit", "lone continuation"],
)
def test_a_bad_frame_among_good_ones_closes_and_nothing_after_it_is_read(bad: bytes, code: int) -> None:
    stream = frame(Opcode.TEXT, b"gut") + bad + frame(Opcode.TEXT, b"danach")
    for chunks in ([stream], one_by_one(stream)):
        fed = feed(chunks, max_size=100)
        assert fed.messages == ["gut"]
        assert fed.written[:2] == b"\x88\x02" or fed.written[:1] == b"\x88"
        assert int.from_bytes(fed.written[2:4]) == code, fed.written
        assert not fed.direct_at_end


@pytest.mark.parametrize("direct", [True, False], ids=["read directly", "through websockets"])
def test_nothing_read_after_the_wire_failed_or_cut_off_the_connection_reaches_the_session(direct: bool) -> None:
    """Frames the protocol had already parsed in the same read are dropped too: after bad UTF-8
    (which the wire, not the protocol, finds), and after the session cut the socket off."""
    bad_then_good = frame(Opcode.PING, b"") + frame(Opcode.TEXT, b"\xff") + frame(Opcode.TEXT, b"danach")
    failed = feed([bad_then_good], direct=direct)
    assert failed.messages == []
    assert failed.written.endswith(b"\x88\x0f\x03\xefinvalid UTF-8")
    cut = feed(
        [frame(Opcode.PING, b"") + frame(Opcode.TEXT, b"schnitt") + frame(Opcode.TEXT, b"danach")], direct=direct
    )
    assert cut.messages == ["schnitt"]


@pytest.mark.parametrize("at_once", [True, False], ids=["decided at once", "decided later"])
def test_a_close_that_came_with_the_handshake_gets_no_answer_but_the_end_of_the_connection(at_once: bool) -> None:
    async def run() -> tuple[Transport, list[Handler]]:
        tasks: list[asyncio.Future[None]] = []
        handlers: list[Handler] = []

        def decide_now(wire: Wire, request: Request) -> Decision:
            return wire.protocol.accept(request), lambda accepted: handlers.append(Counting(accepted)) or handlers[-1]

        async def decide_later(wire: Wire, request: Request) -> Decision:
            return decide_now(wire, request)

        decide = decide_now if at_once else decide_later

        wire = Wire(decide, lambda work: tasks.append(asyncio.ensure_future(work)), max_size=BIG)  # type: ignore[arg-type]
        transport = Transport()
        wire.connection_made(transport)
        wire.data_received(HANDSHAKE + frame(Opcode.CLOSE, b"\x03\xe8") + frame(Opcode.TEXT, b"danach"))
        await asyncio.gather(*tasks)
        wire._cancel_timer()
        return transport, handlers

    transport, handlers = asyncio.run(run())
    assert transport.aborted and handlers == []
    assert b"101" not in transport.written


def test_a_frame_cut_off_by_the_end_of_the_stream_is_not_a_message() -> None:
    stream = frame(Opcode.TEXT, b"ganz") + frame(Opcode.TEXT, b"halb")[:-2]
    fed = feed([stream], eof=True)
    assert fed.messages == ["ganz"]
    assert fed.lost == 1


def test_a_frame_in_many_pieces_is_gathered_in_place() -> None:
    """Each piece is appended to what came before, not copied with it: a client that sends a large
    frame a thousand bytes at a time costs the server as much as one that sends it at once, not
    its square."""
    big = frame(Opcode.TEXT, b"z" * 20_000)
    buffers: list[int] = []

    def watch(wire: Wire) -> None:
        buffers.append(id(wire._partial))

    fed = feed([big[i : i + 1000] for i in range(0, len(big), 1000)], after_each=watch)
    assert fed.messages == ["z" * 20_000]
    assert len(set(buffers[:-1])) == 1, "the same buffer grew; nothing was copied piece by piece"


def test_a_real_client_is_read_directly(wire_server: WireServer) -> None:
    """The parser check holds for the installed websockets release: if a release parses differently,
    frames still arrive (through websockets), but this says the shortcut is gone."""
    with connect(wire_server.url) as ws:
        ws.send("hallo")
        assert ws.recv(timeout=10) == "echo:hallo"
        assert wire_server.handlers[0].wire.reads_directly


@pytest.mark.parametrize("at_once", [True, False], ids=["decided at once", "decided later"])
def test_frames_that_came_with_the_handshake_are_read_after_it_in_order(at_once: bool) -> None:
    async def run() -> tuple[Transport, list[Counting]]:
        tasks: list[asyncio.Future[None]] = []
        handlers: list[Counting] = []

        def decide_now(wire: Wire, request: Request) -> Decision:
            def make(accepted: Wire) -> Handler:
                handlers.append(Counting(accepted))
                return handlers[-1]

            return wire.protocol.accept(request), make

        async def decide_later(wire: Wire, request: Request) -> Decision:
            return decide_now(wire, request)

        wire = Wire(
            decide_now if at_once else decide_later,
            lambda work: tasks.append(asyncio.ensure_future(work)),
            max_size=BIG,
        )  # type: ignore[arg-type]
        transport = Transport()
        wire.connection_made(transport)
        zwei = frame(Opcode.TEXT, b"zwei")  # one frame (its mask is random), in two pieces
        wire.data_received(HANDSHAKE + frame(Opcode.TEXT, b"eins") + zwei[:4])
        assert bool(tasks) is not at_once, "a handshake decided at once needs no task"
        await asyncio.gather(*tasks)
        wire.data_received(zwei[4:] + frame(Opcode.TEXT, b"drei"))
        wire._cancel_timer()
        return transport, handlers

    transport, [handler] = asyncio.run(run())
    assert transport.written.startswith(b"HTTP/1.1 101")
    assert handler.messages == ["eins", "zwei", "drei"]
