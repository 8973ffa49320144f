"""Benchmark 4: the waiting room with 1,000 patients in it.

With ``waiting`` patients already connected (spread over 20 practitioners' appointments,
each practitioner's dashboard open), more patients arrive one by one, and the practitioners
admit waiting patients one by one, both at a steady pace so that the figures are latencies and
not queues. Timed: a patient's ``hello`` until their practitioner's dashboard hears
``queue-update arrived``, and ``admit`` sent until the patient hears ``admitted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench import seed
from bench.context import Context
from bench.peers import connect_options
from bench.stats import summary_ms

PRACTITIONERS = 20
PACE_PER_SECOND = 20.0
PARALLEL = 64


class _Patients:
    """Open patient sockets; each reader timestamps the messages the benchmark waits for."""

    def __init__(self, ws_base: str) -> None:
        self.ws_base = ws_base
        self.origin = ws_base.replace("ws://", "http://")
        self.sockets: list[ClientConnection] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.welcomed: dict[str, asyncio.Event] = {}
        self.admitted_at: dict[str, float] = {}

    async def open(self, seat: seed.Seat) -> ClientConnection:
        socket = await connect(
            f"{self.ws_base}/vc/ws/room/{seat.appointment}",
            additional_headers={"Cookie": seat.cookie},
            origin=self.origin,  # type: ignore[arg-type]
            **connect_options(),
        )
        self.sockets.append(socket)
        self.welcomed[seat.participant] = asyncio.Event()
        self.tasks.append(asyncio.create_task(self._read(socket, seat.participant)))
        return socket

    async def _read(self, socket: ClientConnection, participant: str) -> None:
        with contextlib.suppress(Exception):
            async for raw in socket:
                if raw.startswith('{"type":"welcome"'):
                    self.welcomed[participant].set()
                elif raw.startswith('{"type":"admitted"'):
                    self.admitted_at[participant] = time.perf_counter()

    def abort(self) -> None:
        for task in self.tasks:
            task.cancel()
        for socket in self.sockets:
            with contextlib.suppress(Exception):
                socket.transport.abort()


class _Dashboards:
    def __init__(self) -> None:
        self.sockets: dict[str, ClientConnection] = {}
        self.arrived_at: dict[str, float] = {}
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self, ws_base: str, practitioner: Any) -> None:
        socket = await connect(
            f"{ws_base}/vc/ws/practice",
            additional_headers={"Cookie": seed.practitioner_cookie(practitioner)},
            origin=ws_base.replace("ws://", "http://"),  # type: ignore[arg-type]
            **connect_options(),
        )
        await socket.send('{"type":"hello"}')
        queue = json.loads(await socket.recv())
        assert queue["type"] == "queue", queue
        self.sockets[practitioner.public_id] = socket
        self.tasks.append(asyncio.create_task(self._read(socket)))

    async def _read(self, socket: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            async for raw in socket:
                if '"op":"arrived"' in raw:
                    now = time.perf_counter()
                    body = json.loads(raw)
                    self.arrived_at.setdefault(body["member"]["id"], now)

    def abort(self) -> None:
        for task in self.tasks:
            task.cancel()
        for socket in self.sockets.values():
            with contextlib.suppress(Exception):
                socket.transport.abort()


async def _paced(items: list[Any], action: Any) -> None:
    start = time.perf_counter()
    for i, item in enumerate(items):
        delay = start + i / PACE_PER_SECOND - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await action(item)


async def _wait(condition: Any, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not condition() and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)


async def waiting_room(ctx: Context, worker_class: str, signalling: str = "flask-sock") -> dict[str, Any]:
    """``signalling``: the app's own sockets ("flask-sock"), or ``flask vc signalling-server`` ("asyncio")."""
    profile = ctx.profile
    arrivals = profile.admits
    practitioners = seed.provision(ctx.state, PRACTITIONERS, organisation="praxis-warte")
    seats = ctx.seats(profile.waiting + arrivals, practitioners)
    waiting, arriving = seats[: profile.waiting], seats[profile.waiting :]
    threads = len(seats) + PRACTITIONERS + 100 if signalling == "flask-sock" else 8
    server = ctx.ours(worker_class, threads=threads, signalling=signalling)
    patients, dashboards = _Patients(server.ws_url), _Dashboards()
    try:
        for person in practitioners:
            await dashboards.open(server.ws_url, person)
        gate = asyncio.Semaphore(PARALLEL)

        async def join(seat: seed.Seat) -> None:
            async with gate:
                socket = await patients.open(seat)
                await socket.send('{"type":"hello"}')
                await patients.welcomed[seat.participant].wait()

        started = time.perf_counter()
        await asyncio.gather(*(join(seat) for seat in waiting))
        fill_seconds = time.perf_counter() - started
        await _wait(lambda: len(dashboards.arrived_at) >= len(waiting), 30)

        hello_at: dict[str, float] = {}

        async def arrive(seat: seed.Seat) -> None:
            socket = await patients.open(seat)
            hello_at[seat.participant] = time.perf_counter()
            await socket.send('{"type":"hello"}')

        await _paced(arriving, arrive)
        await _wait(lambda: all(s.participant in dashboards.arrived_at for s in arriving), 30)
        notified = [dashboards.arrived_at[p] - t for p, t in hello_at.items() if p in dashboards.arrived_at]

        admit_at: dict[str, float] = {}

        async def admit(seat: seed.Seat) -> None:
            body = {"type": "admit", "appointment": seat.appointment, "participant": seat.participant}
            admit_at[seat.participant] = time.perf_counter()
            await dashboards.sockets[seat.practitioner].send(json.dumps(body))

        chosen = waiting[:: max(1, len(waiting) // profile.admits)][: profile.admits]
        await _paced(chosen, admit)
        await _wait(lambda: all(s.participant in patients.admitted_at for s in chosen), 30)
        admitted = [patients.admitted_at[p] - t for p, t in admit_at.items() if p in patients.admitted_at]
    finally:
        patients.abort()
        dashboards.abort()
        ctx.stop(server)
    return {
        "worker": server.label,
        "waiting": len(waiting),
        "fill_seconds": fill_seconds,
        "arrival_to_notification": summary_ms(notified),
        "arrivals_missed": len(arriving) - len(notified),
        "admit_to_admitted": summary_ms(admitted),
        "admits_missed": len(chosen) - len(admitted),
        "pace_per_second": PACE_PER_SECOND,
    }
