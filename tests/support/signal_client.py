"""A client of our signalling protocol (asyncio, the ``websockets`` library), and an aiortc peer on top."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import requests
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from websockets.asyncio.client import ClientConnection, connect

from tests.support.hosts import TEST_SECRET


def session_cookie(data: dict[str, Any], name: str = "vc_session") -> str:
    """A session cookie signed with the test app's secret, as the app itself would write it."""
    from flask import Flask

    from tests.support.web import cookie_serializer

    app = Flask("cookie")
    app.secret_key = TEST_SECRET
    value = cookie_serializer(app).dumps(data)
    return f"{name}={value}"


def practitioner_cookie(person: Any) -> str:
    """The Cookie header of ``person`` signed in just now, as after an OIDC sign-in."""
    now = time.time()
    return session_cookie(
        {"vc_user": {"pid": person.public_id, "role": person.role.value, "iat": now, "seen": now, "via": "oidc"}}
    )


def check_in(base_url: str, invitation_id: str, code: str, name: str = "Frau Test", *, consent: bool = True) -> str:
    """The patient's HTTP part: open the link, send code, name and consent; returns the Cookie header."""
    session = requests.Session()
    page = session.get(f"{base_url}/vc/join/{invitation_id}", timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = session.post(
        f"{base_url}/vc/join/{invitation_id}",
        data={"csrf_token": token, "code": code, "name": name, "consent": "yes" if consent else ""},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text[:500]
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


class SignalClient:
    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.inbox: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, ws_base: str, path: str, cookie: str | None, *, origin: str | None = None) -> SignalClient:
        headers = {"Cookie": cookie} if cookie else {}
        socket = await connect(
            ws_base + path,
            additional_headers=headers,
            origin=origin or ws_base.replace("ws://", "http://"),
            open_timeout=10,
            max_size=2**20,
        )
        return cls(socket)

    async def send(self, body: dict[str, Any] | str) -> None:
        await self.socket.send(body if isinstance(body, str) else json.dumps(body))

    async def receive(self, kind: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """The next message (of ``kind``); other messages are kept for later calls."""
        for index, message in enumerate(self.inbox):
            if kind is None or message.get("type") == kind:
                return self.inbox.pop(index)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"no {kind or 'message'} within {timeout}s; got {self.inbox}")
            raw = await asyncio.wait_for(self.socket.recv(), remaining)
            message = json.loads(raw)
            if kind is None or message.get("type") == kind:
                return message
            self.inbox.append(message)

    async def hello(self, resume: str | None = None) -> dict[str, Any]:
        await self.send({"type": "hello", **({"resume": resume} if resume else {})})
        return await self.receive()

    async def close(self) -> None:
        await self.socket.close()


class Peer:
    """An aiortc peer that connects through our signalling and opens a data channel."""

    def __init__(self, signal: SignalClient, ice_servers: list[dict[str, Any]] | None = None, *, relay: bool = False):
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in (ice_servers or [])
        ]
        config = RTCConfiguration(
            iceServers=servers,
            iceTransportPolicy=RTCIceTransportPolicy.RELAY if relay else RTCIceTransportPolicy.ALL,
        )
        self.pc = RTCPeerConnection(configuration=config)
        self.signal = signal
        self.received: asyncio.Queue[str] = asyncio.Queue()
        self.channel_open = asyncio.Event()
        self.channel: Any = None

        @self.pc.on("datachannel")
        def on_channel(channel: Any) -> None:
            self._attach(channel)

    def _attach(self, channel: Any) -> None:
        self.channel = channel

        @channel.on("message")
        def on_message(message: str) -> None:
            self.received.put_nowait(message)

        if channel.readyState == "open":
            self.channel_open.set()
        channel.on("open", self.channel_open.set)

    async def call(self, peer_id: str) -> None:
        self._attach(self.pc.createDataChannel("chat"))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.signal.send({"type": "offer", "to": peer_id, "sdp": self.pc.localDescription.sdp})
        answer = await self.signal.receive("answer", timeout=20)
        assert answer["from"] == peer_id
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    async def answer_call(self) -> str:
        offer = await self.signal.receive("offer", timeout=20)
        await self.pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.signal.send({"type": "answer", "to": offer["from"], "sdp": self.pc.localDescription.sdp})
        return offer["from"]

    async def wait_open(self, timeout: float = 20.0) -> None:
        await asyncio.wait_for(self.channel_open.wait(), timeout)

    def path(self) -> str:
        """ "relay" when the selected candidate pair uses a TURN relay, else "direct"."""
        transport = self.pc.sctp.transport.transport  # DTLS → ICE transport
        pair = transport._connection._nominated.get(1)  # aioice: component 1
        if pair is None:
            return "unknown"
        return "relay" if "relay" in {pair.local_candidate.type, pair.remote_candidate.type} else "direct"

    async def close(self) -> None:
        await self.pc.close()
