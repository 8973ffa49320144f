"""A consultation ended for everyone: the patient's link says so, and its practitioner may reopen it.

On SQLite and PostgreSQL (``database_url``), with the fake clock. Reopening lets new check-ins
with the same link and code in; every pass from before the end stays void. The sockets of both
transports: tests/test_revocation.py; the whole journey in a browser: tests/browser/test_reopen.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.support.web import csrf, sign_in_as, vc_cookie
from vc_plugin import signals
from vc_plugin.core.models import AppointmentState, AuditEvent
from vc_plugin.domain.access import Principal
from vc_plugin.domain.appointments import AccessDenied, LinkState, PlanningError
from vc_plugin.domain.check_in import ParticipantPass
from vc_plugin.domain.inputs import AppointmentIn, ParticipantIn
from vc_plugin.domain.revocation import ALWAYS, Reason, Revocation, appointment_claim
from vc_plugin.domain.waiting_room import Staffer
from vc_plugin.web.identity import PASS_KEY

ENDED_EN = "Your practice has ended this consultation"
ENDED_DE = "Ihre Praxis hat diese Sprechstunde beendet"
AGAIN_EN = "this link and your access code will work again"
AGAIN_DE = "funktionieren dieser Link und Ihr Zugangscode wieder"


@pytest.fixture
def planned(state, people, clock):
    """Dr. Berg's appointment from 9:00 to 9:30 (the clock stands at 9:00)."""
    start = clock.now()
    return state.appointments.plan(
        Principal.of(people.doc),
        AppointmentIn(
            starts_at=start, ends_at=start + timedelta(minutes=30), kind="single", participants=[ParticipantIn()]
        ),
    )


def check_in(client, issued, lang="en"):
    link = f"/vc/join/{issued.invitation.public_id}"
    return client.post(
        link,
        data={"csrf_token": csrf(client, link), "code": issued.code, "name": "Frau Test", "consent": "yes"},
        headers={"Accept-Language": lang},
    )


def end_for_everyone(state, people, planned):
    """What "End for everyone" on the call page does (the socket's `end` command)."""
    state.waiting_room.room_for(planned.appointment)
    state.waiting_room.end(Staffer.of(people.doc), planned.appointment.public_id)
    state.db.session.expire_all()


def held_pass(client) -> ParticipantPass:
    with vc_cookie(client) as session:
        found = ParticipantPass.from_dict(session[PASS_KEY])
    assert found is not None
    return found


def audit_count(state, action):
    return len(state.db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all())


@pytest.mark.parametrize(("lang", "ended", "again"), [("en", ENDED_EN, AGAIN_EN), ("de", ENDED_DE, AGAIN_DE)])
def test_the_link_of_an_ended_consultation_says_the_practice_ended_it(
    app, state, people, planned, clock, lang, ended, again
):
    issued = planned.invitations[0]
    patient = app.test_client()
    assert check_in(patient, issued, lang).status_code == 302
    clock.advance(timedelta(minutes=5))
    end_for_everyone(state, people, planned)
    for path in (f"/vc/join/{issued.invitation.public_id}", f"/vc/join/{issued.invitation.public_id}/room"):
        page = patient.get(path, headers={"Accept-Language": lang}, follow_redirects=True)
        text = page.get_data(as_text=True)
        assert page.status_code == 410 and ended in text and again in text, text
        assert "expired" not in text and "abgelaufen" not in text and "vorbei" not in text
    # Past the planned end plus grace it is the usual expiry: the end is no longer news.
    clock.set(planned.appointment.ends_at + timedelta(minutes=state.settings.join_grace_minutes, seconds=1))
    late = patient.get(f"/vc/join/{issued.invitation.public_id}", headers={"Accept-Language": lang})
    assert late.status_code == 410 and ended not in late.get_data(as_text=True)


def test_a_check_in_attempt_after_the_end_answers_a_code_of_its_own(app, state, people, planned, clock):
    issued = planned.invitations[0]
    client = app.test_client()
    link = f"/vc/join/{issued.invitation.public_id}"
    token = csrf(client, link)  # the form was open before the end
    end_for_everyone(state, people, planned)
    fields = {"csrf_token": token, "code": issued.code, "name": "Frau Test", "consent": "yes"}
    answer = client.post(link, data=fields, headers={"Accept": "application/json"})
    assert answer.status_code == 410 and answer.get_json() == {"error": "ended"}
    form = client.post(link, data=fields, headers={"Accept-Language": "en"})
    assert form.status_code == 410 and ENDED_EN in form.get_data(as_text=True)
    # The negative: a cancelled appointment and an expired link keep their own codes.
    clock.set(planned.appointment.ends_at + timedelta(minutes=state.settings.join_grace_minutes, seconds=1))
    assert client.post(link, data=fields, headers={"Accept": "application/json"}).get_json() == {"error": "expired"}


def test_reopening_lets_the_same_link_and_code_in_again_but_no_pass_from_before(app, state, people, planned, clock):
    issued = planned.invitations[0]
    before = app.test_client()
    assert check_in(before, issued).status_code == 302
    old_pass = held_pass(before)
    clock.advance(timedelta(minutes=5))
    end_for_everyone(state, people, planned)
    assert state.appointments.link_state(issued.invitation) is LinkState.ENDED
    doctor = app.test_client()
    sign_in_as(doctor, people.doc, clock.now().timestamp())
    page = f"/vc/practice/appointments/{planned.appointment.public_id}"
    offer = doctor.get(page, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "data-reopen" in offer and "Open the consultation again" in offer
    clock.advance(timedelta(minutes=1))
    heard: list[dict[str, str]] = []
    with signals.consultation_reopened.connected_to(lambda _app, **payload: heard.append(payload)):
        for _ in range(2):  # idempotent: the second one changes, records and announces nothing
            reopened = doctor.post(f"{page}/reopen", data={"csrf_token": csrf(doctor, page)})
            assert reopened.status_code == 302 and reopened.headers["Location"].endswith(page)
    state.db.session.expire_all()
    assert planned.appointment.state is AppointmentState.PLANNED and audit_count(state, "consultation.reopened") == 1
    # A case tool that recorded the end hears of the reopening too (and a webhook, see docs/integration.md).
    assert heard == [{"appointment_id": planned.appointment.public_id, "practitioner_id": people.doc.public_id}]
    assert "data-reopen" not in doctor.get(page).get_data(as_text=True)
    # The pass from before the end opens nothing, not even after the names came back in presence.
    assert state.check_in.valid_record(old_pass) is None
    assert before.get(f"/vc/join/{issued.invitation.public_id}/room").status_code == 302
    # The same link and code check in anew; the new pass works.
    after = app.test_client()
    assert check_in(after, issued).status_code == 302
    assert after.get(f"/vc/join/{issued.invitation.public_id}/room").status_code == 200
    assert state.check_in.valid_record(held_pass(after)) is not None
    assert state.check_in.valid_record(old_pass) is None
    # A cookie from before passes had an issue time counts as older than any end.
    legacy = {k: v for k, v in held_pass(after).as_dict().items() if k != "issued_at"}
    assert state.check_in.valid_record(ParticipantPass.from_dict(legacy)) is None  # type: ignore[arg-type]


def test_a_pass_that_never_saw_an_end_is_not_affected(app, state, planned):
    patient = app.test_client()
    assert check_in(patient, planned.invitations[0]).status_code == 302
    legacy = {k: v for k, v in held_pass(patient).as_dict().items() if k != "issued_at"}
    assert state.check_in.valid_record(ParticipantPass.from_dict(legacy)) is not None  # type: ignore[arg-type]


def test_the_call_page_offers_reopening_right_after_the_end(app, state, people, planned, clock):
    doctor = app.test_client()
    sign_in_as(doctor, people.doc, clock.now().timestamp())
    call = f"/vc/practice/appointments/{planned.appointment.public_id}/call"
    page = doctor.get(call).get_data(as_text=True)
    assert 'name="then" value="call"' in page and "data-reopen" in page  # hidden until the end
    end_for_everyone(state, people, planned)
    # A reload of the ended call goes to the appointment page, which offers it too.
    reload = doctor.get(call)
    assert reload.status_code == 302 and reload.headers["Location"].endswith(planned.appointment.public_id)
    back = doctor.post(
        f"{call.removesuffix('/call')}/reopen",
        data={"csrf_token": csrf(doctor, call.removesuffix("/call")), "then": "call"},
    )
    assert back.status_code == 302 and back.headers["Location"].endswith("/call")
    assert doctor.get(call).status_code == 200


def test_reopening_needs_the_csrf_token(app, state, people, planned, clock):
    end_for_everyone(state, people, planned)
    doctor = app.test_client()
    sign_in_as(doctor, people.doc, clock.now().timestamp())
    answer = doctor.post(f"/vc/practice/appointments/{planned.appointment.public_id}/reopen")
    assert answer.status_code == 400
    state.db.session.expire_all()
    assert planned.appointment.state is AppointmentState.ENDED


@pytest.mark.parametrize(("who", "status"), [("desk", 403), ("boss", 403), ("colleague", 404), ("south", 404)])
def test_only_who_may_end_it_reopens_it(app, state, people, planned, clock, who, status):
    end_for_everyone(state, people, planned)
    person = getattr(people, who)
    client = app.test_client()
    sign_in_as(client, person, clock.now().timestamp())
    page = f"/vc/practice/appointments/{planned.appointment.public_id}"
    if status != 404:
        assert "data-reopen" not in client.get(page).get_data(as_text=True)
    answer = client.post(f"{page}/reopen", data={"csrf_token": csrf(client, "/vc/practice/")})
    assert answer.status_code == status
    state.db.session.expire_all()
    assert planned.appointment.state is AppointmentState.ENDED and audit_count(state, "consultation.reopened") == 0


def test_after_the_links_expire_the_end_stands(app, state, people, planned, clock):
    end_for_everyone(state, people, planned)
    clock.set(planned.appointment.ends_at + timedelta(minutes=state.settings.join_grace_minutes, seconds=1))
    doctor = app.test_client()
    sign_in_as(doctor, people.doc, clock.now().timestamp())
    page = f"/vc/practice/appointments/{planned.appointment.public_id}"
    assert "data-reopen" not in doctor.get(page).get_data(as_text=True)
    answer = doctor.post(f"{page}/reopen", data={"csrf_token": csrf(doctor, page)})
    assert answer.status_code == 409 and "kann nicht mehr wieder geöffnet werden" in answer.get_data(as_text=True)
    state.db.session.expire_all()
    assert planned.appointment.state is AppointmentState.ENDED
    # One second earlier it still worked: the boundary is the links' own expiry.
    clock.set(planned.appointment.ends_at + timedelta(minutes=state.settings.join_grace_minutes))
    assert (
        state.appointments.reopen(Principal.of(people.doc), planned.appointment.public_id).state
        is AppointmentState.PLANNED
    )


def test_a_cancelled_appointment_cannot_be_reopened(state, people, planned):
    state.appointments.cancel(Principal.of(people.doc), planned.appointment.public_id)
    with pytest.raises(PlanningError):
        state.appointments.reopen(Principal.of(people.doc), planned.appointment.public_id)
    with pytest.raises(AccessDenied):
        state.appointments.reopen(Principal.of(people.desk), planned.appointment.public_id)
    assert planned.appointment.state is AppointmentState.CANCELLED


def test_a_second_end_keeps_the_first_moment(state, people, planned, clock):
    """Ending twice must not move the tombstone past what later sockets claim."""
    end_for_everyone(state, people, planned)
    first = planned.appointment.ended_at
    clock.advance(timedelta(minutes=2))
    end_for_everyone(state, people, planned)
    assert planned.appointment.ended_at == first
    assert state.bus.revoked_reason([appointment_claim(planned.appointment.public_id, first.timestamp())]) is None
    assert state.bus.revoked_reason([appointment_claim(planned.appointment.public_id, None)]) == "ended"


def test_an_appointment_claim_since_the_last_end():
    end = Revocation(("a:x",), 1000.0, Reason.ENDED)
    assert end.hits([appointment_claim("x", None)])  # a socket from before the end
    assert appointment_claim("x", None).since == ALWAYS
    assert not end.hits([appointment_claim("x", 1000.0)])  # opened after the reopening
    assert Revocation(("a:x",), 1000.5, Reason.ENDED).hits([appointment_claim("x", 1000.0)])  # the next end
    assert not end.hits([appointment_claim("y", None)])
