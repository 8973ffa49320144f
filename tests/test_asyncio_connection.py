"""One socket of the signalling server in order: what the loop does at once, what a thread does,
and what the client sent meanwhile, written in the order the session asked for it.

A session and a wire of the test's own stand in for the protocol and the network; the hub is
the real one, on an app in embedded mode, with its performer's thread work replaced by a step
that takes a while (as the database or Redis would) and then says something.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from vc_plugin.domain.socket_actions import Action, CheckPass, Close, Send
from vc_plugin.web.asyncio_sockets import AsyncConnection, SignallingHub

#: How long the stand-in for thread work takes: long enough that the next frame arrives meanwhile.
THREAD_WORK_SECONDS = 0.05


class Session:
    """Answers each frame with the actions listed for it; says "bye" when the socket ends."""

    def __init__(self, script: dict[str, list[Action]]) -> None:
        self.script = script
        self.closed = False
        self.ended = False

    def receive(self, raw: str | bytes, now: float, at: Any) -> list[Action]:
        return list(self.script[str(raw)])

    def socket_closed(self) -> list[Action]:
        self.ended = True
        return []


class Wire:
    """What the connection writes, and whether it asked the network to wait."""

    def __init__(self) -> None:
        self.written: list[str] = []
        self.paused = False
        self.pauses = 0
        self.closed: tuple[int, str] | None = None

    @property
    def open(self) -> bool:
        return self.closed is None

    def unsent_bytes(self) -> int:
        return 0

    def send_text(self, text: str) -> None:
        self.written.append(text)

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def abort(self) -> None:
        self.closed = (1006, "")

    def pause_reading(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_reading(self) -> None:
        self.paused = False


def _connection(app: Any, state: Any, script: dict[str, list[Action]]) -> tuple[AsyncConnection, Wire, list[str]]:
    loop = asyncio.get_running_loop()
    hub = SignallingHub(app, state, loop, threads=2)
    threads: list[str] = []

    def perform(action: Action, session: Any, connection: str) -> Any:
        """The thread's part of a ``CheckPass``: slow, off the loop, then something to say."""
        threads.append(threading.current_thread().name)
        time.sleep(THREAD_WORK_SECONDS)
        return lambda s: [Send("from the thread")]

    hub.performer.perform = perform  # type: ignore[method-assign]
    wire = Wire()
    return AsyncConnection(hub, wire, Session(script), "c1"), wire, threads  # type: ignore[arg-type]


async def _until(condition: Any, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the bound"
        await asyncio.sleep(0.005)


def test_thread_work_keeps_the_order_of_a_message_and_of_the_messages_after_it(app, state):
    script = {
        "first": [Send("a"), CheckPass(), Send("b")],
        "second": [Send("c")],
        "third": [Send("d")],
    }

    async def scenario() -> tuple[list[str], list[str]]:
        connection, wire, threads = _connection(app, state, script)
        connection.received("first")
        assert wire.written == ["a"], "what the loop can write goes out at once, up to the thread work"
        connection.received("second")  # while the thread works: kept, and the network asked to wait
        connection.received("third")
        assert wire.written == ["a"] and wire.paused and wire.pauses >= 1
        await _until(lambda: not wire.paused)
        connection.hub.executor.shutdown(wait=True)
        return wire.written, threads

    written, threads = asyncio.run(scenario())
    assert written == ["a", "from the thread", "b", "c", "d"]
    assert threads and all(name.startswith("vc-signalling") for name in threads), "the slow part ran in the pool"


def test_a_close_on_the_way_drops_the_rest_and_nothing_after_it_is_written(app, state):
    script = {"first": [Send("a"), CheckPass(), Close(1000, "left"), Send("never")], "second": [Send("nor this")]}

    async def scenario() -> Wire:
        connection, wire, _ = _connection(app, state, script)
        connection.session.closed = False
        original_close = wire.close

        def close(code: int, reason: str) -> None:
            connection.session.closed = True  # as a real session is, once it asked to close
            original_close(code, reason)

        wire.close = close  # type: ignore[method-assign]
        connection.received("first")
        connection.received("second")
        await _until(lambda: wire.closed is not None)
        await asyncio.sleep(THREAD_WORK_SECONDS)  # anything still queued would be written by now
        connection.hub.executor.shutdown(wait=True)
        return wire

    wire = asyncio.run(scenario())
    assert wire.closed == (1000, "left")
    assert wire.written == ["a", "from the thread"]


def test_a_socket_lost_during_thread_work_ends_after_it(app, state):
    script = {"first": [CheckPass(), Send("late")]}

    async def scenario() -> tuple[Session, Wire]:
        connection, wire, _ = _connection(app, state, script)
        connection.received("first")
        connection.lost()  # the network went while the thread worked
        session = connection.session
        assert not session.ended, "the end waits for the message's own work"  # type: ignore[union-attr]
        await _until(lambda: session.ended)  # type: ignore[union-attr]
        connection.hub.executor.shutdown(wait=True)
        return session, wire  # type: ignore[return-value]

    session, wire = asyncio.run(scenario())
    assert session.ended and wire.written == ["from the thread", "late"]
