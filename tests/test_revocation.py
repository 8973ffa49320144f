"""What ends, ends at once: revocation across processes, one person per invitation, ids-only cookies.

Two app processes share Redis and PostgreSQL; every revoking action runs in a third (the
host app of the test). The sockets it concerns live on the other processes, and each test
asserts the negative: closed with the documented reason within a second, nothing relayed
after the action returned, no TURN credentials, no presence left.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from redis import Redis
from websockets.exceptions import ConnectionClosed

from tests.support.hosts import TEST_SECRET, make_host_app
from tests.support.live import running
from tests.support.people import make_people
from tests.support.planning import plan_soon
from tests.support.signal_client import SignalClient, check_in, practitioner_cookie
from vc_plugin.core.audit import Actor, ActorKind
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import SendIn
from vc_plugin.domain.revocation import Claim, appointment_claim, member_scope
from vc_plugin.web.identity import PASS_KEY, end_all_sessions

pytestmark = pytest.mark.slow

#: The guarantee of docs/signaling.md ("Revocation"): the final message within one second.
WITHIN = 1.0
TURN = {"VC_TURN_URLS": ["turn:127.0.0.1:3478?transport=udp"], "VC_TURN_SECRET": "s" * 32}


@pytest.fixture(scope="module")
def servers(postgres_schema, redis_address, tmp_path_factory, transport):
    config = {"VC_REDIS_URL": redis_address, **TURN}
    with running(
        postgres_schema, config, tmp_path_factory.mktemp("revocation"), transport=transport, names=("first", "second")
    ) as pair:
        yield pair


@pytest.fixture
def world(servers, pg_url, redis_url):
    first, second = servers
    host = make_host_app(pg_url, VC_PUBLIC_URL=first.url + "/", VC_REDIS_URL=redis_url, **TURN)
    redis = Redis.from_url(redis_url)
    with host.app.app_context():
        yield host, make_people(host.state), first, second, redis
    redis.close()
    host.close()


@dataclass
class Call:
    """A running group call: two patients on the second process, the practitioner on the first."""

    appointment: str
    invitations: list[Any]
    cookies: list[str]
    patients: list[SignalClient]
    patient_ids: list[str]
    doctor: SignalClient
    doctor_id: str
    dashboard: SignalClient

    async def close(self) -> None:
        for client in (*self.patients, self.doctor, self.dashboard):
            await client.close()


async def running_call(host, people, first, second) -> Call:
    planned = plan_soon(host, people, kind="group", participants=2)
    appointment = planned.appointment.public_id
    cookies = [
        check_in(second.url, i.invitation.public_id, i.code, name=f"Person {n}")
        for n, i in enumerate(planned.invitations)
    ]
    doctor_cookie = practitioner_cookie(people.doc)
    dashboard = await SignalClient.open(first.ws_url, "/vc/ws/practice", doctor_cookie)
    await dashboard.hello()
    doctor = await SignalClient.open(first.ws_url, f"/vc/ws/room/{appointment}", doctor_cookie)
    doctor_id = (await doctor.hello())["you"]["id"]
    patients, patient_ids = [], []
    for cookie in cookies:
        patient = await SignalClient.open(second.ws_url, f"/vc/ws/room/{appointment}", cookie)
        patient_id = (await patient.hello())["you"]["id"]
        await dashboard.send({"type": "admit", "appointment": appointment, "participant": patient_id})
        await patient.receive("admitted")
        patients.append(patient)
        patient_ids.append(patient_id)
    call = Call(appointment, planned.invitations, cookies, patients, patient_ids, doctor, doctor_id, dashboard)
    # The positive control: before the revocation, offers flow and the relay is handed out.
    await relay_flows(call, 0)
    await call.patients[0].send({"type": "relay-request", "consent": True})
    assert any("credential" in s for s in (await call.patients[0].receive("relay"))["iceServers"])
    return call


async def relay_flows(call: Call, sender: int) -> None:
    await call.patients[sender].send({"type": "offer", "to": call.doctor_id, "sdp": f"marker {sender}"})
    offer = await call.doctor.receive("offer")
    assert offer["from"] == call.patient_ids[sender] and offer["sdp"] == f"marker {sender}"


async def revoked_within(client: SignalClient, reason: str) -> list[dict[str, Any]]:
    """The final message arrives within a second and the socket closes with 4001; returns what came before."""
    before: list[dict[str, Any]] = list(client.inbox)
    client.inbox.clear()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN
    while True:
        message = json.loads(await asyncio.wait_for(client.socket.recv(), max(0.0, deadline - loop.time())))
        if message["type"] == "revoked":
            assert message["reason"] == reason
            break
        before.append(message)
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(client.socket.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001 and closed.value.rcvd.reason == "revoked"
    return before


async def until(condition: Any, seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def no_offer_from(messages: list[dict[str, Any]], sender: str) -> None:
    assert [m for m in messages if m.get("type") == "offer" and m.get("from") == sender] == []


def room_keys(redis: Redis, appointment: str) -> list[bytes]:
    return list(redis.scan_iter(match=f"vc:room:{appointment}:*"))


@pytest.mark.parametrize("action", ["cancel", "delete"])
def test_cancel_or_delete_closes_every_socket_of_the_appointment_on_every_process(world, action):
    host, people, first, second, redis = world

    async def scenario() -> None:
        call = await running_call(host, people, first, second)
        assert room_keys(redis, call.appointment)
        getattr(host.state.appointments, action)(Principal.of(people.doc), call.appointment)
        # Sent after the action returned, before the socket heard of it: never relayed.
        await call.patients[0].send({"type": "offer", "to": call.doctor_id, "sdp": "too late"})
        await call.patients[1].send({"type": "relay-request", "consent": True})
        reason = "cancelled" if action == "cancel" else "deleted"
        first_patient = await revoked_within(call.patients[0], reason)
        second_patient = await revoked_within(call.patients[1], reason)
        doctor = await revoked_within(call.doctor, reason)
        no_offer_from(doctor, call.patient_ids[0])
        assert [m for m in second_patient + first_patient if m["type"] == "relay"] == []
        assert room_keys(redis, call.appointment) == []
        assert [redis.get(f"vc:checkin:{i.invitation.public_id}") for i in call.invitations] == [None, None]
        # The dashboard stays open (the practitioner still works) and the old pass opens nothing.
        await call.dashboard.send({"type": "ping", "t": 1})
        assert (await call.dashboard.receive("pong"))["t"] == 1
        room_page = f"{second.url}/vc/join/{call.invitations[0].invitation.public_id}/room"
        refused = requests.get(room_page, headers={"Cookie": call.cookies[0]}, allow_redirects=False, timeout=10)
        assert refused.status_code == 302 and refused.headers["Location"].endswith(
            call.invitations[0].invitation.public_id
        )
        with pytest.raises(Exception, match="410"):
            await SignalClient.open(second.ws_url, f"/vc/ws/room/{call.appointment}", call.cookies[0])
        await call.close()

    asyncio.run(scenario())


def test_ending_closes_the_room_everywhere_and_relays_nothing_after(world):
    host, people, first, second, redis = world

    async def scenario() -> None:
        call = await running_call(host, people, first, second)
        await call.dashboard.send({"type": "end", "appointment": call.appointment})
        for client in (*call.patients, call.doctor):
            await client.receive("ended")
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(client.socket.recv(), 5)
        # The tombstone outlives the sockets: a client of the ended room relays nothing any more.
        await until(lambda: host.state.bus.revoked_reason([(f"a:{call.appointment}", -1.0)]) == "ended")
        # The room and then the check-ins go right after the tombstone (Revoker.appointment), in the
        # same request, which this test cannot wait for: wait for both, each step after the one before.
        await until(lambda: room_keys(redis, call.appointment) == [])
        await until(lambda: [redis.get(f"vc:checkin:{i.invitation.public_id}") for i in call.invitations] == [None] * 2)
        await call.close()

    asyncio.run(scenario())


def test_a_new_code_revokes_every_pass_of_the_old_one(world):
    host, people, first, second, redis = world

    async def scenario() -> None:
        call = await running_call(host, people, first, second)
        invitation = call.invitations[0].invitation.public_id
        renewed = host.state.appointments.resend(
            Principal.of(people.doc), invitation, SendIn(email="patient@example.org")
        )
        await call.patients[0].send({"type": "offer", "to": call.doctor_id, "sdp": "old code"})
        await call.patients[0].send({"type": "relay-request", "consent": True})
        before = await revoked_within(call.patients[0], "new_code")
        assert [m for m in before if m["type"] == "relay"] == []
        # The others hear that this person left, however fast the revoked socket closed itself.
        assert (await call.doctor.receive("peer-left"))["peer"] == call.patient_ids[0]
        left = await call.dashboard.receive("queue-update")
        while left["op"] != "left":
            left = await call.dashboard.receive("queue-update")
        assert left["member_id"] == call.patient_ids[0]
        # The other patient's offer is the marker: an earlier offer of the revoked one would come first.
        await relay_flows(call, 1)
        no_offer_from(call.doctor.inbox, call.patient_ids[0])
        assert redis.hget(f"vc:room:{call.appointment}:members", call.patient_ids[0]) is None
        # The old pass opens no socket and no room page; the new code checks in as one member.
        with pytest.raises(Exception, match="410"):
            await SignalClient.open(second.ws_url, f"/vc/ws/room/{call.appointment}", call.cookies[0])
        cookie = check_in(second.url, invitation, renewed.code, name="Person 0")
        back = await SignalClient.open(second.ws_url, f"/vc/ws/room/{call.appointment}", cookie)
        assert (await back.hello())["state"] == "waiting"
        members = host.state.presence.members(call.appointment, host.state.waiting_room.now())
        assert sorted(m.invitation for m in members if m.role == "patient") == sorted(
            i.invitation.public_id for i in call.invitations
        )
        await back.close()
        await call.close()

    asyncio.run(scenario())


def test_removing_a_participant_closes_only_their_socket(world):
    host, people, first, second, redis = world

    async def scenario() -> None:
        call = await running_call(host, people, first, second)
        invitation = call.invitations[0].invitation.public_id
        host.state.subject_rights.erase_participant(Principal.of(people.doc), invitation)
        await call.patients[0].send({"type": "offer", "to": call.doctor_id, "sdp": "removed"})
        await revoked_within(call.patients[0], "participant_removed")
        assert (await call.doctor.receive("peer-left"))["peer"] == call.patient_ids[0]
        await relay_flows(call, 1)  # the others go on
        no_offer_from(call.doctor.inbox, call.patient_ids[0])
        # Nothing is relayed *to* the removed person either, whoever still has them in their list.
        await call.doctor.send({"type": "offer", "to": call.patient_ids[0], "sdp": "to a removed person"})
        assert (await call.doctor.receive("error"))["code"] == "unknown_peer"
        assert redis.hget(f"vc:room:{call.appointment}:members", call.patient_ids[0]) is None
        assert redis.get(f"vc:checkin:{invitation}") is None
        await call.close()

    asyncio.run(scenario())


def test_signing_out_everywhere_closes_the_practitioners_sockets_but_not_a_new_sign_in(world):
    host, people, first, second, _redis = world

    async def scenario() -> None:
        call = await running_call(host, people, first, second)
        with host.app.test_request_context():
            end_all_sessions(people.doc)
        await call.doctor.send({"type": "offer", "to": call.patient_ids[0], "sdp": "signed out"})
        await revoked_within(call.doctor, "signed_out")
        await revoked_within(call.dashboard, "signed_out")
        # A marker through the same bus: an offer of the signed-out socket would have come first.
        await call.patients[1].send({"type": "offer", "to": call.patient_ids[0], "sdp": "marker"})
        while (message := await call.patients[0].receive("offer"))["sdp"] != "marker":
            assert message["from"] != call.doctor_id
        # The patients stay; a fresh sign-in opens the room again.
        again = await SignalClient.open(
            first.ws_url, f"/vc/ws/room/{call.appointment}", practitioner_cookie(people.doc)
        )
        assert (await again.hello())["state"] == "admitted"
        await again.send({"type": "offer", "to": call.patient_ids[1], "sdp": "signed in again"})
        assert (await call.patients[1].receive("offer"))["sdp"] == "signed in again"
        await again.close()
        await call.close()

    asyncio.run(scenario())


def test_removing_the_practitioner_closes_their_calls(world):
    host, people, first, second, redis = world

    async def scenario() -> None:
        call = await running_call(host, people, first, second)
        host.state.subject_rights.erase_practitioner(Actor(ActorKind.OPERATOR), people.doc.public_id)
        await call.patients[0].send({"type": "offer", "to": call.doctor_id, "sdp": "gone"})
        for client in (*call.patients, call.doctor, call.dashboard):
            no_offer_from(await revoked_within(client, "practitioner_removed"), call.patient_ids[0])
        assert room_keys(redis, call.appointment) == []
        await call.close()

    asyncio.run(scenario())


def test_shredding_the_organisation_closes_its_sockets(world):
    host, people, first, second, redis = world

    async def scenario() -> None:
        call = await running_call(host, people, first, second)
        slug = people.doc.organisation.slug
        result = host.app.test_cli_runner().invoke(args=["vc", "shred-organisation", slug, "--yes"])
        assert result.exit_code == 0, result.output
        for client in (*call.patients, call.doctor, call.dashboard):
            await revoked_within(client, "organisation_removed")
        assert room_keys(redis, call.appointment) == []
        # Its planned appointments are cancelled for good, not just for as long as a tombstone lasts.
        with pytest.raises(Exception, match="410"):
            await SignalClient.open(second.ws_url, f"/vc/ws/room/{call.appointment}", call.cookies[0])
        # What the organisation does afterwards (a new start, new keys) is not caught by the old revocation.
        host.state.db.session.expire_all()
        fresh = plan_soon(host, people, kind="group", participants=1)
        cookie = check_in(second.url, fresh.invitations[0].invitation.public_id, fresh.invitations[0].code)
        patient = await SignalClient.open(second.ws_url, f"/vc/ws/room/{fresh.appointment.public_id}", cookie)
        assert (await patient.hello())["type"] == "welcome"
        await patient.close()
        await call.close()

    asyncio.run(scenario())


def test_a_replaced_check_in_cannot_say_hello_later(world):
    """The first device opened its socket but had not said hello when the second device checked in."""
    host, people, first, second, _redis = world

    async def scenario() -> None:
        planned = plan_soon(host, people, kind="group", participants=1)
        appointment, issued = planned.appointment.public_id, planned.invitations[0]
        early = check_in(first.url, issued.invitation.public_id, issued.code, name="Gerät A")
        slow = await SignalClient.open(first.ws_url, f"/vc/ws/room/{appointment}", early)
        check_in(second.url, issued.invitation.public_id, issued.code, name="Gerät B")
        await slow.send({"type": "hello"})
        await revoked_within(slow, "replaced")
        assert host.state.presence.members(appointment, host.state.waiting_room.now()) == []
        await slow.close()

    asyncio.run(scenario())


def test_a_dashboard_opened_before_signing_out_cannot_say_hello_after(world):
    host, people, first, _second, _redis = world

    async def scenario() -> None:
        dashboard = await SignalClient.open(first.ws_url, "/vc/ws/practice", practitioner_cookie(people.doc))
        with host.app.test_request_context():
            end_all_sessions(people.doc)
        await dashboard.send({"type": "hello"})
        before = await revoked_within(dashboard, "signed_out")
        assert [m for m in before if m["type"] == "queue"] == []
        await dashboard.close()

    asyncio.run(scenario())


def test_one_person_per_invitation(world):
    host, people, first, second, _redis = world

    async def scenario() -> None:
        planned = plan_soon(host, people, kind="group", participants=1)
        appointment, issued = planned.appointment.public_id, planned.invitations[0]
        dashboard = await SignalClient.open(first.ws_url, "/vc/ws/practice", practitioner_cookie(people.doc))
        await dashboard.hello()
        first_cookie = check_in(first.url, issued.invitation.public_id, issued.code, name="Gerät A")
        device_a = await SignalClient.open(first.ws_url, f"/vc/ws/room/{appointment}", first_cookie)
        await device_a.hello()
        # The same code again, on another device and process: A is replaced, never doubled.
        second_cookie = check_in(second.url, issued.invitation.public_id, issued.code, name="Gerät B")
        await revoked_within(device_a, "replaced")
        with pytest.raises(Exception, match="410"):
            await SignalClient.open(first.ws_url, f"/vc/ws/room/{appointment}", first_cookie)
        device_b = await SignalClient.open(second.ws_url, f"/vc/ws/room/{appointment}", second_cookie)
        assert (await device_b.hello())["position"] == 1
        members = host.state.presence.members(appointment, host.state.waiting_room.now())
        assert [m.name for m in members] == ["Gerät B"]
        # A third check-in on the same process as B, while B is connected.
        third_cookie = check_in(second.url, issued.invitation.public_id, issued.code, name="Gerät C")
        await revoked_within(device_b, "replaced")
        device_c = await SignalClient.open(second.ws_url, f"/vc/ws/room/{appointment}", third_cookie)
        await device_c.hello()
        members = host.state.presence.members(appointment, host.state.waiting_room.now())
        assert [m.name for m in members] == ["Gerät C"]
        for client in (device_c, dashboard):
            await client.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("consent", ["true", 1, "yes", None, {}, [True]])
def test_consent_is_json_true_and_nothing_else(world, consent):
    host, people, first, second, _redis = world

    async def scenario() -> None:
        call = await running_call(host, people, first, second)
        await call.patients[1].send({"type": "relay-request", "consent": consent})
        error = await call.patients[1].receive("error")
        assert error["code"] == "invalid" and error["ref"] == "relay-request"
        await call.patients[1].send({"type": "relay-request", "consent": False})
        assert (await call.patients[1].receive("error"))["code"] == "relay_consent_required"
        assert [m for m in call.patients[1].inbox if m["type"] == "relay"] == []
        await call.close()

    asyncio.run(scenario())


def test_no_cookie_of_ours_holds_more_than_ids(world):
    host, people, first, _second, redis = world
    from flask import Flask

    from tests.support.web import cookie_serializer

    planned = plan_soon(host, people, kind="group", participants=1)
    issued = planned.invitations[0]
    cookie = check_in(first.url, issued.invitation.public_id, issued.code, name="Erika Mustermann")
    app = Flask("decode")
    app.secret_key = TEST_SECRET
    serializer = cookie_serializer(app)
    [value] = [c.split("=", 1)[1] for c in cookie.split("; ") if c.startswith("vc_session=")]
    data = serializer.loads(value)
    assert "Erika" not in json.dumps(data) and "Mustermann" not in json.dumps(data)
    participant = data[PASS_KEY]
    assert set(participant) == {
        "invitation",
        "appointment",
        "practitioner",
        "participant",
        "kind",
        "language",
        "expires_at",
        "issued_at",  # when the check-in began: a pass from before an end stays void after a reopening
    }
    for key in ("invitation", "appointment", "practitioner", "participant"):
        assert participant[key].replace("-", "").replace("_", "").isalnum()
    # The name is kept server-side, with the pass's expiry.
    assert redis.ttl(f"vc:checkin:{issued.invitation.public_id}") > 0


def test_reopening_lets_new_check_ins_in_and_nothing_from_before_the_end(world):
    """Ended by mistake and reopened: the same link and code check in anew and reach the waiting room,
    while the passes, sockets and relays from before the end stay revoked, on both processes."""
    host, people, first, second, _redis = world

    async def scenario() -> None:
        call = await running_call(host, people, first, second)
        invitation = call.invitations[0].invitation.public_id
        await call.dashboard.send({"type": "end", "appointment": call.appointment})
        for client in (*call.patients, call.doctor):
            await client.receive("ended")
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(client.socket.recv(), 5)
        await until(lambda: host.state.bus.revoked_reason([appointment_claim(call.appointment, None)]) == "ended")
        ended = host.state.appointments.find(call.appointment)
        assert ended is not None and ended.ended_at is not None
        old_sender = (appointment_claim(call.appointment, None), Claim(member_scope(call.patient_ids[0])))
        host.state.appointments.reopen(Principal.of(people.doc), call.appointment)
        # Before the end: the pass opens no socket and no room page, a relay from its socket goes nowhere.
        with pytest.raises(Exception, match="410"):
            await SignalClient.open(second.ws_url, f"/vc/ws/room/{call.appointment}", call.cookies[0])
        room_page = f"{second.url}/vc/join/{invitation}/room"
        refused = requests.get(room_page, headers={"Cookie": call.cookies[0]}, allow_redirects=False, timeout=10)
        assert refused.status_code == 302 and refused.headers["Location"].endswith(invitation)
        assert not host.state.waiting_room.relay(call.appointment, call.doctor_id, "{}", old_sender)
        # After it: the same link and code check in, wait, are admitted and talk to a new practitioner socket.
        cookie = check_in(second.url, invitation, call.invitations[0].code, name="Person 0")
        doctor = await SignalClient.open(
            first.ws_url, f"/vc/ws/room/{call.appointment}", practitioner_cookie(people.doc)
        )
        doctor_id = (await doctor.hello())["you"]["id"]
        patient = await SignalClient.open(second.ws_url, f"/vc/ws/room/{call.appointment}", cookie)
        hello = await patient.hello()
        assert hello["state"] == "waiting"
        await call.dashboard.send({"type": "admit", "appointment": call.appointment, "participant": hello["you"]["id"]})
        await patient.receive("admitted")
        await patient.send({"type": "offer", "to": doctor_id, "sdp": "after reopening"})
        assert (await doctor.receive("offer"))["sdp"] == "after reopening"
        # The next end hits the new sockets too.
        await call.dashboard.send({"type": "end", "appointment": call.appointment})
        for client in (patient, doctor):
            await client.receive("ended")
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(client.socket.recv(), 5)
        await call.close()

    asyncio.run(scenario())
