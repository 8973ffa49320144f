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

    async def hello(self, resume: str | None = None, **extra: Any) -> dict[str, Any]:
        await self.send({"type": "hello", **({"resume": resume} if resume else {}), **extra})
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


async def consultation(ws_base: str, appointment: str, patient_cookie: str, doctor_cookie: str) -> dict[str, Any]:
    """A whole consultation over the sockets: the patient waits, the practitioner admits from the
    dashboard, a data-channel call carries a line each way, the practitioner ends it for everyone.
    Returns what the test may want to look at: the patient's ``welcome`` and the dashboard's ``arrived``."""
    room = f"/vc/ws/room/{appointment}"
    dashboard = await SignalClient.open(ws_base, "/vc/ws/practice", doctor_cookie)
    queue = await dashboard.hello()
    assert queue["type"] == "queue" and queue["rooms"] == [], queue
    patient = await SignalClient.open(ws_base, room, patient_cookie)
    welcome = await patient.hello()
    assert welcome["type"] == "welcome" and welcome["state"] == "waiting", welcome
    arrived = await dashboard.receive("queue-update")
    assert arrived["op"] == "arrived", arrived
    patient_id = arrived["member"]["id"]
    doctor = await SignalClient.open(ws_base, room, doctor_cookie)
    doctor_welcome = await doctor.hello()
    assert doctor_welcome["state"] == "admitted" and doctor_welcome["peers"] == [], doctor_welcome
    doctor_id = doctor_welcome["you"]["id"]
    await dashboard.send({"type": "admit", "appointment": appointment, "participant": patient_id})
    assert [peer["id"] for peer in (await patient.receive("admitted"))["peers"]] == [doctor_id]
    assert (await doctor.receive("peer-joined"))["peer"]["id"] == patient_id
    patient_peer, doctor_peer = Peer(patient), Peer(doctor)
    try:
        await asyncio.gather(patient_peer.call(doctor_id), doctor_peer.answer_call())
        await asyncio.gather(patient_peer.wait_open(), doctor_peer.wait_open())
        patient_peer.channel.send("Guten Tag")
        assert await asyncio.wait_for(doctor_peer.received.get(), 10) == "Guten Tag"
        doctor_peer.channel.send("Hallo")
        assert await asyncio.wait_for(patient_peer.received.get(), 10) == "Hallo"
    finally:
        await patient_peer.close()
        await doctor_peer.close()
    await dashboard.send({"type": "end", "appointment": appointment})
    await patient.receive("ended")
    await doctor.receive("ended")
    for client in (patient, doctor, dashboard):
        await client.close()
    return {"welcome": welcome, "arrived": arrived}


def with_csrf(cookie: str) -> tuple[str, str]:
    """``cookie`` (a Cookie header) with a CSRF secret in our cookie, and the token that matches it,
    as a page of ours would have it."""
    from flask import Flask
    from itsdangerous import URLSafeSerializer

    from tests.support.web import cookie_serializer
    from vc_plugin.web.csrf import KEY, SALT

    app = Flask("cookie")
    app.secret_key = TEST_SECRET
    serializer = cookie_serializer(app)
    pairs = dict(part.strip().split("=", 1) for part in cookie.split(";") if "=" in part)
    data = dict(serializer.loads(pairs["vc_session"])) if "vc_session" in pairs else {}
    secret = data.setdefault(KEY, "c" * 40)
    pairs["vc_session"] = serializer.dumps(data)
    token = URLSafeSerializer(TEST_SECRET, salt=SALT).dumps(secret)
    return "; ".join(f"{name}={value}" for name, value in pairs.items()), str(token)


def ask_ticket(base_url: str, path: str, cookie: str | None, *, body: Any = None) -> requests.Response:
    """What a page of ours asks before it opens the socket at ``path`` (``body``: something else)."""
    cookie_header, token = with_csrf(cookie or "")
    return requests.post(
        f"{base_url}/vc/socket-ticket",
        json={"socket": path} if body is None else body,
        headers={"Cookie": cookie_header, "X-CSRFToken": token},
        timeout=10,
    )


def socket_ticket(base_url: str, path: str, cookie: str | None) -> str:
    response = ask_ticket(base_url, path, cookie)
    assert response.status_code == 200, response.text[:300]
    return str(response.json()["ticket"])
