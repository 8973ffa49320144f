"""What one connect costs, without the socket: CPU, database queries, Redis round trips, step by step.

The connection ramp (bench/connections.py) measures connects end to end beside PeerJS; this
takes a patient's connect apart, in this process, against PostgreSQL and a Redis of its own:

- ``ticket``: the app's ``POST /vc/socket-ticket`` (CSRF, join limit, pass, room), through the
  app's own view as a page asks it: what a connect costs the app's WSGI processes;
- ``handshake``: the signalling server taking that ticket (``Handshakes.decide_ticket``);
- ``handshake_without_ticket``: the same handshake decided by the cookie instead
  (``Handshakes.decide``: the app's before-request functions), as for clients without a ticket;
- ``hello``: the session's ``Join``, performed as the signalling server performs it.

What it counts is exact: SQL statements through SQLAlchemy, Redis round trips through redis-py's
connection (a pipeline or a script is one). It needs no free port and no browser.

    .venv/bin/python -m bench.connect_cost [--connects 500] [--rooms 300] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import pstats
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis.connection
from redis import Redis
from sqlalchemy import event

from bench import seed
from bench.services import BenchDatabase, start_redis
from tests.support.hosts import make_host_app
from vc_plugin.adapters.presence import RedisPresence
from vc_plugin.domain.room_session import RoomSession
from vc_plugin.signalling_server import Handshakes, Refusal
from vc_plugin.web.asyncio_sockets import in_app
from vc_plugin.web.performer import Performer

ORIGIN = "http://127.0.0.1"
#: A browser's handshake headers, but the origin and the cookie.
UPGRADE = [
    ("Host", "127.0.0.1"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
]
#: Connects before the measured ones, at least: caches, connection pools and code paths warm up.
WARM_UP = 50


@dataclass
class Step:
    cpu_ms: float  # process CPU per connect
    queries: float  # SQL statements per connect
    redis_round_trips: float  # per connect


@dataclass
class ConnectCost:
    connects: int
    rooms: int
    ticket: Step  # in the app
    handshake: Step  # in the signalling server, with the ticket
    handshake_without_ticket: Step
    hello: Step

    @property
    def signalling_cpu_ms(self) -> float:
        """What a connect with a ticket costs the signalling server."""
        return self.handshake.cpu_ms + self.hello.cpu_ms


class _Counter:
    """SQL statements and Redis round trips of this process while it counts."""

    def __init__(self, engine: Any) -> None:
        self.queries = 0
        self.round_trips = 0
        event.listen(engine, "before_cursor_execute", self._query)
        connection_class = redis.connection.AbstractConnection
        original = connection_class.send_packed_command

        def counted(connection: Any, command: Any, check_health: bool = True) -> None:
            self.round_trips += 1
            original(connection, command, check_health)

        self._restore = lambda: setattr(connection_class, "send_packed_command", original)
        connection_class.send_packed_command = counted  # type: ignore[method-assign]

    def _query(self, *_: Any) -> None:
        self.queries += 1

    def close(self) -> None:
        self._restore()


def _timed(work: Callable[[], Any], counter: _Counter) -> tuple[Any, float, int, int]:
    queries, trips = counter.queries, counter.round_trips
    start = time.process_time()
    result = work()
    return result, time.process_time() - start, counter.queries - queries, counter.round_trips - trips


@contextlib.contextmanager
def _world(work: Path) -> Iterator[tuple[Any, Any, Any]]:
    database = BenchDatabase().create()
    redis_server = start_redis(work)
    host = make_host_app(database.url, VC_REDIS_URL=redis_server.url, VC_PUBLIC_URL=ORIGIN + "/")
    try:
        with host.app.app_context():
            yield host, database, redis_server
    finally:
        with contextlib.suppress(Exception):
            host.close()
        redis_server.stop()
        database.drop()


def measure(connects: int, rooms: int, *, profile: Path | None = None) -> ConnectCost:
    """``connects`` patients of one practitioner connect, each to a room of its own, among ``rooms`` open rooms."""
    with tempfile.TemporaryDirectory(prefix="vc-connect-cost-") as tmp, _world(Path(tmp)) as (host, database, _):
        state, app = host.state, host.app
        doctor = seed.provision(state, 1)
        presence = RedisPresence(Redis.from_url(state.settings.redis_url))
        earlier = max(rooms - connects, WARM_UP)
        seats = seed.seats(database.url, presence, doctor, earlier + connects)
        handshakes = Handshakes(app, state)
        performer = Performer(state, time.monotonic)
        counter = _Counter(state.db.engine)
        profiler = cProfile.Profile(time.process_time) if profile else None  # CPU, not waiting

        def connect(seat: seed.Seat) -> tuple[float, ...]:
            headers = [*UPGRADE, ("Origin", ORIGIN), ("Cookie", seat.cookie)]
            path = f"/vc/ws/room/{seat.appointment}"
            remote = f"127.0.{secrets.randbelow(250)}.{1 + secrets.randbelow(250)}"

            def ticket() -> str:
                response = seed.ask_ticket(app, seat.cookie, path, remote)
                if response.status_code != 200:
                    raise RuntimeError(f"no ticket: {response.status_code} {response.get_data(as_text=True)[:300]}")
                return str(response.json["ticket"])

            issued, t_cpu, t_q, t_r = _timed(ticket, counter)
            decided, h_cpu, h_q, h_r = _timed(
                lambda: handshakes.decide_ticket(f"{path}?ticket={issued}", "127.0.0.1", ORIGIN), counter
            )
            if decided is None or isinstance(decided, Refusal):
                raise RuntimeError(f"handshake with a ticket refused: {decided}")
            refused, c_cpu, c_q, c_r = _timed(
                lambda: in_app(app, state, lambda: handshakes.decide(path, headers, remote)), counter
            )
            if isinstance(refused, Refusal):
                raise RuntimeError(f"handshake refused: {refused}")
            session = decided(secrets.token_urlsafe(9), time.time(), time.monotonic())
            assert isinstance(session, RoomSession)

            def hello() -> None:
                actions = session.receive(json.dumps({"type": "hello"}), time.monotonic(), state.clock.now())
                for action in actions[1:]:  # the first subscribes: the transport's own work
                    report = in_app(app, state, lambda a=action: performer.perform(a, session, session.connection))
                    if report is not None:
                        report(session)

            _, w_cpu, w_q, w_r = _timed(hello, counter)
            if session.closed or session.room is None:
                raise RuntimeError("hello was not welcomed")
            return t_cpu, t_q, t_r, h_cpu, h_q, h_r, c_cpu, c_q, c_r, w_cpu, w_q, w_r

        totals = [0.0] * 12
        try:
            # The other rooms open first (a day's appointments, and the warm-up), then the measured connects.
            for seat in seats[:earlier]:
                connect(seat)
            if profiler:
                profiler.enable()
            for seat in seats[earlier:]:
                for i, value in enumerate(connect(seat)):
                    totals[i] += value
        finally:
            counter.close()
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(profile))
        n = connects
        ticket, handshake, without, hello = (
            Step(totals[i] * 1000 / n, totals[i + 1] / n, totals[i + 2] / n) for i in range(0, 12, 3)
        )
        return ConnectCost(
            connects=n,
            rooms=earlier + connects,
            ticket=ticket,
            handshake=handshake,
            handshake_without_ticket=without,
            hello=hello,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connects", type=int, default=500)
    parser.add_argument("--rooms", type=int, default=300, help="open rooms of the same practitioner")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the measured connects here")
    args = parser.parse_args()
    cost = measure(args.connects, args.rooms, profile=args.profile)
    print(json.dumps({**asdict(cost), "signalling_cpu_ms": round(cost.signalling_cpu_ms, 2)}, indent=2))
    if args.profile:
        pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
