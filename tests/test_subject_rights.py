"""Data-subject rights: export (Art. 15, 20), deletion (Art. 17), a practitioner who leaves,
crypto-shredding, and the patient's own privacy receipt."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from tests.support.web import csrf, csrf_from, sign_in_as
from vc_plugin.core.models import Appointment, AuditEvent, ConsentRecord, Invitation, Practitioner
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import AppointmentIn, ParticipantIn
from vc_plugin.domain.subject_rights import EXPORT_FORMAT, UNREADABLE

EMAIL = "anna.schmidt@example.org"
PHONE = "+491701234567"
LABEL = "Nachsorge Knie links"


def plan(state, people, *, planner=None, practitioner=None, participants=2):
    start = state.clock.now() + timedelta(minutes=10)
    planned = state.appointments.plan(
        Principal.of(planner or people.doc),
        AppointmentIn(
            practitioner=practitioner,
            starts_at=start,
            ends_at=start + timedelta(minutes=30),
            kind="group",
            label=LABEL,
            participants=[
                ParticipantIn(email=EMAIL, phone=PHONE, store_contact=True, language="de"),
                *[ParticipantIn(kind="interpreter")] * (participants - 1),
            ],
        ),
    )
    assert state.jobs.wait_idle(), "the invitation mail (console) is written before the test reads output"
    return planned


def checked_in(app, issued, name="Frau Schmidt"):
    client = app.test_client()
    link = f"/vc/join/{issued.invitation.public_id}"
    response = client.post(
        link, data={"csrf_token": csrf(client, link), "code": issued.code, "name": name, "consent": "yes"}
    )
    assert response.status_code == 302
    return client


def pii_free(event: AuditEvent) -> bool:
    text = json.dumps([event.action, event.subject, event.details])
    return all(secret not in text for secret in (EMAIL, PHONE, LABEL, "Schmidt"))


def test_export_holds_everything_stored_and_says_what_is_not(app, state, people, clock):
    planned = plan(state, people)
    checked_in(app, planned.invitations[0])
    client = app.test_client()
    sign_in_as(client, people.doc, clock.now().timestamp())
    response = client.get(f"/vc/practice/appointments/{planned.appointment.public_id}/export")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    document = response.get_json()
    assert document["format"] == EXPORT_FORMAT
    appointment = document["appointment"]
    assert appointment["id"] == planned.appointment.public_id and appointment["label"] == LABEL
    assert appointment["practitioner"]["display_name"] == "Dr. Maria Berg"
    assert appointment["delete_after"] == (planned.appointment.ends_at + timedelta(days=90)).isoformat()
    first, second = document["participants"]
    assert first["contact"] == {"email": EMAIL, "phone": PHONE} and second["contact"] is None
    assert [c["kind"] for c in first["consents"]] == ["participation"] and second["consents"] == []
    assert first["consents"][0]["text_version"] == "2026-11"
    assert "code_hash" not in json.dumps(document), "the code hash is not handed out"
    assert any("IP addresses" in line for line in document["not_stored"])
    assert {e["action"] for e in document["audit_events"]} >= {"appointment.planned"}
    # The export itself is audited, without personal data.
    event = state.db.session.scalars(select(AuditEvent).where(AuditEvent.action == "appointment.exported")).one()
    assert pii_free(event)


def test_one_participant_is_exported_and_deleted_through_the_api(app, state, people):
    planned = plan(state, people)
    _, token = state.api_tokens.create("praxis-nord", "case tool")
    _, foreign = state.api_tokens.create("praxis-sued", "other tool")
    target = planned.invitations[0].invitation.public_id
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    exported = client.get(f"/vc/api/v1/invitations/{target}/export", headers=auth)
    assert exported.status_code == 200
    assert exported.get_json()["participant"]["contact"]["email"] == EMAIL
    assert "label" not in exported.get_json()["appointment"], "a participant's export leaves out the practice's note"
    other = {"Authorization": f"Bearer {foreign}"}
    assert client.get(f"/vc/api/v1/invitations/{target}/export", headers=other).status_code == 404
    assert client.delete(f"/vc/api/v1/invitations/{target}", headers=other).status_code == 404
    assert client.delete(f"/vc/api/v1/invitations/{target}", headers=auth).status_code == 204
    assert client.delete(f"/vc/api/v1/invitations/{target}", headers=auth).status_code == 404
    state.db.session.expire_all()
    assert state.db.session.scalar(select(func.count()).select_from(Invitation)) == 1
    assert state.appointments.invitation_by_public_id(target) is None
    event = state.db.session.scalars(select(AuditEvent).where(AuditEvent.action == "invitation.deleted")).one()
    assert pii_free(event) and event.subject == planned.appointment.public_id


def test_deleting_a_participant_on_the_page_needs_the_organiser_and_a_csrf_token(app, state, people, clock):
    planned = plan(state, people)
    checked_in(app, planned.invitations[0])
    target = planned.invitations[0].invitation.public_id
    url = f"/vc/practice/invitations/{target}/delete"
    stranger = app.test_client()
    sign_in_as(stranger, people.south, clock.now().timestamp())
    assert stranger.post(url, data={"csrf_token": csrf(stranger, "/vc/practice/")}).status_code == 404
    client = app.test_client()
    sign_in_as(client, people.desk, clock.now().timestamp())
    page = client.get(f"/vc/practice/appointments/{planned.appointment.public_id}")
    assert page.status_code == 200 and "Export" in page.get_data(as_text=True)
    assert client.post(url).status_code == 400, "no CSRF token, nothing deleted"
    assert state.appointments.invitation_by_public_id(target) is not None
    response = client.post(url, data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert response.status_code == 302
    state.db.session.expire_all()
    assert state.appointments.invitation_by_public_id(target) is None
    assert state.db.session.scalar(select(func.count()).select_from(ConsentRecord)) == 0


def test_a_practitioner_who_leaves_takes_their_appointments_with_them(app, state, people, clock):
    own = plan(state, people)
    for_colleague = plan(state, people, planner=people.desk, practitioner=people.colleague.public_id)
    also_own = plan(state, people, planner=people.desk, practitioner=people.doc.public_id)
    assert {own.appointment.practitioner_id, also_own.appointment.practitioner_id} == {people.doc.id}
    client = app.test_client()
    sign_in_as(client, people.boss, clock.now().timestamp())
    page = client.get("/vc/admin/").get_data(as_text=True)
    assert "Dr. Maria Berg" in page
    url = f"/vc/admin/people/{people.doc.public_id}/delete"
    assert client.post(url, data={"csrf_token": csrf_from(page)}).status_code == 302
    state.db.session.expire_all()
    remaining = state.db.session.scalars(select(Appointment.public_id)).all()
    assert remaining == [for_colleague.appointment.public_id]
    assert state.db.session.scalars(select(Practitioner).where(Practitioner.subject == "doc")).first() is None
    event = state.db.session.scalars(select(AuditEvent).where(AuditEvent.action == "practitioner.deleted")).one()
    assert event.details == {"appointments": 2, "invitations": 4} and pii_free(event)
    # Nobody of another organisation is reachable; an admin cannot delete themselves; staff are no admins.
    token = {"csrf_token": csrf_from(page)}
    assert client.post(f"/vc/admin/people/{people.south.public_id}/delete", data=token).status_code == 404
    assert client.post(f"/vc/admin/people/{people.boss.public_id}/delete", data=token).status_code == 409
    staff = app.test_client()
    sign_in_as(staff, people.desk, clock.now().timestamp())
    staff_token = {"csrf_token": csrf(staff, "/vc/practice/")}
    assert staff.post(f"/vc/admin/people/{people.colleague.public_id}/delete", data=staff_token).status_code == 403


def test_operator_cli_exports_removes_and_shreds(app, state, people):
    planned = plan(state, people)
    appointment_id = planned.appointment.public_id
    runner = app.test_cli_runner()
    exported = runner.invoke(args=["vc", "export", appointment_id])
    assert exported.exit_code == 0 and json.loads(exported.output)["appointment"]["label"] == LABEL
    assert runner.invoke(args=["vc", "export", "nope"]).exit_code != 0

    shredded = runner.invoke(args=["vc", "shred-organisation", "praxis-nord", "--yes"])
    assert shredded.exit_code == 0 and "Destroyed 1 data key" in shredded.output
    state.db.session.expire_all()
    document = json.loads(runner.invoke(args=["vc", "export", appointment_id]).output)
    assert document["appointment"]["label"] == UNREADABLE
    assert document["participants"][0]["contact"] == UNREADABLE

    removed = runner.invoke(args=["vc", "remove-practitioner", people.doc.public_id, "--yes"])
    assert removed.exit_code == 0 and "1 appointment(s)" in removed.output
    assert state.db.session.scalar(select(func.count()).select_from(Appointment)) == 0


def test_the_patient_sees_what_is_stored_and_until_when(app, state, people):
    planned = plan(state, people)
    issued = planned.invitations[0]
    receipt_url = f"/vc/join/{issued.invitation.public_id}/privacy"
    assert app.test_client().get(receipt_url).status_code == 302, "only after check-in"
    client = checked_in(app, issued, name="Frau Quittung")
    page = client.get(receipt_url, headers={"Accept-Language": "de"})
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Was zu diesem Termin gespeichert ist" in text and "Frau Quittung" in text
    deletion = planned.appointment.ends_at + timedelta(days=90)
    assert deletion.astimezone(state.settings.zone).strftime("%Y") in text
    assert "Teilnahme an der Videosprechstunde" in text and "von der Praxis verschlüsselt gespeichert" in text
    assert EMAIL not in text and PHONE not in text, "the receipt shows that contact data is stored, not the data"
    other = f"/vc/join/{planned.invitations[1].invitation.public_id}/privacy"
    assert client.get(other).status_code == 302, "a pass for one invitation shows nothing of another"
