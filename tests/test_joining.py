"""Check-in: code, name and consent; pauses after wrong codes, per client; a rate limit per client."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.support.web import csrf, sign_in_as, vc_cookie
from vc_plugin.core.crypto import generate_access_code
from vc_plugin.core.models import AuditEvent, ConsentKind, ConsentRecord
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import AppointmentIn, ParticipantIn
from vc_plugin.web.identity import PASS_KEY


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


def _pass(data):
    from vc_plugin.domain.check_in import ParticipantPass

    return ParticipantPass.from_dict(data)


def test_check_in_stores_consent_but_no_name(app, planned, state):
    client = app.test_client()
    issued = planned.invitations[0]
    response = attempt(
        client, issued.invitation.public_id, issued.code.lower().replace("-", " "), name="  Frau\tMüller "
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/room")
    with vc_cookie(client) as session:
        participant = session[PASS_KEY]
    assert participant["appointment"] == planned.appointment.public_id
    assert "Müller" not in str(participant)  # ids only; the name waits in presence
    assert state.check_in.name_of(_pass(participant)) == "Frau Müller"
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


def test_wrong_codes_pause_only_that_client_and_the_practitioner_sees_it(app, planned, state, people, clock):
    """The short version; tests/test_code_guard.py has the attacks (many clients, IPv6, the whole window)."""
    client = app.test_client()
    issued = planned.invitations[0]
    link_id = issued.invitation.public_id
    for left in range(9, 0, -1):
        response = attempt(client, link_id, generate_access_code())
        assert response.status_code == 403
        assert f"After {left} more wrong code" in response.get_data(as_text=True)
    paused = attempt(client, link_id, generate_access_code())
    assert paused.status_code == 429 and "this device has to wait until" in paused.get_data(as_text=True)
    # Even the right code waits until this client's pause ends ...
    assert attempt(client, link_id, issued.code).status_code == 429
    # ... but another client (the patient's phone) is not held back, on this link or the others.
    phone = app.test_client()
    phone.environ_base["REMOTE_ADDR"] = "198.51.100.20"
    assert attempt(phone, link_id, issued.code).status_code == 302
    other = planned.invitations[1]
    assert attempt(app.test_client(), other.invitation.public_id, other.code).status_code == 302
    [event] = state.db.session.scalars(select(AuditEvent).where(AuditEvent.action == "invitation.code_locked")).all()
    assert event.subject == planned.appointment.public_id and event.details == {"minutes": 15}
    doctor = app.test_client()
    sign_in_as(doctor, people.doc, clock.now().timestamp())
    page = doctor.get(f"/vc/practice/appointments/{planned.appointment.public_id}", headers={"Accept-Language": "en"})
    assert "too many wrong codes from one device, paused until" in page.get_data(as_text=True)
    clock.advance(timedelta(minutes=15))
    assert attempt(client, link_id, issued.code).status_code == 302


def test_each_client_is_rate_limited_across_invitations(app, planned):
    client = app.test_client()
    statuses = []
    for number in range(21):
        issued = planned.invitations[number % 3]
        statuses.append(attempt(client, issued.invitation.public_id, generate_access_code()).status_code)
    assert statuses[:20] == [403] * 20  # wrong, but this client used up its 10 tries on no invitation
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


def test_a_client_of_its_own_checks_in_with_json(app, planned, state):
    """docs/signaling.md: the JSON answer names the socket; refusals carry a stable code."""
    client = app.test_client()
    issued = planned.invitations[0]
    link = f"/vc/join/{issued.invitation.public_id}"
    form = {"csrf_token": csrf(client, link), "code": "AAAAA-AAAAA", "name": "Frau Test", "consent": "yes"}
    json_please = {"Accept": "application/json"}
    wrong = client.post(link, data=form, headers=json_please)
    assert wrong.status_code == 403 and wrong.json == {"error": "wrong_code", "attempts_left": 9}
    assert client.get(f"{link}/room").status_code == 302  # no pass yet
    refused = client.post(link, data={**form, "code": issued.code, "consent": ""}, headers=json_please)
    assert refused.status_code == 422 and refused.json == {"error": "consent"}
    ok = client.post(link, data={**form, "code": issued.code}, headers=json_please)
    assert ok.status_code == 200
    body = ok.json
    appointment = planned.appointment.public_id
    assert body["appointment"] == appointment and body["socket"] == f"/vc/ws/room/{appointment}"
    assert body["room"] == f"{link}/room" and body["expires_at"] > state.clock.now().timestamp()
    assert client.get(body["room"]).status_code == 200  # the cookie came with it
    # Browsers still get the redirect.
    again = app.test_client()
    browser = again.post(link, data={**form, "csrf_token": csrf(again, link), "code": issued.code})
    assert browser.status_code == 302
