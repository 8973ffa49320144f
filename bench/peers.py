"""Connecting pairs of peers that may relay to each other, in our protocol and in PeerJS's.

In ours a pair is one appointment: the patient (a signed pass in the cookie) and the
practitioner join its room, the practitioner's dashboard admits the patient, and from then on
the server relays between the two. In PeerJS a pair is two clients with ids of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.seed import Seat
from tests.support.signal_client import SignalClient

#: Browsers offer permessage-deflate; so does the load client (our server accepts it, PeerJS's declines).
CONNECT: dict[str, Any] = {"max_size": 2**24, "open_timeout": 60, "ping_interval": None, "close_timeout": 2}
_sources = itertools.count(1)


def connect_options(**overrides: Any) -> dict[str, Any]:
    """Options for one client socket, from a source address of its own in 127.0.0.0/8.

    Our server limits WebSocket handshakes per client address (120 a minute); thousands of
    browsers come from thousands of addresses, and so do the load client's sockets.
    """
    n = next(_sources)
    address = f"127.{1 + (n >> 16) % 254}.{(n >> 8) & 255}.{1 + (n & 255) % 254}"
    return {**CONNECT, "local_addr": (address, 0), **overrides}


@dataclass
class Pair:
    a: ClientConnection
    b: ClientConnection
    a_id: str
    b_id: str


@dataclass
class Pairs:
    """Open pairs and whatever else must stay open (our practitioner's dashboard)."""

    protocol: str
    items: list[Pair]
    extra: list[ClientConnection] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        sockets = [s for p in self.items for s in (p.a, p.b)] + self.extra
        await asyncio.gather(*(_close(s) for s in sockets))


async def _close(socket: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        await socket.close()


async def discard(socket: ClientConnection) -> None:
    """Read and forget, so that the server never finds this socket too slow."""
    with contextlib.suppress(Exception):
        async for _ in socket:
            pass


async def _limited(count: int, make: Any, parallel: int) -> list[Any]:
    gate = asyncio.Semaphore(parallel)

    async def one(i: int) -> Any:
        async with gate:
            return await make(i)

    return await asyncio.gather(*(one(i) for i in range(count)))


def _origin(ws_base: str) -> str:
    return ws_base.replace("ws://", "http://")


async def open_signal(ws_base: str, path: str, cookie: str) -> SignalClient:
    socket = await connect(
        ws_base + path,
        additional_headers={"Cookie": cookie},
        origin=_origin(ws_base),
        **connect_options(),  # type: ignore[arg-type]
    )
    return SignalClient(socket)


async def ours(
    patient_base: str, practitioner_base: str, seats: list[Seat], practitioner_cookie: str, *, parallel: int = 16
) -> Pairs:
    """One admitted patient–practitioner pair per seat; patients on one server, practitioners on another or the same."""
    dashboard = await open_signal(practitioner_base, "/vc/ws/practice", practitioner_cookie)
    await dashboard.hello()
    drain = asyncio.create_task(discard(dashboard.socket))

    async def pair(i: int) -> Pair:
        seat = seats[i]
        path = f"/vc/ws/room/{seat.appointment}"
        patient = await open_signal(patient_base, path, seat.cookie)
        welcome = await patient.hello()
        assert welcome["type"] == "welcome" and welcome["state"] == "waiting", welcome
        doctor = await open_signal(practitioner_base, path, practitioner_cookie)
        doctor_welcome = await doctor.hello()
        await dashboard.send({"type": "admit", "appointment": seat.appointment, "participant": seat.participant})
        await patient.receive("admitted", timeout=30)
        await doctor.receive("peer-joined", timeout=30)
        return Pair(patient.socket, doctor.socket, seat.participant, doctor_welcome["you"]["id"])

    items = await _limited(len(seats), pair, parallel)
    return Pairs("ours", items, [dashboard.socket], [drain])


async def peerjs_client(ws_base: str, peer_id: str, *, open_timeout: float = 60.0) -> ClientConnection:
    token = secrets.token_hex(8)
    url = f"{ws_base}/peerjs?key=peerjs&id={peer_id}&token={token}"
    socket = await connect(url, **connect_options(open_timeout=open_timeout))  # type: ignore[arg-type]
    opened = json.loads(await socket.recv())
    if opened.get("type") != "OPEN":
        raise RuntimeError(f"PeerJS refused {peer_id}: {opened}")
    return socket


async def peerjs(ws_base: str, count: int, *, parallel: int = 16) -> Pairs:
    tag = secrets.token_hex(3)

    async def pair(i: int) -> Pair:
        a_id, b_id = f"a{tag}{i:05d}", f"b{tag}{i:05d}"
        a = await peerjs_client(ws_base, a_id)
        b = await peerjs_client(ws_base, b_id)
        return Pair(a, b, a_id, b_id)

    return Pairs("peerjs", await _limited(count, pair, parallel))
