"""Check-in: code, name and consent; locks after wrong codes; a rate limit per client."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.support.web import csrf, sign_in_as
from vc_plugin.access import Principal
from vc_plugin.crypto import generate_access_code
from vc_plugin.models import AuditEvent, ConsentKind, ConsentRecord
from vc_plugin.schemas import AppointmentIn, ParticipantIn
from vc_plugin.sessions import PASS_KEY


@pytest.fixture
def planned(state, people, clock):
    start = clock.now() + timedelta(minutes=10)
    return state.appointments.plan(
        Principal.of(people.doc),
        AppointmentIn(
            starts_at=start, ends_at=start + timedelta(minutes=30), kind="group", participants=[ParticipantIn()] * 3
        ),
    )


def attempt(client, invitation_id, code, name="Frau Test", consent="yes", lang="en"):
    link = f"/vc/join/{invitation_id}"
    token = csrf(client, link)
    return client.post(
        link,
        data={"csrf_token": token, "code": code, "name": name, "consent": consent},
        headers={"Accept-Language": lang},
    )


def test_check_in_stores_consent_but_no_name(app, planned, state):
    client = app.test_client()
    issued = planned.invitations[0]
    response = attempt(
        client, issued.invitation.public_id, issued.code.lower().replace("-", " "), name="  Frau\tMüller "
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/room")
    with client.session_transaction() as session:
        participant = session[PASS_KEY]
    assert participant["name"] == "Frau Müller" and participant["appointment"] == planned.appointment.public_id
    [consent] = state.db.session.scalars(select(ConsentRecord)).all()
    assert consent.kind is ConsentKind.PARTICIPATION and consent.text_version == "2026-11" and consent.language == "en"
    from tests.support.scan import database_holds

    assert database_holds(str(state.db.engine.url.render_as_string(hide_password=False)), "Müller") == []
    room = client.get(response.headers["Location"])
    assert room.status_code == 200 and "Frau Müller" in room.get_data(as_text=True)


@pytest.mark.parametrize(
    ("fields", "status", "text"),
    [
        ({"name": ""}, 422, "Please enter a name"),
        ({"name": "x" * 61}, 422, "Please enter a name"),
        ({"name": "\u0000\u200b"}, 422, "Please enter a name"),
        ({"consent": ""}, 422, "Please agree"),
    ],
)
def test_name_and_consent_are_required(app, planned, fields, status, text):
    issued = planned.invitations[0]
    response = attempt(app.test_client(), issued.invitation.public_id, issued.code, **fields)
    assert response.status_code == status and text in response.get_data(as_text=True)


def test_wrong_codes_lock_code_entry_and_the_practitioner_sees_it(app, planned, state, people, clock):
    client = app.test_client()
    issued = planned.invitations[0]
    link_id = issued.invitation.public_id
    for left in range(9, 0, -1):
        response = attempt(client, link_id, generate_access_code())
        assert response.status_code == 403
        assert f"{left} attempt" in response.get_data(as_text=True)
    locked = attempt(client, link_id, generate_access_code())
    assert locked.status_code == 429 and "locked" in locked.get_data(as_text=True)
    # Even the right code waits until the lock ends.
    assert attempt(client, link_id, issued.code).status_code == 429
    # The other participants' links are not affected.
    other = planned.invitations[1]
    assert attempt(app.test_client(), other.invitation.public_id, other.code).status_code == 302
    [event] = state.db.session.scalars(select(AuditEvent).where(AuditEvent.action == "invitation.code_locked")).all()
    assert event.subject == planned.appointment.public_id and event.details == {"minutes": 15}
    doctor = app.test_client()
    sign_in_as(doctor, people.doc, clock.now().timestamp())
    page = doctor.get(f"/vc/practice/appointments/{planned.appointment.public_id}", headers={"Accept-Language": "en"})
    assert "locked after wrong codes" in page.get_data(as_text=True)
    clock.advance(timedelta(minutes=16))
    assert attempt(client, link_id, issued.code).status_code == 302


def test_each_client_is_rate_limited_across_invitations(app, planned):
    client = app.test_client()
    statuses = []
    for number in range(21):
        issued = planned.invitations[number % 3]
        statuses.append(attempt(client, issued.invitation.public_id, generate_access_code()).status_code)
    assert statuses[:20] == [403] * 20  # wrong, but no invitation reached its own limit of 10
    assert statuses[20] == 429
    limited = attempt(client, planned.invitations[0].invitation.public_id, planned.invitations[0].code)
    assert limited.status_code == 429 and limited.headers.get("Retry-After")
    # Another client is not affected.
    other = app.test_client()
    issued = planned.invitations[1]
    assert (
        other.post(
            f"/vc/join/{issued.invitation.public_id}",
            data={
                "csrf_token": csrf(other, f"/vc/join/{issued.invitation.public_id}"),
                "code": issued.code,
                "name": "B",
                "consent": "yes",
            },
            environ_base={"REMOTE_ADDR": "10.1.2.3"},
        ).status_code
        == 302
    )


def test_relay_only_appointments_ask_for_relay_consent_at_joining(app, state, people, clock):
    start = clock.now() + timedelta(minutes=5)
    planned = state.appointments.plan(
        Principal.of(people.doc), AppointmentIn(starts_at=start, ends_at=start + timedelta(minutes=20), relay_only=True)
    )
    issued = planned.invitations[0]
    page = app.test_client().get(f"/vc/join/{issued.invitation.public_id}", headers={"Accept-Language": "en"})
    assert "always runs through a relay server" in page.get_data(as_text=True)
    assert attempt(app.test_client(), issued.invitation.public_id, issued.code).status_code == 302
    kinds = sorted(c.kind.value for c in state.db.session.scalars(select(ConsentRecord)))
    assert kinds == ["participation", "relay"]


def test_pass_expires_with_the_appointment(app, planned, clock):
    client = app.test_client()
    issued = planned.invitations[0]
    attempt(client, issued.invitation.public_id, issued.code)
    room = f"/vc/join/{issued.invitation.public_id}/room"
    assert client.get(room).status_code == 200
    clock.advance(timedelta(minutes=10 + 30 + 31))
    gone = client.get(room)
    assert gone.status_code == 302
    assert client.get(gone.headers["Location"]).status_code == 410
