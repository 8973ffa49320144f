"""Many concurrent sockets with keep-alive pings: connect rate, memory per socket, errors.

Each side's sockets behave like its own browsers: ours join a waiting room (a patient's
pass, ``hello``) and ping every 5 s as ``signal.js`` does; PeerJS clients open with an id and
send ``HEARTBEAT`` every 5 s as the PeerJS client library does. The ramp stops at each stage
(1k, 5k, 10k) to read the server's memory, threads and descriptors, and holds the sockets
for a while to see whether keep-alives and the server's housekeeping cost CPU or drop any.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench import procs
from bench.peers import connect_options, peerjs_client
from bench.seed import Seat, TicketDesk

OUR_PING_SECONDS = 5.0  # PING_EVERY_MS in vc_plugin/static/vc_plugin/js/signal.js
PEERJS_HEARTBEAT_SECONDS = 5.0  # the PeerJS client's default pingInterval
PARALLEL = 64
#: A socket that takes longer than this to open counts as failed (a browser would give up too).
OPEN_TIMEOUT = 10.0
#: Sockets whose tickets are issued at a time: each is used within seconds, well inside its 30.
CHUNK = 500


@dataclass
class Stage:
    sockets: int
    connect_seconds: float
    connect_rate: float
    connect_cpu_ms: float  # server CPU per new socket while connecting
    rss_bytes: int
    rss_per_socket: float
    threads: int
    fds: int
    hold_cpu_share: float  # server CPU while holding the sockets, as a share of one core
    failed_connects: int
    dropped: int  # sockets the server closed while they should have stayed open


@dataclass
class Ramp:
    server: str
    baseline_rss: int
    stages: list[Stage] = field(default_factory=list)
    error: str | None = None
    failures: dict[str, int] = field(default_factory=dict)


class _Fleet:
    """The open sockets, their readers, and one pinger that spreads keep-alives over the interval."""

    def __init__(self, interval: float, ping: Callable[[], str]) -> None:
        self.sockets: list[ClientConnection] = []
        self.readers: list[asyncio.Task[None]] = []
        self.dropped = 0
        self.failed = 0
        self.reasons: dict[str, int] = {}
        self.interval = interval
        self.ping = ping
        self._closing = False

    def add(self, socket: ClientConnection) -> None:
        self.sockets.append(socket)
        self.readers.append(asyncio.create_task(self._read(socket)))

    async def _read(self, socket: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            async for _ in socket:
                pass
        if not self._closing:
            self.dropped += 1

    async def pinger(self) -> None:
        index = 0
        while True:
            count = len(self.sockets)
            if count == 0:
                await asyncio.sleep(0.1)
                continue
            step = self.interval / count
            socket = self.sockets[index % count]
            index += 1
            with contextlib.suppress(Exception):
                await socket.send(self.ping())
            await asyncio.sleep(step)

    def abort(self) -> None:
        """Drop every socket at once (no closing handshakes: the server is stopped right after)."""
        self._closing = True
        for task in self.readers:
            task.cancel()
        for socket in self.sockets:
            with contextlib.suppress(Exception):
                socket.transport.abort()


async def ramp(
    label: str,
    pgid: int,
    *,
    stages: list[int],
    opener: Callable[[int], Awaitable[ClientConnection]],
    fleet: _Fleet,
    hold: float,
    budget: float,
    prepare: Callable[[range], Awaitable[None]] | None = None,
) -> Ramp:
    """Open sockets stage by stage; a ramp that spends more than ``budget`` seconds connecting records
    where it got to (the holds do not count). ``prepare`` readies each chunk of ``CHUNK`` sockets before
    they connect (our tickets); neither its time nor the server's CPU meanwhile counts as connecting."""
    result = Ramp(label, procs.usage(pgid).rss_bytes)
    pinger = asyncio.create_task(fleet.pinger())
    gate = asyncio.Semaphore(PARALLEL)

    async def one(i: int) -> None:
        async with gate:
            try:
                fleet.add(await opener(i))
            except Exception as error:
                fleet.failed += 1
                reason = f"{type(error).__name__}: {error}"[:120]
                fleet.reasons[reason] = fleet.reasons.get(reason, 0) + 1

    deadline = time.perf_counter() + budget
    try:
        done = 0
        for target in stages:
            opened_before = len(fleet.sockets) + fleet.failed
            elapsed = connect_cpu = 0.0
            pending: set[asyncio.Task[None]] = set()
            step = CHUNK if prepare else target - done
            for first in range(done, target, step):
                chunk = range(first, min(target, first + step))
                if prepare is not None:
                    ready_from = time.perf_counter()
                    await prepare(chunk)
                    deadline += time.perf_counter() - ready_from
                started, cpu_before = time.perf_counter(), procs.usage(pgid).cpu_seconds
                tasks = [asyncio.create_task(one(i)) for i in chunk]
                _, pending = await asyncio.wait(tasks, timeout=max(1.0, deadline - started))
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                elapsed += time.perf_counter() - started
                connect_cpu += procs.usage(pgid).cpu_seconds - cpu_before
                if pending:
                    break
            new = len(fleet.sockets) + fleet.failed - opened_before
            done = target
            before = procs.usage(pgid)
            await asyncio.sleep(hold)
            after = procs.usage(pgid)
            deadline += after.at - before.at
            open_now = len(fleet.sockets) - fleet.dropped
            result.stages.append(
                Stage(
                    sockets=open_now,
                    connect_seconds=elapsed,
                    connect_rate=new / elapsed if elapsed else 0.0,
                    connect_cpu_ms=connect_cpu / max(1, new) * 1000,
                    rss_bytes=after.rss_bytes,
                    rss_per_socket=(after.rss_bytes - result.baseline_rss) / max(1, open_now),
                    threads=after.threads,
                    fds=procs.fds(pgid),
                    hold_cpu_share=(after.cpu_seconds - before.cpu_seconds) / (after.at - before.at),
                    failed_connects=fleet.failed,
                    dropped=fleet.dropped,
                )
            )
            if pending:
                result.error = f"time budget ({budget:.0f} s) spent on the way to {target:,} sockets"
                break
            if fleet.failed > target // 100 or fleet.dropped > target // 100:
                result.error = f"more than 1 % of the sockets failed or dropped on the way to {target:,}"
                break
    finally:
        pinger.cancel()
        fleet.abort()
        result.failures = dict(fleet.reasons)
    return result


async def ours(
    ws_base: str,
    pgid: int,
    seats: list[Seat],
    *,
    stages: list[int],
    hold: float,
    budget: float,
    desk: TicketDesk | None = None,
) -> Ramp:
    """Patients into their waiting rooms; with ``desk``, each with a socket ticket, as our pages open them."""
    origin = ws_base.replace("ws://", "http://")
    tickets: dict[int, str] = {}

    async def prepare(chunk: range) -> None:
        assert desk is not None
        issued = await asyncio.gather(*(asyncio.to_thread(desk.ticket, seats[i], i) for i in chunk))
        tickets.update(zip(chunk, issued, strict=True))

    async def opener(i: int) -> ClientConnection:
        seat = seats[i]
        ticket = tickets.pop(i, None)
        socket = await connect(
            f"{ws_base}/vc/ws/room/{seat.appointment}" + (f"?ticket={ticket}" if ticket else ""),
            additional_headers={} if ticket else {"Cookie": seat.cookie},
            origin=origin,  # type: ignore[arg-type]
            **connect_options(open_timeout=OPEN_TIMEOUT),
        )
        await socket.send('{"type":"hello"}')
        welcome = json.loads(await socket.recv())
        if welcome.get("type") != "welcome":
            raise RuntimeError(welcome)
        return socket

    fleet = _Fleet(OUR_PING_SECONDS, lambda: json.dumps({"type": "ping", "t": time.time()}))
    return await ramp(
        "ours",
        pgid,
        stages=stages,
        opener=opener,
        fleet=fleet,
        hold=hold,
        budget=budget,
        prepare=prepare if desk else None,
    )


async def peerjs(ws_base: str, pgid: int, *, stages: list[int], hold: float, budget: float) -> Ramp:
    tag = secrets.token_hex(3)

    async def opener(i: int) -> ClientConnection:
        return await peerjs_client(ws_base, f"c{tag}{i:06d}", open_timeout=OPEN_TIMEOUT)

    fleet = _Fleet(PEERJS_HEARTBEAT_SECONDS, lambda: '{"type":"HEARTBEAT"}')
    return await ramp("PeerJS", pgid, stages=stages, opener=opener, fleet=fleet, hold=hold, budget=budget)


def as_dict(ramp_: Ramp) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(ramp_)
