"""KBV Anlage 31b: at the start of a consultation everyone present is introduced, and the practitioner
who holds the call confirms it once; the confirmation is an audit event without personal data.
A report counts confirmed against ended consultations (:func:`introductions_confirmed`)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.support.planning import plan_soon
from tests.support.web import csrf_from, sign_in_as
from vc_plugin.core.audit import Actor, ActorKind
from vc_plugin.core.models import AuditEvent
from vc_plugin.domain.access import AccessDenied, Principal
from vc_plugin.domain.introductions import CONFIRMED, introductions_confirmed

JSON = {"Accept": "application/json", "Accept-Language": "en"}


def signed_in(app, person, clock):
    client = app.test_client()
    sign_in_as(client, person, clock.now().timestamp())
    return client


def call_url(appointment_id: str) -> str:
    return f"/vc/practice/appointments/{appointment_id}/call"


def confirm_url(appointment_id: str) -> str:
    return f"/vc/practice/appointments/{appointment_id}/introductions"


def confirm(client, appointment_id: str, token: str | None):
    """As the call page's script does: JSON, the CSRF token in the header."""
    headers = {**JSON, **({"X-CSRFToken": token} if token else {})}
    return client.post(confirm_url(appointment_id), json={}, headers=headers)


def hint(page: str) -> str:
    """The line under the control: the hint, or when the introductions were confirmed."""
    match = re.search(r"data-introductions-hint>([^<]*)</p>", page)
    assert match, "the page has no introductions control"
    return match.group(1)


def confirmations(state) -> list[AuditEvent]:
    state.db.session.expire_all()
    return list(state.db.session.scalars(select(AuditEvent).where(AuditEvent.action == CONFIRMED)))


@pytest.fixture
def planned(host, people):
    return plan_soon(host, people)


def test_the_practitioner_confirms_once_and_the_event_names_nobody(app, host, people, clock, state, planned):
    appointment = planned.appointment
    client = signed_in(app, people.doc, clock)
    page = client.get(call_url(appointment.public_id), headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Everyone present has been introduced" in page
    assert hint(page) == "At the start, name everyone in the room on both sides, e.g. a relative or an assistant."
    assert 'aria-checked="false"' in page and "aria-disabled" not in page
    token = csrf_from(page)

    clock.advance(timedelta(minutes=4))  # 09:04 UTC, 10:04 in Berlin
    answer = confirm(client, appointment.public_id, token)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.json["confirmed_at"] == clock.now().isoformat() and answer.json["recorded"] is True
    assert re.fullmatch(r"10:04\WAM", answer.json["time"])  # Berlin time, in the reader's language
    [event] = confirmations(state)
    assert event.at == clock.now()
    assert (event.actor_kind, event.actor_id) == (ActorKind.PRACTITIONER.value, people.doc.id)
    assert event.organisation_id == people.doc.organisation_id == appointment.organisation_id
    assert event.subject == appointment.public_id
    assert event.details == {}

    # Again, later, by script and by the plain form: the first time stands, nothing new is written.
    clock.advance(timedelta(minutes=3))
    again = confirm(client, appointment.public_id, token)
    assert again.status_code == 200
    assert again.json == {**answer.json, "recorded": False}
    form = client.post(confirm_url(appointment.public_id), data={"csrf_token": token})
    assert form.status_code == 302 and form.headers["Location"].endswith(call_url(appointment.public_id))
    assert [e.id for e in confirmations(state)] == [event.id]

    # The call page now shows it as done, in German as well.
    page = client.get(call_url(appointment.public_id), headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert 'aria-checked="true"' in page and 'aria-disabled="true"' in page
    assert "10:04" in hint(page)


def test_without_a_valid_csrf_token_nothing_is_recorded(app, people, clock, state, planned):
    appointment_id = planned.appointment.public_id
    client = signed_in(app, people.doc, clock)
    client.get(call_url(appointment_id))  # the session's CSRF secret exists
    assert confirm(client, appointment_id, None).status_code == 400
    other = signed_in(app, people.colleague, clock)
    foreign_token = csrf_from(other.get("/vc/practice/").get_data(as_text=True))
    assert confirm(client, appointment_id, foreign_token).status_code == 400
    assert client.post(confirm_url(appointment_id), data={}).status_code == 400
    assert confirmations(state) == []


def patient_client(app, planned):
    """A browser with the patient's pass in our cookie (checked in with link and code)."""
    client = app.test_client()
    issued = planned.invitations[0]
    link = f"/vc/join/{issued.invitation.public_id}"
    token = csrf_from(client.get(link).get_data(as_text=True))
    checked = client.post(link, data={"csrf_token": token, "code": issued.code, "name": "Frau Test", "consent": "yes"})
    assert checked.status_code == 302, checked.get_data(as_text=True)
    return client, csrf_from(client.get("/vc/auth/sign-in").get_data(as_text=True))


def test_only_the_practitioner_who_holds_the_call_may_confirm(app, people, clock, state, planned):
    appointment_id = planned.appointment.public_id
    expected = {
        people.desk: 403,  # staff organise, never hold a call
        people.boss: 403,  # the admin of the same organisation, not this appointment's practitioner
        people.colleague: 404,  # another practitioner's appointment is not theirs to see
        people.south: 404,  # another organisation
    }
    for person, status in expected.items():
        client = signed_in(app, person, clock)
        token = csrf_from(client.get("/vc/practice/").get_data(as_text=True))
        # The call page answers them the same.
        assert client.get(call_url(appointment_id)).status_code == status, person.display_name
        assert confirm(client, appointment_id, token).status_code == status, person.display_name
        form = client.post(confirm_url(appointment_id), data={"csrf_token": token})
        assert form.status_code == status, person.display_name

    patient, patient_token = patient_client(app, planned)
    anonymous = app.test_client()
    anonymous_token = csrf_from(anonymous.get("/vc/auth/sign-in").get_data(as_text=True))
    for client, token in ((patient, patient_token), (anonymous, anonymous_token)):
        assert confirm(client, appointment_id, token).status_code == 401
        form = client.post(confirm_url(appointment_id), data={"csrf_token": token})
        assert form.status_code == 302 and "/vc/auth/sign-in" in form.headers["Location"]
    assert confirmations(state) == []


def test_an_appointment_that_is_over_cannot_be_confirmed(app, people, clock, state, planned):
    appointment_id = planned.appointment.public_id
    client = signed_in(app, people.doc, clock)
    token = csrf_from(client.get(call_url(appointment_id)).get_data(as_text=True))
    state.appointments.cancel(Principal.of(people.doc), appointment_id)
    assert confirm(client, appointment_id, token).status_code == 410
    with pytest.raises(AccessDenied):
        state.introductions.confirm(people.doc, state.appointments.get(Principal.of(people.doc), appointment_id))
    assert confirmations(state) == []


def test_the_report_counts_confirmed_and_ended_consultations_once_each(host, people, clock, state):
    session = state.db.session
    doc = Principal.of(people.doc)

    def ended(appointment) -> None:  # as WaitingRoom.end records it
        state.audit.record(
            "consultation.ended",
            Actor(ActorKind.PRACTITIONER, people.doc.id),
            organisation_id=appointment.organisation_id,
            subject=appointment.public_id,
        )
        session.commit()

    early, first, second, third = (plan_soon(host, people).appointment for _ in range(4))
    state.introductions.confirm(people.doc, early)
    ended(early)  # before the report's period: not counted
    clock.advance(timedelta(hours=1))
    since = clock.now()
    assert introductions_confirmed(session, since) == (0, 0)

    state.introductions.confirm(people.doc, first)  # at ``since`` exactly: counted
    clock.advance(timedelta(minutes=1))
    state.introductions.confirm(people.doc, first)  # a second confirmation writes nothing
    ended(first)
    ended(first)  # two events for one appointment count once
    ended(second)  # ended without a confirmation
    clock.advance(timedelta(minutes=5))
    state.introductions.confirm(people.doc, state.appointments.get(doc, third.public_id))  # confirmed, still running
    # Of the consultations ended since then (first, second), one had its introductions confirmed;
    # the third is still running and counts in neither number.
    assert introductions_confirmed(session, since) == (1, 2)
    assert introductions_confirmed(session, since, organisation_id=people.doc.organisation_id) == (1, 2)
    assert introductions_confirmed(session, since, organisation_id=people.south.organisation_id) == (0, 0)
    assert introductions_confirmed(session, clock.now()) == (0, 0)
    assert introductions_confirmed(session, since - timedelta(hours=1)) == (2, 3)
