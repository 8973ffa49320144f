"""The signalling server's own process, run in-process here: its garbage collection while it
serves, and what a handshake still being decided hears when it stops."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading
import time
from collections.abc import Callable

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support.hosts import make_host_app
from vc_plugin.signalling_server import YOUNG_OBJECTS, SignallingServer


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.01)


def stop_this_process() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # the server's own handler stops it


def test_the_server_collects_young_objects_less_often_while_it_serves_and_restores_the_collector(
    pg_url: str, redis_url: str
) -> None:
    host = make_host_app(pg_url, VC_REDIS_URL=redis_url)
    server = SignallingServer(host.app, threads=1)
    before = gc.get_threshold()
    seen: dict[str, object] = {}

    def ready(port: int) -> None:
        seen["threshold"] = gc.get_threshold()
        seen["frozen"] = gc.get_freeze_count()
        stop_this_process()

    asyncio.run(asyncio.wait_for(server.run("127.0.0.1", 0, ready=ready), timeout=30))

    assert seen["threshold"] == (YOUNG_OBJECTS, *before[1:])
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_handshake_still_being_decided_when_the_server_stops_is_told_to_try_again(
    pg_url: str, redis_url: str
) -> None:
    """A handshake without a ticket waits for the app's checks in the hub's thread; the server stops
    meanwhile. It is answered 503 (the page tries again, and the proxy picks a process that serves)
    instead of opening a socket that the stopping server would only drop, and the server waits for
    it before its loop ends. The same handshake on a serving server is decided by the app's checks."""
    host = make_host_app(pg_url, VC_REDIS_URL=redis_url)
    server = SignallingServer(host.app, threads=1)
    gate = threading.Event()
    statuses: list[int] = []

    async def handshake(url: str) -> int:
        try:
            async with connect(url, open_timeout=30):
                return 101
        except InvalidStatus as refused:
            return refused.response.status_code

    async def scenario() -> None:
        ports: asyncio.Queue[int] = asyncio.Queue()
        serving = asyncio.create_task(server.run("127.0.0.1", 0, ready=ports.put_nowait))
        url = f"ws://127.0.0.1:{await asyncio.wait_for(ports.get(), 30)}/vc/ws/practice"
        statuses.append(await handshake(url))  # serving: the app's checks decide (no sign-in)
        assert server.hub is not None
        server.hub.executor.submit(gate.wait)  # the hub's one thread is busy: the next handshake waits
        pending = asyncio.create_task(handshake(url))
        await until(lambda: server.deciding == 1)
        stop_this_process()
        await until(lambda: server.stopping)
        gate.set()
        statuses.append(await asyncio.wait_for(pending, 30))
        await asyncio.wait_for(serving, 30)
        assert server.deciding == 0

    try:
        asyncio.run(scenario())
    finally:
        gate.set()
    serving_status, stopping_status = statuses
    assert serving_status not in {503, 101}, serving_status
    assert stopping_status == 503
