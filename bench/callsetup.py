"""Benchmark 5: call set-up, from "admit" to an open data channel on both sides.

Two aiortc peers (the probe's and the tests' WebRTC stack) go through our signalling: the
practitioner's dashboard admits the waiting patient, the patient offers, the practitioner
answers, ICE and DTLS run over loopback. The floor is the same two peers handing offer and
answer to each other directly in one process: what remains is WebRTC itself.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiortc import RTCPeerConnection

from bench import seed
from bench.context import Context
from bench.peers import open_signal
from bench.stats import summary_ms
from tests.support.signal_client import Peer


async def _through_server(ws_base: str, seat: seed.Seat, cookie: str) -> float:
    path = f"/vc/ws/room/{seat.appointment}"
    dashboard = await open_signal(ws_base, "/vc/ws/practice", cookie)
    await dashboard.hello()
    patient = await open_signal(ws_base, path, seat.cookie)
    await patient.hello()
    doctor = await open_signal(ws_base, path, cookie)
    doctor_id = (await doctor.hello())["you"]["id"]
    calling, answering = Peer(patient), Peer(doctor)
    try:
        started = time.perf_counter()
        await dashboard.send({"type": "admit", "appointment": seat.appointment, "participant": seat.participant})
        await patient.receive("admitted", timeout=20)
        await asyncio.gather(calling.call(doctor_id), answering.answer_call())
        await asyncio.gather(calling.wait_open(), answering.wait_open())
        return time.perf_counter() - started
    finally:
        await calling.close()
        await answering.close()
        for client in (patient, doctor, dashboard):
            await client.close()


async def _direct() -> float:
    """The floor: offer and answer handed over in memory, no server."""
    first, second = RTCPeerConnection(), RTCPeerConnection()
    opened = [asyncio.Event(), asyncio.Event()]

    @second.on("datachannel")
    def on_channel(channel: Any) -> None:
        if channel.readyState == "open":
            opened[1].set()
        channel.on("open", opened[1].set)

    try:
        started = time.perf_counter()
        channel = first.createDataChannel("chat")
        channel.on("open", opened[0].set)
        await first.setLocalDescription(await first.createOffer())
        await second.setRemoteDescription(first.localDescription)
        await second.setLocalDescription(await second.createAnswer())
        await first.setRemoteDescription(second.localDescription)
        await asyncio.wait_for(asyncio.gather(opened[0].wait(), opened[1].wait()), 20)
        return time.perf_counter() - started
    finally:
        await first.close()
        await second.close()


async def call_setup(ctx: Context, worker_class: str, signalling: str = "flask-sock") -> dict[str, Any]:
    """``signalling``: the app's own sockets ("flask-sock"), or ``flask vc signalling-server`` ("asyncio")."""
    server = ctx.ours(worker_class, signalling=signalling)
    doctor = ctx.practitioner()
    cookie = seed.practitioner_cookie(doctor)
    try:
        via: list[float] = []
        floor: list[float] = []
        for seat in ctx.seats(ctx.profile.calls, [doctor]):
            via.append(await _through_server(server.ws_url, seat, cookie))
            floor.append(await _direct())
    finally:
        ctx.stop(server)
    return {"worker": server.label, "signalled": summary_ms(via), "direct": summary_ms(floor)}
