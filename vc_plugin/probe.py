"""The operator probe: two aiortc peers call each other through a running deployment.

``flask vc probe`` asks the deployment for a short-lived probe room (authorised by the
operator token), connects two WebSockets, lets one peer offer to the other, and waits for a
WebRTC data channel to open and carry a message. It prints the set-up time and the path
(direct or relayed) and exits non-zero when no call could be set up. The probe room lives
only in presence, for at most two minutes, and no database row is written.

Needs the ``probe`` extra: ``pip install vc_plugin[probe]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    setup_seconds: float | None
    path: str | None
    reason: str | None = None

    def line(self) -> str:
        if self.ok:
            return f"ok: call set up in {self.setup_seconds:.2f} s, path {self.path}"
        return f"failed: {self.reason}"


def _ws_base(url: str) -> str:
    parts = urlsplit(url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}"


async def run_probe(base_url: str, token: str, *, relay: bool = False, timeout: float = 30.0) -> ProbeResult:
    try:
        from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
        from aiortc.rtcconfiguration import RTCIceTransportPolicy
    except ImportError as missing:
        return ProbeResult(False, None, None, f"install the probe extra (pip install vc_plugin[probe]): {missing}")
    base = base_url.rstrip("/")
    grant, refusal = await _request_room(base, token, relay)
    if grant is None:
        return ProbeResult(False, None, None, refusal)
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in grant["iceServers"]
    ]
    policy = RTCIceTransportPolicy.RELAY if relay else RTCIceTransportPolicy.ALL
    peers = [RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)) for _ in range(2)]
    sockets: list[Any] = []
    started = time.monotonic()
    try:
        sockets = await _connect(base, grant, timeout)
        await _call(peers, sockets, timeout)
        return ProbeResult(True, time.monotonic() - started, _path(peers[0]))
    except (TimeoutError, OSError) as error:
        return ProbeResult(False, None, None, f"no call within {timeout:.0f} s ({type(error).__name__})")
    except Exception as error:  # noqa: BLE001 - the probe reports, it does not crash
        return ProbeResult(False, None, None, f"{type(error).__name__}: {error}")
    finally:
        for socket in sockets:
            with contextlib.suppress(Exception):  # the socket may be gone already
                await socket.send(json.dumps({"type": "leave"}))
                await socket.close()
        for peer in peers:
            await peer.close()


async def _request_room(base: str, token: str, relay: bool) -> tuple[dict[str, Any] | None, str]:
    import requests

    try:
        response = await asyncio.to_thread(
            requests.post,
            f"{base}/vc/api/v1/probe",
            json={"relay": relay},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    except requests.RequestException as error:
        return None, f"deployment unreachable ({type(error).__name__})"
    if response.status_code != 201:
        return None, f"probe room refused: HTTP {response.status_code}"
    return response.json(), ""


async def _connect(base: str, grant: dict[str, Any], timeout: float) -> list[Any]:
    from websockets.asyncio.client import connect

    origin = f"{urlsplit(base).scheme}://{urlsplit(base).netloc}"
    sockets = []
    for member_token in grant["tokens"]:
        socket = await connect(
            _ws_base(base) + grant["socket"],
            additional_headers={"Authorization": f"Bearer {member_token}"},
            origin=origin,
            open_timeout=10,
        )
        sockets.append(socket)
        await socket.send(json.dumps({"type": "hello"}))
        socket.welcome = await _next(socket, "welcome", timeout)
    return sockets


async def _call(peers: list[Any], sockets: list[Any], timeout: float) -> None:
    """The newcomer (the second peer) offers to the first; done when a message crossed the data channel."""
    from aiortc import RTCSessionDescription

    b_id, a_id = (socket.welcome["you"]["id"] for socket in sockets)
    sockets = [sockets[1], sockets[0]]
    opened = asyncio.Event()
    arrived: asyncio.Queue[str] = asyncio.Queue()
    channel = peers[0].createDataChannel("probe")
    channel.on("open", opened.set)

    @peers[1].on("datachannel")
    def on_channel(incoming: Any) -> None:
        incoming.on("message", arrived.put_nowait)

    await peers[0].setLocalDescription(await peers[0].createOffer())
    await sockets[0].send(json.dumps({"type": "offer", "to": b_id, "sdp": peers[0].localDescription.sdp}))
    offer = await _next(sockets[1], "offer", timeout)
    await peers[1].setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
    await peers[1].setLocalDescription(await peers[1].createAnswer())
    await sockets[1].send(json.dumps({"type": "answer", "to": a_id, "sdp": peers[1].localDescription.sdp}))
    answer = await _next(sockets[0], "answer", timeout)
    await peers[0].setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    await asyncio.wait_for(opened.wait(), timeout)
    channel.send("probe")
    await asyncio.wait_for(arrived.get(), timeout)


async def _next(socket: Any, kind: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        raw = await asyncio.wait_for(socket.recv(), max(0.1, deadline - time.monotonic()))
        message = json.loads(raw)
        if message.get("type") == kind:
            return message
        if message.get("type") == "error":
            raise RuntimeError(f"server error {message.get('code')}")


def _path(peer: Any) -> str:
    try:
        pair = peer.sctp.transport.transport._connection._nominated.get(1)
    except AttributeError:
        return "unknown"
    if pair is None:
        return "unknown"
    return "relayed" if "relay" in {pair.local_candidate.type, pair.remote_candidate.type} else "direct"
