"""Back to the waiting room (issue 17), over real sockets on both transports: the practitioner sends
one participant from the call back to the waiting room, everyone's connections to them end, nothing
is relayed either way while they wait, admitting again reconnects; and a handover from there."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.hosts import make_host_app
from tests.support.live import LiveServer, running
from tests.support.people import make_people
from tests.support.planning import plan_group, plan_soon
from tests.support.signal_client import SignalClient, check_in, practitioner_cookie
from vc_plugin.adapters.presence import Member, MemberRole, MemberState
from vc_plugin.core.models import Appointment
from vc_plugin.domain.waiting_room import Staffer

pytestmark = pytest.mark.slow


#: A relay is configured, so that a relay-request is refused for waiting, not for want of TURN.
TURN = {"VC_TURN_URLS": ["turn:127.0.0.1:3478?transport=udp"], "VC_TURN_SECRET": "back-to-waiting-secret"}


@pytest.fixture(scope="module")
def server(postgres_schema, redis_address, tmp_path_factory, transport):
    config = {"VC_REDIS_URL": redis_address, **TURN}
    with running(postgres_schema, config, tmp_path_factory.mktemp("back-to-waiting"), transport=transport) as (live,):
        yield live


@pytest.fixture
def world(server, pg_url, redis_url):
    host = make_host_app(pg_url, VC_PUBLIC_URL=server.url + "/", VC_REDIS_URL=redis_url, **TURN)
    with host.app.app_context():
        people = make_people(host.state)
        yield host, people, server
    host.close()


async def quiet(client: SignalClient, kind: str) -> None:
    """Nothing of ``kind`` reached ``client``: a ping's pong comes after anything sent before it."""
    await client.send({"type": "ping", "t": 7})
    await client.receive("pong")
    assert not [m for m in client.inbox if m.get("type") == kind], client.inbox


class Call:
    """Dr. Berg on her call page (room socket and dashboard) with a patient and a relative admitted."""

    def __init__(self, host: Any, people: Any, server: LiveServer) -> None:
        self.host, self.people, self.server = host, people, server
        self.appointment, self.issued = plan_group(host, people, 2)
        self.clients: list[SignalClient] = []
        self.cookies: dict[str, str] = {}  # member id: the check-in's session cookie
        self.resumes: dict[str, str] = {}  # member id: the newest resume token

    async def open(self, path: str, cookie: str) -> tuple[SignalClient, dict[str, Any]]:
        client = await SignalClient.open(self.server.ws_url, path, cookie)
        self.clients.append(client)
        return client, await client.hello()

    async def start(self) -> None:
        doctor = practitioner_cookie(self.people.doc)
        self.dashboard, _ = await self.open("/vc/ws/practice", doctor)
        self.doctor, welcome = await self.open(f"/vc/ws/room/{self.appointment}", doctor)
        self.doctor_id = welcome["you"]["id"]
        self.patient, self.patient_id = await self.admitted(0, "Frau Zurück")
        self.relative, self.relative_id = await self.admitted(1, "Herr Angehörig")
        await self.doctor.receive("peer-joined")
        await self.doctor.receive("peer-joined")
        await self.patient.receive("peer-joined")  # the relative

    async def admitted(self, index: int, name: str) -> tuple[SignalClient, str]:
        issued = self.issued[index]
        cookie = check_in(self.server.url, issued.invitation, issued.code, name=name)
        client, welcome = await self.open(f"/vc/ws/room/{self.appointment}", cookie)
        member = welcome["you"]["id"]
        self.cookies[member], self.resumes[member] = cookie, welcome["resume"]
        await self.command("admit", member)
        await client.receive("admitted")
        return client, member

    async def command(self, kind: str, participant: str, client: SignalClient | None = None) -> None:
        await (client or self.dashboard).send(
            {"type": kind, "appointment": self.appointment, "participant": participant}
        )

    async def reload(self, client: SignalClient, member: str) -> tuple[SignalClient, dict[str, Any]]:
        """The page reloaded: the old socket goes, a new one comes back with the resume token."""
        await client.close()
        again = await SignalClient.open(self.server.ws_url, f"/vc/ws/room/{self.appointment}", self.cookies[member])
        self.clients.append(again)
        welcome = await again.hello(resume=self.resumes[member])
        self.resumes[member] = welcome["resume"]
        return again, welcome

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


def test_sent_back_waits_relays_nothing_either_way_and_comes_back(world):
    host, people, server = world

    async def scenario() -> None:
        call = Call(host, people, server)
        await call.start()
        await call.command("send-back", call.patient_id)
        back = await call.patient.receive("sent-back")
        assert back == {"type": "sent-back", "practitioner_name": "Dr. Maria Berg", "position": 1}
        # Everyone in the call closes the connection; the dashboards list the patient as waiting again.
        assert (await call.doctor.receive("peer-left"))["peer"] == call.patient_id
        assert (await call.relative.receive("peer-left"))["peer"] == call.patient_id
        while (update := await call.dashboard.receive("queue-update"))["op"] != "sent-back":
            pass
        assert update == {
            "type": "queue-update",
            "op": "sent-back",
            "appointment": call.appointment,
            "member_id": call.patient_id,
        }
        assert host.state.presence.get(call.appointment, call.patient_id).state == "waiting"

        # Nothing goes out of the waiting room …
        for kind, body in (("offer", {"sdp": "v=0"}), ("candidate", {"candidate": None}), ("ice-restart", {})):
            await call.patient.send({"type": kind, "to": call.doctor_id, **body})
            assert (await call.patient.receive("error"))["code"] == "not_admitted"
        await call.patient.send({"type": "relay-request", "consent": True})
        assert (await call.patient.receive("error"))["code"] == "not_admitted"
        await quiet(call.doctor, "offer")
        # … and nothing comes in, from the practitioner or the relative.
        for client in (call.doctor, call.relative):
            await client.send({"type": "offer", "to": call.patient_id, "sdp": "v=0"})
            assert (await client.receive("error"))["code"] == "unknown_peer"
        await quiet(call.patient, "offer")
        # The practitioner and the relative still talk to each other.
        await call.doctor.send({"type": "offer", "to": call.relative_id, "sdp": "v=0"})
        assert (await call.relative.receive("offer"))["from"] == call.doctor_id

        # Only someone in the call can be sent back.
        for someone in (call.patient_id, call.doctor_id, "nobody"):
            await call.command("send-back", someone)
            assert (await call.dashboard.receive("error"))["code"] == "not_in_call"

        # Admitted again: the call resumes as the first time (the patient offers to everyone listed).
        await call.command("admit", call.patient_id)
        again = await call.patient.receive("admitted")
        assert {p["id"] for p in again["peers"]} == {call.doctor_id, call.relative_id}
        assert (await call.doctor.receive("peer-joined"))["peer"]["id"] == call.patient_id
        await call.patient.send({"type": "offer", "to": call.doctor_id, "sdp": "v=0 again"})
        assert (await call.doctor.receive("offer"))["sdp"] == "v=0 again"
        await call.close()

    asyncio.run(scenario())


def test_a_reload_while_sent_back_says_again_who_asked_to_wait(world):
    host, people, server = world

    async def scenario() -> None:
        call = Call(host, people, server)
        await call.start()
        await call.command("send-back", call.patient_id)
        await call.patient.receive("sent-back")
        patient, welcome = await call.reload(call.patient, call.patient_id)
        assert welcome["state"] == "waiting" and welcome["position"] == 1
        assert welcome["asked_to_wait_by"] == "Dr. Maria Berg"
        # Someone who was never sent back hears nothing of it after a reload.
        _, relative = await call.reload(call.relative, call.relative_id)
        assert relative["state"] == "admitted" and "asked_to_wait_by" not in relative
        # Admitted again, the request is over: a reload in the call does not repeat it.
        await call.command("admit", call.patient_id)
        await patient.receive("admitted")
        _, welcome = await call.reload(patient, call.patient_id)
        assert welcome["state"] == "admitted" and "asked_to_wait_by" not in welcome
        assert host.state.presence.get(call.appointment, call.patient_id).asked_to_wait_by == ""
        await call.close()

    asyncio.run(scenario())


def test_nobody_else_sends_a_participant_back(world):
    host, people, server = world

    async def scenario() -> None:
        call = Call(host, people, server)
        await call.start()
        # The relative in the call cannot send the patient back, nor can a colleague or the desk.
        await call.command("send-back", call.patient_id, call.relative)
        assert (await call.relative.receive("error"))["code"] == "not_allowed"
        for person in (people.colleague, people.desk):
            other, _ = await call.open("/vc/ws/practice", practitioner_cookie(person))
            await call.command("send-back", call.patient_id, other)
            assert (await other.receive("error"))["code"] == "not_allowed"
        assert host.state.presence.get(call.appointment, call.patient_id).state == "admitted"
        await call.patient.send({"type": "offer", "to": call.doctor_id, "sdp": "v=0 still"})
        assert (await call.doctor.receive("offer"))["sdp"] == "v=0 still"
        await quiet(call.patient, "sent-back")
        await call.close()

    asyncio.run(scenario())


def test_handover_from_the_call_once_nobody_else_is_in_it(world):
    host, people, server = world

    async def scenario() -> None:
        call = Call(host, people, server)
        await call.start()
        colleague, _ = await call.open("/vc/ws/practice", practitioner_cookie(people.colleague))
        handover = {"type": "handover", "appointment": call.appointment, "practitioner": people.colleague.public_id}
        # The relative is still in the call: refused, nothing moves.
        await call.command("send-back", call.patient_id)
        await call.patient.receive("sent-back")
        await call.dashboard.send(handover)
        assert (await call.dashboard.receive("error"))["code"] == "in_call"
        await call.command("send-back", call.relative_id)
        await call.relative.receive("sent-back")
        # Nobody but Dr. Berg in the call: the appointment goes to the colleague with both waiting.
        await call.dashboard.send(handover)
        for waiting in (call.patient, call.relative):
            assert (await waiting.receive("handed-over"))["practitioner_name"] == "Dr. Jonas Kurz"
        assert (await call.doctor.receive("handed-over"))["practitioner_name"] == "Dr. Jonas Kurz"
        # The server closes the call page's room socket; she is no longer in the room.
        await asyncio.wait_for(call.doctor.socket.wait_closed(), 10)
        assert (call.doctor.socket.close_code, call.doctor.socket.close_reason) == (1000, "handed-over")
        while (update := await colleague.receive("queue-update"))["op"] != "handover":
            pass
        listed = {m["name"]: m["state"] for m in update["room"]["members"]}
        assert listed == {"Frau Zurück": "waiting", "Herr Angehörig": "waiting"}
        assert host.state.presence.get(call.appointment, call.doctor_id) is None
        host.state.db.session.expire_all()
        record = host.state.db.session.query(Appointment).filter_by(public_id=call.appointment).one()
        assert record.practitioner_id == people.colleague.id
        # The colleague lets the patient in; Dr. Berg is no longer in the call.
        await call.command("admit", call.patient_id, colleague)
        assert (await call.patient.receive("admitted"))["peers"] == []
        await call.close()

    asyncio.run(scenario())


def test_a_reconnect_at_the_moment_of_sending_back_does_not_undo_it(state, people):
    """The page's reconnect reads the member, the practitioner sends them back, then the reconnect
    writes: only the fields the reconnect owns are written, so the member stays in the waiting room
    (before, the whole member was written back and they were "in the call" again for the server)."""
    planned = plan_soon(state, people)
    appointment = planned.appointment.public_id
    waiting_room, presence = state.waiting_room, state.waiting_room.presence
    doctor = Staffer.of(people.doc)
    room = waiting_room.room_for(planned.appointment)
    template = Member(id="p1", role=MemberRole.PATIENT, name="Frau Gleichzeitig", state=MemberState.WAITING, since=0)
    token = waiting_room.arrive(room, template, None, "first-socket", None).token
    waiting_room.admit(doctor, appointment, "p1")

    read_by_the_reconnect = presence.get(appointment, "p1")
    waiting_room.send_back(doctor, appointment, "p1")  # the practitioner's click lands right after that read
    member = waiting_room.arrive(room, template, token, "second-socket", read_by_the_reconnect).member
    stored = presence.get(appointment, "p1")
    assert (member.state, stored.state) == (MemberState.WAITING, MemberState.WAITING)
    assert stored.connection == "second-socket" and stored.resume != ""
