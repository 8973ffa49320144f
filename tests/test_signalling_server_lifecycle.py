"""The signalling server's garbage collection: start-up's heap set aside, young objects collected
less often while it serves, and both given back as they were when it stops (it runs in-process here)."""

from __future__ import annotations

import asyncio
import gc
import os
import signal

from tests.support.hosts import make_host_app
from vc_plugin.signalling_server import YOUNG_OBJECTS, SignallingServer


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
        os.kill(os.getpid(), signal.SIGTERM)  # the server's own handler stops it

    asyncio.run(asyncio.wait_for(server.run("127.0.0.1", 0, ready=ready), timeout=30))

    assert seen["threshold"] == (YOUNG_OBJECTS, *before[1:])
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
