"""Planning through the server-rendered pages, as a practitioner and as staff."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from tests.support.web import csrf, csrf_from, sign_in_as
from vc_plugin.core.models import Appointment, Delivery, Invitation


def signed_in(app, person, clock):
    client = app.test_client()
    sign_in_as(client, person, clock.now().timestamp())
    return client


def plan_form(client, clock, **fields):
    local = (clock.now() + timedelta(days=1)).astimezone()
    form = {
        "csrf_token": csrf(client, "/vc/practice/appointments/new"),
        "date": local.strftime("%Y-%m-%d"),
        "time": "10:00",
        "duration": "30",
        "kind": "single",
        "label": "Kontrolle",
        "p0-kind": "patient",
        "p0-language": "de",
        "p0-email": "",
    }
    form.update(fields)
    return client.post("/vc/practice/appointments/new", data=form, headers={"Accept-Language": "en"})


def test_practitioner_plans_and_sees_the_codes_once(app, people, clock, state):
    client = signed_in(app, people.doc, clock)
    response = plan_form(client, clock)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Access codes" in page
    assert response.headers["Cache-Control"] == "no-store"
    invitation = state.db.session.scalars(select(Invitation)).one()
    assert f"/vc/join/{invitation.public_id}#code=" in page
    appointment = invitation.appointment
    detail = client.get(f"/vc/practice/appointments/{appointment.public_id}", headers={"Accept-Language": "en"})
    text = detail.get_data(as_text=True)
    assert detail.status_code == 200 and "Kontrolle" in text
    assert "#code=" not in text  # the code is not shown again
    listing = client.get("/vc/practice/appointments").get_data(as_text=True)
    assert appointment.public_id in listing


def test_errors_are_shown_per_field_in_german(app, people, clock):
    client = signed_in(app, people.doc, clock)
    response = plan_form(client, clock, **{"p0-email": "kaputt", "date": ""})
    assert response.status_code == 422
    response = client.post(
        "/vc/practice/appointments/new",
        data={
            "csrf_token": csrf(client, "/vc/practice/appointments/new"),
            "date": (clock.now() + timedelta(days=1)).strftime("%Y-%m-%d"),
            "time": "10:00",
            "duration": "30",
            "p0-email": "kaputt",
        },
        headers={"Accept-Language": "de"},
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "keine gültige E-Mail-Adresse" in page
    assert 'aria-invalid="true"' in page
    # Odd values are form errors, not server errors.
    for odd in ({"duration": "²"}, {"date": "9999-12-31", "time": "23:30"}, {"date": "0001-01-01", "time": "00:10"}):
        response = plan_form(client, clock, **odd)
        assert response.status_code in {200, 422}, odd


def test_staff_plan_for_a_practitioner_and_cannot_reach_another_organisation(app, people, clock, state):
    client = signed_in(app, people.desk, clock)
    page = client.get("/vc/practice/appointments/new").get_data(as_text=True)
    assert people.doc.public_id in page and people.south.public_id not in page and people.desk.public_id not in page
    assert plan_form(client, clock, practitioner=people.south.public_id).status_code == 422
    assert plan_form(client, clock, practitioner=people.doc.public_id).status_code == 200
    appointment = state.db.session.scalars(select(Appointment)).one()
    assert appointment.practitioner_id == people.doc.id
    other = signed_in(app, people.south, clock)
    assert other.get(f"/vc/practice/appointments/{appointment.public_id}").status_code == 404
    colleague = signed_in(app, people.colleague, clock)
    assert colleague.get(f"/vc/practice/appointments/{appointment.public_id}").status_code == 404


def test_add_participant_resend_cancel_delete(app, people, clock, state):
    client = signed_in(app, people.doc, clock)
    plan_form(client, clock, **{"p0-email": "a@example.org"})
    appointment = state.db.session.scalars(select(Appointment)).one()
    detail_url = f"/vc/practice/appointments/{appointment.public_id}"
    token = csrf_from(client.get(detail_url).get_data(as_text=True))
    added = client.post(
        f"{detail_url}/participants",
        data={"csrf_token": token, "p0-kind": "interpreter", "p0-language": "en", "p0-email": ""},
        headers={"Accept-Language": "en"},
    )
    assert added.status_code == 200 and "Access codes" in added.get_data(as_text=True)
    first = appointment.invitations[0]
    resend = client.post(f"/vc/practice/invitations/{first.public_id}/resend", data={"csrf_token": token, "email": ""})
    assert resend.status_code == 422  # no stored address and none given
    resend = client.post(
        f"/vc/practice/invitations/{first.public_id}/resend", data={"csrf_token": token, "email": "not-an-address"}
    )
    assert resend.status_code == 422 and "email" in resend.get_data(as_text=True).lower()
    resend = client.post(
        f"/vc/practice/invitations/{first.public_id}/resend", data={"csrf_token": token, "email": "b@example.org"}
    )
    assert resend.status_code == 200
    state.db.session.expire_all()
    assert state.db.session.get(Invitation, first.id).delivery in {Delivery.QUEUED, Delivery.SENT}
    assert client.post(f"{detail_url}/cancel", data={"csrf_token": token}).status_code == 302
    assert client.post(f"{detail_url}/delete", data={"csrf_token": token}).status_code == 302
    assert state.db.session.scalar(select(func.count()).select_from(Appointment)) == 0


def test_forms_without_csrf_token_change_nothing(app, people, clock, state):
    client = signed_in(app, people.doc, clock)
    response = client.post("/vc/practice/appointments/new", data={"date": "2030-01-01", "time": "10:00"})
    assert response.status_code == 400
    assert state.db.session.scalar(select(func.count()).select_from(Appointment)) == 0


def test_join_link_states(app, people, clock, state, host):
    from vc_plugin.domain.access import Principal
    from vc_plugin.domain.inputs import AppointmentIn

    start = clock.now() + timedelta(days=2)
    planned = state.appointments.plan(
        Principal.of(people.doc), AppointmentIn(starts_at=start, ends_at=start + timedelta(minutes=30))
    )
    link = f"/vc/join/{planned.invitations[0].invitation.public_id}"
    client = app.test_client()
    early = client.get(link, headers={"Accept-Language": "en"})
    assert early.status_code == 200 and "Your appointment starts on" in early.get_data(as_text=True)
    clock.advance(timedelta(days=2))
    assert "Check in" in client.get(link, headers={"Accept-Language": "en"}).get_data(as_text=True)
    clock.advance(timedelta(hours=2))
    assert client.get(link).status_code == 410
    assert client.get("/vc/join/unknown-id").status_code == 404


def test_the_plan_form_opens_further_participants_only_when_one_was_filled_in(app, people, clock):
    client = signed_in(app, people.doc, clock)
    page = client.get("/vc/practice/appointments/new", headers={"Accept-Language": "en"}).get_data(as_text=True)
    before, _, inside = page.partition('<details class="vc-more-participants">')
    assert (
        before.count('<fieldset class="vc-participant">') == 1
        and inside.count('<fieldset class="vc-participant">') >= 1
    )
    # A second participant with a wrong address: the form comes back with that row open and marked.
    again = plan_form(client, clock, **{"p1-email": "not-an-address"}).get_data(as_text=True)
    assert '<details class="vc-more-participants" open>' in again
    assert 'id="p1-email" name="p1-email" value="not-an-address"' in again
