"""Socket tickets: the app's checks, sealed for one handshake, taken by either server alike.

A ticket opens exactly the socket it names, once, within its time, and only from our origin; a
revocation after it was issued still reaches the socket; it carries nothing readable. Without a
ticket a handshake is decided by the cookie as before.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import requests
from websockets.exceptions import InvalidStatus

from tests.support.hosts import make_host_app
from tests.support.live import running
from tests.support.people import make_people
from tests.support.planning import plan_soon
from tests.support.signal_client import SignalClient, ask_ticket, check_in, practitioner_cookie, socket_ticket
from vc_plugin.adapters.presence import CheckInRecord, Member, MemberRole, MemberState, Room
from vc_plugin.core.crypto import MasterKeyring, b64d, generate_master_key
from vc_plugin.core.models import Role
from vc_plugin.domain.access import Principal
from vc_plugin.domain.check_in import ParticipantPass
from vc_plugin.domain.room_session import RoomIdentity
from vc_plugin.domain.socket_ticket import (
    PRACTICE_SOCKET,
    TICKET_SECONDS,
    RoomGrant,
    SocketTickets,
    TicketRefused,
    socket_of_room,
)
from vc_plugin.domain.waiting_room import Staffer
from vc_plugin.web.identity import end_all_sessions

NOW = 1_800_000_000.0


# --- the ticket itself ------------------------------------------------------------------------------
@pytest.fixture
def tickets() -> SocketTickets:
    return SocketTickets(MasterKeyring([generate_master_key()]))


def _grant(name: str = "Frau Vertraulich") -> RoomGrant:
    participant_pass = ParticipantPass("inv", "appt", "doc", "member-1", "patient", "de", NOW + 3600, NOW)
    record = CheckInRecord("inv", "member-1", name, NOW + 3600, "tag")
    identity = RoomIdentity(
        "appt", "member-1", MemberRole.PATIENT, name, participant_pass=participant_pass, check_in=record
    )
    member = Member("other", MemberRole.PATIENT, "Herr Nebenan", MemberState.WAITING, NOW)
    room = Room("appt", 1, "doc", NOW, NOW + 1800, NOW + 7200, practitioner_name="Dr. Berg", members=(member,))
    return RoomGrant(identity, room)


def test_a_ticket_opens_the_socket_it_names_once(tickets):
    token = tickets.issue(socket_of_room("appt"), _grant(), NOW)
    taken = tickets.take(token, socket_of_room("appt"), NOW + 1)
    assert taken.room is not None and taken.room.identity.participant_pass == _grant().identity.participant_pass
    assert taken.room.room is not None and taken.room.room.practitioner_name == "Dr. Berg"
    assert taken.issued_at == NOW and taken.staffer is None
    with pytest.raises(TicketRefused, match="used already"):
        tickets.take(token, socket_of_room("appt"), NOW + 2)


def test_a_ticket_for_one_socket_opens_no_other(tickets):
    token = tickets.issue(socket_of_room("appt"), _grant(), NOW)
    for other in (socket_of_room("other"), PRACTICE_SOCKET):
        with pytest.raises(TicketRefused, match="another socket"):
            tickets.take(token, other, NOW + 1)


def test_a_ticket_expires(tickets):
    token = tickets.issue(PRACTICE_SOCKET, Staffer("doc", 1, Role.PRACTITIONER, 1, "Dr. Berg", NOW), NOW)
    with pytest.raises(TicketRefused, match="expired"):
        tickets.take(token, PRACTICE_SOCKET, NOW + TICKET_SECONDS)
    with pytest.raises(TicketRefused, match="expired"):  # nor before it was issued (a clock set back)
        tickets.take(
            tickets.issue(PRACTICE_SOCKET, Staffer("d", 1, Role.PRACTITIONER, 1, "D"), NOW), PRACTICE_SOCKET, 0
        )


@pytest.mark.parametrize(
    "forge",
    [
        lambda token: token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),  # a changed byte
        lambda token: token.split(".")[0] + ".",  # the key id alone
        lambda token: "nokey." + token.split(".")[1],  # a key we do not have
        lambda token: "",
        lambda token: "....",
        lambda token: token[: len(token) // 2],  # cut short
    ],
)
def test_a_forged_ticket_is_refused(tickets, forge):
    token = tickets.issue(socket_of_room("appt"), _grant(), NOW)
    with pytest.raises(TicketRefused, match="not one of ours"):
        tickets.take(forge(token), socket_of_room("appt"), NOW + 1)


def test_a_ticket_of_another_installation_is_refused(tickets):
    other = SocketTickets(MasterKeyring([generate_master_key()]))
    with pytest.raises(TicketRefused, match="not one of ours"):
        tickets.take(other.issue(PRACTICE_SOCKET, _grant(), NOW), PRACTICE_SOCKET, NOW + 1)


def test_a_ticket_carries_nothing_readable_and_no_patients_name_at_all(tickets):
    """Sealed; and since a ticket travels in a URL (access logs), no patient's name even sealed:
    ``hello`` reads it from the check-in."""
    token = tickets.issue(socket_of_room("appt"), _grant("Frau Vertraulich"), NOW)
    raw = b64d(token.split(".", 1)[1])
    for secret in (b"Vertraulich", b"Dr. Berg", b"member-1", b"appt"):
        assert secret not in raw
    grant = tickets.take(token, socket_of_room("appt"), NOW + 1).room
    assert grant is not None and grant.room is not None
    assert grant.identity.name == "" and grant.identity.check_in is not None and grant.identity.check_in.name == ""
    assert grant.room.members == ()
    assert "Vertraulich" not in repr(grant) and "Nebenan" not in repr(grant)


# --- the app's ticket and both servers' handshakes -------------------------------------------------------
@pytest.fixture(scope="module")
def server(postgres_schema, redis_address, tmp_path_factory, transport):
    with running(
        postgres_schema, {"VC_REDIS_URL": redis_address}, tmp_path_factory.mktemp("tickets"), transport=transport
    ) as (first,):
        yield first


@pytest.fixture
def world(server, pg_url, redis_url):
    host = make_host_app(pg_url, VC_REDIS_URL=redis_url, VC_PUBLIC_URL=server.url + "/")
    with host.app.app_context():
        yield host, make_people(host.state), server
    host.close()


async def _refused(server, path: str, cookie: str | None = None, *, origin: str | None = None) -> int:
    with pytest.raises(InvalidStatus) as refused:
        await SignalClient.open(server.ws_url, path, cookie, origin=origin)
    return refused.value.response.status_code


def _patient(host, people, server):
    planned = plan_soon(host, people)
    issued = planned.invitations[0]
    cookie = check_in(server.url, issued.invitation.public_id, issued.code, name="Frau Ticket")
    return planned, f"/vc/ws/room/{planned.appointment.public_id}", cookie


def test_a_patient_and_a_practitioner_join_by_ticket_without_a_cookie(world):
    host, people, server = world
    _, room, cookie = _patient(host, people, server)
    doctor = practitioner_cookie(people.doc)

    async def scenario() -> None:
        dashboard = await SignalClient.open(
            server.ws_url, f"/vc/ws/practice?ticket={socket_ticket(server.url, '/vc/ws/practice', doctor)}", None
        )
        assert (await dashboard.hello())["type"] == "queue"
        patient = await SignalClient.open(
            server.ws_url, f"{room}?ticket={socket_ticket(server.url, room, cookie)}", None
        )
        welcome = await patient.hello()
        assert welcome["type"] == "welcome" and welcome["you"]["name"] == "Frau Ticket"
        assert (await dashboard.receive("queue-update"))["member"]["name"] == "Frau Ticket"
        for client in (patient, dashboard):
            await client.close()

    asyncio.run(scenario())


def test_a_ticket_opens_one_socket_and_only_its_own(world):
    host, people, server = world
    _, room, cookie = _patient(host, people, server)
    other, other_room, _ = _patient(host, people, server)

    async def scenario() -> None:
        ticket = socket_ticket(server.url, room, cookie)
        assert await _refused(server, f"{other_room}?ticket={ticket}") == 401  # another room
        assert await _refused(server, f"/vc/ws/practice?ticket={ticket}") == 401
        assert await _refused(server, f"/vc/ws/probe/{other.appointment.public_id}?ticket={ticket}") == 401
        first = await SignalClient.open(server.ws_url, f"{room}?ticket={ticket}", None)
        assert await _refused(server, f"{room}?ticket={ticket}") == 401  # used already
        # A wrong ticket is refused even beside a valid cookie: the ticket decides.
        assert await _refused(server, f"{room}?ticket={ticket[:-3]}abc", cookie) == 401
        await first.close()

    asyncio.run(scenario())


def test_a_ticket_from_another_origin_is_refused(world):
    host, people, server = world
    _, room, cookie = _patient(host, people, server)

    async def scenario() -> None:
        ticket = socket_ticket(server.url, room, cookie)
        assert await _refused(server, f"{room}?ticket={ticket}", origin="https://evil.example") == 403

    asyncio.run(scenario())


def test_a_ticket_outlives_no_revocation(world):
    """Signed out after the ticket, before the handshake: the dashboard hears "signed_out", not its queue."""
    host, people, server = world
    doctor = practitioner_cookie(people.doc)

    async def scenario() -> None:
        ticket = socket_ticket(server.url, "/vc/ws/practice", doctor)
        time.sleep(0.01)  # the revocation is later than the ticket, as it would be
        with host.app.test_request_context():
            end_all_sessions(people.doc)
        dashboard = await SignalClient.open(server.ws_url, f"/vc/ws/practice?ticket={ticket}", None)
        await dashboard.send({"type": "hello"})
        said = await dashboard.receive("revoked")
        assert said["reason"] == "signed_out"
        assert [m for m in dashboard.inbox if m["type"] == "queue"] == []
        await dashboard.close()

    asyncio.run(scenario())


def test_a_patients_ticket_outlives_no_cancellation(world):
    """Cancelled after the ticket, before the handshake: hello is answered "revoked", and nobody waits."""
    host, people, server = world
    planned, room, cookie = _patient(host, people, server)

    async def scenario() -> None:
        ticket = socket_ticket(server.url, room, cookie)
        host.state.appointments.cancel(Principal.of(people.doc), planned.appointment.public_id)
        patient = await SignalClient.open(server.ws_url, f"{room}?ticket={ticket}", None)
        await patient.send({"type": "hello"})
        assert await patient.receive() == {"type": "revoked", "reason": "cancelled"}
        assert patient.inbox == []
        assert host.state.presence.members(planned.appointment.public_id, host.state.waiting_room.now()) == []
        await patient.close()

    asyncio.run(scenario())


def test_the_app_gives_tickets_only_to_whom_the_socket_would_take(world):
    host, people, server = world
    _, room, cookie = _patient(host, people, server)
    other, other_room, _ = _patient(host, people, server)
    assert ask_ticket(server.url, other_room, cookie).status_code == 401  # a pass for another appointment
    assert ask_ticket(server.url, room, None).status_code == 401
    assert ask_ticket(server.url, "/vc/ws/practice", cookie).status_code == 401  # a patient has no dashboard
    assert ask_ticket(server.url, f"/vc/ws/probe/{other.appointment.public_id}", cookie).status_code == 404
    assert ask_ticket(server.url, "/vc/join/nothing", cookie).status_code == 404  # not a socket
    assert ask_ticket(server.url, "/nowhere", cookie).status_code == 404
    # Without the page's CSRF token, nothing is issued.
    refused = requests.post(
        f"{server.url}/vc/socket-ticket", json={"socket": room}, headers={"Cookie": cookie}, timeout=10
    )
    assert refused.status_code == 400
    for body in ({}, [], "text", {"socket": 7}, {"socket": "/" + "x" * 400}, {"socket": "vc/ws/practice"}):
        assert ask_ticket(server.url, room, cookie, body=body).status_code == 400, body
    answer = ask_ticket(server.url, room, cookie)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert answer.json()["expiresIn"] == TICKET_SECONDS


def test_without_a_ticket_the_cookie_decides_as_before(world):
    host, people, server = world
    _, room, cookie = _patient(host, people, server)

    async def scenario() -> None:
        assert await _refused(server, room) == 401
        patient = await SignalClient.open(server.ws_url, room, cookie)
        assert (await patient.hello())["type"] == "welcome"
        await patient.close()

    asyncio.run(scenario())
