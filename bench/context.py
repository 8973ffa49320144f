"""What every benchmark of one run shares: the database, a private Redis, people, and servers.

Everything is created for the run and removed afterwards; nothing touches the databases the
tests use (PostgreSQL database ``test``, Redis DB 9).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from redis import Redis

from bench import seed
from bench.profile import Profile
from bench.services import BenchDatabase, OurServer, PeerJSServer, start_redis
from tests.support.hosts import HostApp, make_host_app
from tests.support.redis_server import RedisServer
from vc_plugin.adapters.presence import RedisPresence
from vc_plugin.core.models import Practitioner


class Context:
    def __init__(self, profile: Profile, work: Path) -> None:
        self.profile = profile
        self.work = work
        self.db = BenchDatabase().create()
        self.redis: RedisServer = start_redis(work)
        # The orchestrator's own app only writes test data: embedded mode, no Redis listener in the client.
        self.host: HostApp = make_host_app(self.db.url)
        self._app_context = self.host.app.app_context()
        self._app_context.push()
        self.doctors: list[Practitioner] = seed.provision(self.host.state, 1)
        self._servers: list[Any] = []
        self._people: list[Practitioner] = []

    @property
    def state(self) -> Any:
        return self.host.state

    @property
    def redis_pgid(self) -> int:
        assert self.redis.process is not None
        return self.redis.process.popen.pid

    def ours(
        self, worker_class: str = "gthread", *, threads: int = 256, signalling: str = "flask-sock", **config: Any
    ) -> OurServer:
        server = OurServer(
            self.db.url,
            self.redis.url,
            self.work,
            worker_class=worker_class,
            threads=threads,
            config=config,
            signalling=signalling,
        )
        self._servers.append(server)
        server.start()
        return server

    def peerjs(self) -> PeerJSServer:
        server = PeerJSServer(self.work)
        self._servers.append(server)
        return server.start()

    def stop(self, server: Any) -> None:
        server.stop()
        with contextlib.suppress(ValueError):
            self._servers.remove(server)

    def practitioner(self) -> Practitioner:
        """A practitioner of their own for one benchmark, so no dashboard sees another benchmark's rooms."""
        [person] = seed.provision(self.state, 1, organisation=f"praxis-{len(self._people)}")
        self._people.append(person)
        return person

    def seats(self, count: int, practitioners: list[Practitioner] | None = None) -> list[seed.Seat]:
        # The servers' presence is the bench's Redis (the orchestrator's own app is embedded).
        presence = RedisPresence(Redis.from_url(self.redis.url))
        return seed.seats(self.db.url, presence, practitioners or self.doctors, count)

    def close(self) -> None:
        for server in list(self._servers):
            with contextlib.suppress(Exception):
                server.stop()
        with contextlib.suppress(Exception):
            self._app_context.pop()
            self.host.close()
        with contextlib.suppress(Exception):
            self.redis.stop()
        self.db.drop()
