"""Hostile input on the sockets: each is refused with a protocol error or a closed socket,
never a traceback, and other rooms carry on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import _empty_postgres
from tests.support.hosts import make_host_app
from tests.support.live import LiveServer
from tests.support.people import make_people
from tests.support.planning import plan_soon
from tests.support.signal_client import SignalClient, check_in, practitioner_cookie, session_cookie

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def arena(postgres_schema, tmp_path_factory, transport):
    """One live server with Redis; two appointments (A and B), each with a checked-in patient."""
    from redis import Redis

    from tests.conftest import REDIS_URL

    Redis.from_url(REDIS_URL).flushdb()
    _empty_postgres(postgres_schema)
    config = {
        "VC_REDIS_URL": REDIS_URL,
        "VC_WS_MAX_MESSAGE_BYTES": 65536,
        "VC_WS_MESSAGES_PER_SECOND": 20,
        "VC_WS_BURST": 40,
    }
    server = LiveServer(postgres_schema, config, tmp_path_factory.mktemp("arena"), signalling=transport).start()
    host = make_host_app(postgres_schema, VC_REDIS_URL=REDIS_URL, VC_PUBLIC_URL=server.url + "/")
    with host.app.app_context():
        people = make_people(host.state)
        rooms = {}
        for name in ("A", "B"):
            rooms[name] = plan_soon(host, people, kind="group", participants=3)
        yield server, host, people, rooms
    host.close()
    server.stop()


async def patient(server, planned, index: int, name: str) -> SignalClient:
    issued = planned.invitations[index]
    cookie = check_in(server.url, issued.invitation.public_id, issued.code, name=name)
    client = await SignalClient.open(server.ws_url, f"/vc/ws/room/{planned.appointment.public_id}", cookie)
    client.welcome = await client.hello()  # type: ignore[attr-defined]
    return client


async def admitted_pair(server, people, planned, index: int):
    """A patient admitted into a room with the practitioner in it."""
    appointment = planned.appointment.public_id
    guest = await patient(server, planned, index, f"Gast {index}")
    guest_id = guest.welcome["you"]["id"]
    doctor = await SignalClient.open(server.ws_url, f"/vc/ws/room/{appointment}", practitioner_cookie(people.doc))
    doctor_welcome = await doctor.hello()
    dashboard = await SignalClient.open(server.ws_url, "/vc/ws/practice", practitioner_cookie(people.doc))
    await dashboard.hello()
    await dashboard.send({"type": "admit", "appointment": appointment, "participant": guest_id})
    await dashboard.close()
    await guest.receive("admitted")
    await doctor.receive("peer-joined")
    return guest, doctor, guest_id, doctor_welcome["you"]["id"]


async def assert_error(client: SignalClient, payload, code: str) -> None:
    await client.send(payload)
    error = await client.receive("error")
    assert error["code"] == code, error
    assert "Traceback" not in json.dumps(error)


def run(coroutine):
    return asyncio.run(coroutine)


def test_malformed_and_unknown_messages(arena):
    server, _, _, rooms = arena

    async def scenario():
        client = await patient(server, rooms["A"], 0, "Prüferin")
        await assert_error(client, "{not json", "malformed")
        await assert_error(client, "[1, 2, 3]", "malformed")
        await assert_error(client, {"type": "explode"}, "unknown_type")
        await assert_error(client, {"no": "type"}, "unknown_type")
        await assert_error(client, {"type": "offer", "to": "x"}, "invalid")
        await assert_error(client, {"type": "offer", "to": "../../etc", "sdp": "v=0"}, "invalid")
        await assert_error(client, {"type": "notice", "appointment": "a", "text": "x" * 600}, "invalid")
        await assert_error(client, {"type": "ping", "t": 1, "extra": True}, "invalid")
        await assert_error(client, '{"type": "ping", "t": ' + "[" * 5000 + "]" * 5000 + "}", "malformed")
        await client.send({"type": "ping", "t": 5})
        assert (await client.receive("pong"))["t"] == 5  # still alive
        await client.close()

    run(scenario())


def test_oversized_messages_close_the_socket(arena):
    server, _, _, rooms = arena

    async def scenario():
        client = await patient(server, rooms["A"], 0, "Groß")
        await client.send({"type": "offer", "to": "abc", "sdp": "a" * 200_000})
        with pytest.raises((ConnectionClosed, TimeoutError)):
            while True:
                await client.receive(timeout=5)
        assert client.socket.close_code in {1009, 1008}

    run(scenario())


def test_floods_are_limited_then_cut_off(arena):
    server, _, _, rooms = arena

    async def scenario():
        client = await patient(server, rooms["A"], 1, "Flut")
        for _ in range(400):
            try:
                await client.send({"type": "ping"})
            except ConnectionClosed:
                break
        codes = []
        with pytest.raises((ConnectionClosed, TimeoutError)):
            while True:
                message = await client.receive(timeout=5)
                codes.append(message.get("code") or message["type"])
        assert "rate_limited" in codes
        assert client.socket.close_code == 1008

    run(scenario())


def test_signalling_only_between_admitted_participants_of_the_same_room(arena):
    server, _, people, rooms = arena

    async def scenario():
        waiting = await patient(server, rooms["B"], 1, "Wartend")
        await assert_error(waiting, {"type": "offer", "to": "someone", "sdp": "v=0"}, "not_admitted")
        guest, doctor, guest_id, doctor_id = await admitted_pair(server, people, rooms["B"], 0)
        # Addressing a participant of another room, or an unknown one, is refused.
        other = await patient(server, rooms["A"], 2, "Andere")
        await assert_error(guest, {"type": "offer", "to": other.welcome["you"]["id"], "sdp": "v=0"}, "unknown_peer")
        await assert_error(guest, {"type": "offer", "to": "not-in-this-room", "sdp": "v=0"}, "unknown_peer")
        with pytest.raises(TimeoutError):
            await other.receive("offer", timeout=1)
        # A patient cannot admit or end.
        await assert_error(
            guest,
            {"type": "admit", "appointment": rooms["B"].appointment.public_id, "participant": guest_id},
            "not_allowed",
        )
        await assert_error(guest, {"type": "end", "appointment": rooms["B"].appointment.public_id}, "not_allowed")
        # Relay without consent yields nothing; with consent but no TURN configured, a clear error.
        await assert_error(guest, {"type": "relay-request", "consent": False}, "relay_consent_required")
        await assert_error(guest, {"type": "relay-request", "consent": True}, "relay_unavailable")
        # Between the two admitted ones it works, both ways, candidates included.
        await guest.send(
            {
                "type": "candidate",
                "to": doctor_id,
                "candidate": {
                    "candidate": "candidate:1 1 udp 2122260223 192.0.2.1 5000 typ host",
                    "sdpMid": "0",
                    "sdpMLineIndex": 0,
                },
            }
        )
        relayed = await doctor.receive("candidate")
        assert relayed["from"] == guest_id and "to" not in relayed
        await doctor.send({"type": "ice-restart", "to": guest_id})
        assert (await guest.receive("ice-restart"))["from"] == doctor_id
        for client in (waiting, guest, doctor, other):
            await client.close()

    run(scenario())


def test_staff_never_join_calls(arena):
    server, _, people, rooms = arena

    async def scenario():
        appointment = rooms["A"].appointment.public_id
        with pytest.raises(InvalidStatus) as refused:
            await SignalClient.open(server.ws_url, f"/vc/ws/room/{appointment}", practitioner_cookie(people.desk))
        assert refused.value.response.status_code == 403
        staff = await SignalClient.open(server.ws_url, "/vc/ws/practice", practitioner_cookie(people.desk))
        await staff.hello()
        await assert_error(staff, {"type": "offer", "to": "x", "sdp": "v=0"}, "not_allowed")
        await staff.close()

    run(scenario())


@pytest.mark.parametrize(
    "case", ["no cookie", "foreign secret", "expired pass", "other room", "foreign origin", "no origin", "colleague"]
)
def test_handshakes_that_never_become_sockets(arena, case):
    server, _host, people, rooms = arena
    appointment = rooms["A"].appointment.public_id
    path = f"/vc/ws/room/{appointment}"
    issued = rooms["B"].invitations[2]
    valid_pass = {
        "invitation": issued.invitation.public_id,
        "appointment": rooms["B"].appointment.public_id,
        "practitioner": people.doc.public_id,
        "participant": "p1",
        "name": "X",
        "kind": "patient",
        "language": "de",
        "expires_at": time.time() + 3600,
    }
    origin = None
    cookie: str | None = None
    expected = 401
    if case == "foreign secret":
        from flask import Flask

        from tests.support.web import cookie_serializer

        app = Flask("evil")
        app.secret_key = "not-the-secret"
        forged = cookie_serializer(app).dumps({"vc_pass": {**valid_pass, "appointment": appointment}})
        cookie = f"vc_session={forged}"
    elif case == "expired pass":
        cookie = session_cookie({"vc_pass": {**valid_pass, "appointment": appointment, "expires_at": time.time() - 5}})
    elif case == "other room":
        cookie = session_cookie({"vc_pass": valid_pass})  # a pass for B, knocking at A
    elif case == "foreign origin":
        cookie, origin, expected = practitioner_cookie(people.doc), "https://evil.example", 403
    elif case == "no origin":
        expected = 403
    elif case == "colleague":
        cookie, expected = practitioner_cookie(people.colleague), 404

    async def scenario():
        if case == "no origin":
            from websockets.asyncio.client import connect

            with pytest.raises(InvalidStatus) as refused:
                await connect(server.ws_url + path, origin=None, open_timeout=5)
            return refused.value.response.status_code
        with pytest.raises(InvalidStatus) as refused:
            await SignalClient.open(server.ws_url, path, cookie, origin=origin)
        return refused.value.response.status_code

    assert run(scenario()) == expected


def test_reconnect_storm_leaves_one_member_and_other_rooms_unaffected(arena):
    server, _, people, rooms = arena

    async def scenario():
        bystander = await patient(server, rooms["A"], 1, "Unbeteiligt")
        issued = rooms["B"].invitations[2]
        cookie = check_in(server.url, issued.invitation.public_id, issued.code, name="Sturm")
        path = f"/vc/ws/room/{rooms['B'].appointment.public_id}"
        resume = None
        for _ in range(30):
            client = await SignalClient.open(server.ws_url, path, cookie)
            welcome = await client.hello(resume=resume)
            resume = welcome["resume"]
            await client.socket.close()
        clients = await asyncio.gather(*(SignalClient.open(server.ws_url, path, cookie) for _ in range(10)))
        for client in clients:
            await client.send({"type": "hello"})
        await asyncio.sleep(1)
        dashboard = await SignalClient.open(server.ws_url, "/vc/ws/practice", practitioner_cookie(people.doc))
        queue = await dashboard.hello()
        [room] = [r for r in queue["rooms"] if r["appointment"] == rooms["B"].appointment.public_id]
        assert [m["name"] for m in room["members"]].count("Sturm") == 1
        await bystander.send({"type": "ping", "t": 1})
        assert (await bystander.receive("pong"))["t"] == 1
        for client in (*clients, dashboard, bystander):
            with contextlib.suppress(ConnectionClosed):
                await client.close()

    run(scenario())
    log = server.output
    assert "Traceback" not in log, log[-3000:]
    assert (
        "Frau" not in log and "Sturm" not in log and "127.0.0.1" not in log.replace("127.0.0.1:" + str(server.port), "")
    )
