"""Planning rules, validity windows and deletion, through the domain and the Python API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from vc_plugin import signals
from vc_plugin.core.crypto import verify_code
from vc_plugin.core.models import Appointment, AuditEvent, ConsentRecord, Delivery, Invitation
from vc_plugin.domain.access import Principal
from vc_plugin.domain.appointments import LinkState, NotFound, PlanningError, suggested_start
from vc_plugin.domain.inputs import AppointmentIn, ParticipantIn, RescheduleIn


def request(clock, minutes_from_now=60, duration=30, **extra) -> AppointmentIn:
    start = clock.now() + timedelta(minutes=minutes_from_now)
    return AppointmentIn(starts_at=start, ends_at=start + timedelta(minutes=duration), **extra)


def test_a_practitioner_plans_for_themselves(state, people, clock):
    planned = state.appointments.plan(Principal.of(people.doc), request(clock, label="Frau M., Kontrolle"))
    appointment = planned.appointment
    [issued] = planned.invitations
    assert appointment.practitioner_id == people.doc.id
    assert appointment.delete_after == appointment.ends_at + timedelta(days=90)
    assert "Frau" not in (appointment.label_encrypted or "")
    assert state.appointments.label(appointment) == "Frau M., Kontrolle"
    assert issued.invitation.delivery is Delivery.NOT_SENT  # no address given
    assert verify_code(issued.code, issued.invitation.code_hash)
    assert issued.link.endswith(f"/vc/join/{issued.invitation.public_id}#code={issued.code}")
    assert issued.code.replace("-", "") not in issued.invitation.code_hash


def test_staff_plan_for_practitioners_of_their_organisation(state, people, clock):
    planned = state.appointments.plan(Principal.of(people.desk), request(clock, practitioner=people.doc.public_id))
    assert planned.appointment.practitioner_id == people.doc.id
    assert planned.appointment.created_by_id == people.desk.id
    with pytest.raises(PlanningError, match="choose the practitioner"):
        state.appointments.plan(Principal.of(people.desk), request(clock))


@pytest.mark.parametrize(
    ("actor", "target", "message"),
    [
        ("desk", "south", "unknown practitioner"),  # staff of A for a practitioner of B
        ("doc", "colleague", "unknown practitioner"),  # practitioners plan only for themselves
        ("boss", "desk", "unknown practitioner"),  # staff never hold calls
        ("doc", "nobody", "unknown practitioner"),
    ],
)
def test_planning_for_the_wrong_practitioner_is_refused(state, people, clock, actor, target, message):
    target_id = getattr(people, target).public_id if target != "nobody" else "does-not-exist"
    with pytest.raises(PlanningError, match=message):
        state.appointments.plan(Principal.of(getattr(people, actor)), request(clock, practitioner=target_id))
    assert state.db.session.scalar(select(func.count()).select_from(Appointment)) == 0


def test_times_are_checked(state, people, clock):
    me = Principal.of(people.doc)
    with pytest.raises(PlanningError, match="in the past"):
        state.appointments.plan(me, request(clock, minutes_from_now=-30))
    with pytest.raises(ValidationError, match="end must be after the start"):
        request(clock, duration=-10)
    with pytest.raises(ValidationError, match="at most 8 hours"):
        request(clock, duration=9 * 60)
    start = clock.now().replace(tzinfo=None)
    with pytest.raises(ValidationError, match="time zone offset"):
        AppointmentIn(starts_at=start, ends_at=start + timedelta(minutes=5))


def test_fields_are_bounded_and_checked():
    with pytest.raises(ValidationError, match="at most 200 characters"):
        AppointmentIn.model_validate(
            {"starts_at": "2030-01-01T10:00:00+01:00", "ends_at": "2030-01-01T10:30:00+01:00", "label": "x" * 201}
        )
    for email in ("not-an-address", "a@b", "jane@@example.org", "x" * 250 + "@example.org"):
        with pytest.raises(ValidationError):
            ParticipantIn(email=email)
    with pytest.raises(ValidationError, match="international format"):
        ParticipantIn(email="a@example.org", phone="0301234")
    assert ParticipantIn(phone="0049 30 123 4567").phone == "+49301234567"
    with pytest.raises(ValidationError, match="needs a phone number"):
        ParticipantIn(email="a@example.org", code_by_sms=True)
    with pytest.raises(ValidationError, match="Extra inputs"):
        ParticipantIn.model_validate({"email": "a@example.org", "name": "Max"})


def test_participant_limits(state, people, clock):
    me = Principal.of(people.doc)
    with pytest.raises(ValidationError, match="one patient"):
        request(clock, participants=[ParticipantIn(), ParticipantIn()])
    group = state.appointments.plan(me, request(clock, kind="group", participants=[ParticipantIn()] * 5))
    assert len(group.invitations) == 5
    with pytest.raises(PlanningError, match="at most 5 invitations"):
        state.appointments.add_participant(me, group.appointment.public_id, ParticipantIn())
    single = state.appointments.plan(me, request(clock))
    interpreter = state.appointments.add_participant(
        me, single.appointment.public_id, ParticipantIn(kind="interpreter", language="en")
    )
    assert interpreter.invitation.kind.value == "interpreter" and interpreter.invitation.language == "en"


def test_link_is_valid_from_planning_until_end_plus_grace(state, people, clock):
    planned = state.appointments.plan(Principal.of(people.doc), request(clock, minutes_from_now=24 * 60))
    invitation = planned.invitations[0].invitation
    assert state.appointments.link_state(invitation) is LinkState.NOT_YET_OPEN
    clock.advance(timedelta(hours=23, minutes=31))  # the waiting room opens 30 minutes before
    assert state.appointments.link_state(invitation) is LinkState.OPEN
    clock.advance(timedelta(minutes=29 + 30 + 30))  # start + 30 min duration + 30 min grace
    assert state.appointments.link_state(invitation) is LinkState.OPEN
    clock.advance(timedelta(minutes=1, seconds=1))
    assert state.appointments.link_state(invitation) is LinkState.EXPIRED


def test_cancel_reschedule_and_permissions(state, people, clock):
    planned = state.appointments.plan(Principal.of(people.doc), request(clock))
    appointment_id = planned.appointment.public_id
    with pytest.raises(NotFound):
        state.appointments.get(Principal.of(people.colleague), appointment_id)
    with pytest.raises(NotFound):
        state.appointments.cancel(Principal.of(people.south), appointment_id)
    later = clock.now() + timedelta(days=2)
    moved = state.appointments.reschedule(
        Principal.of(people.desk), appointment_id, RescheduleIn(starts_at=later, ends_at=later + timedelta(hours=1))
    )
    assert moved.starts_at == later and moved.delete_after == later + timedelta(hours=1, days=90)
    state.appointments.cancel(Principal.of(people.doc), appointment_id)
    assert state.appointments.link_state(planned.invitations[0].invitation) is LinkState.CANCELLED
    with pytest.raises(PlanningError, match="cancelled"):
        state.appointments.reschedule(
            Principal.of(people.doc), appointment_id, RescheduleIn(starts_at=later, ends_at=later + timedelta(hours=1))
        )


def test_delete_removes_everything_and_audits_without_personal_data(state, people, clock):
    planned = state.appointments.plan(
        Principal.of(people.doc),
        request(
            clock,
            label="Herr Schmidt",
            participants=[ParticipantIn(email="schmidt@example.org", store_contact=True)],
        ),
    )
    appointment = planned.appointment
    state.db.session.add(
        ConsentRecord(
            appointment_id=appointment.id,
            invitation_id=planned.invitations[0].invitation.id,
            kind="participation",
            text_version="2026-11",
            language="de",
            given_at=clock.now(),
        )
    )
    state.db.session.commit()
    state.appointments.delete(Principal.of(people.doc), appointment.public_id)
    session = state.db.session
    for model in (Appointment, Invitation, ConsentRecord):
        assert session.scalar(select(func.count()).select_from(model)) == 0
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [e.action for e in events][-1] == "appointment.deleted"
    assert events[-1].details == {"invitations": 1, "consents": 1}
    dump = repr([(e.action, e.subject, e.details, e.actor_kind) for e in events])
    assert "Schmidt" not in dump and "example.org" not in dump


def test_signals_carry_ids_only(state, people, clock):
    received = []

    def remember(sender, **payload):
        received.append(payload)

    with signals.appointment_created.connected_to(remember), signals.appointment_deleted.connected_to(remember):
        planned = state.appointments.plan(Principal.of(people.doc), request(clock, label="Geheim"))
        state.appointments.delete(Principal.of(people.doc), planned.appointment.public_id)
    assert received[0]["appointment_id"] == planned.appointment.public_id
    assert received[0]["practitioner_id"] == people.doc.public_id
    assert received[1] == {"appointment_id": planned.appointment.public_id}
    assert "Geheim" not in repr(received)


def test_python_api(host, state, people, clock):
    start = clock.now() + timedelta(hours=2)
    planned = host.vc.create_appointment(
        practitioner=people.doc.public_id, starts_at=start, ends_at=start + timedelta(minutes=20)
    )
    appointment_id = planned.appointment.public_id
    assert host.vc.get_appointment(appointment_id).starts_at == start
    assert [a.public_id for a in host.vc.list_appointments(organisation="praxis-nord")] == [appointment_id]
    assert host.vc.list_appointments(organisation="praxis-sued") == []
    [first] = planned.invitations
    events = []
    with signals.invitation_queued.connected_to(lambda _, **p: events.append(("queued", p))):
        resent = host.vc.send_invitation(first.invitation.public_id, email="neu@example.org", language="en")
    assert resent.code != first.code and not verify_code(first.code, resent.invitation.code_hash)
    assert events == [("queued", {"appointment_id": appointment_id, "invitation_id": first.invitation.public_id})]
    assert state.jobs.wait_idle()
    with pytest.raises(NotFound):
        host.vc.send_invitation("nope", email="neu@example.org")
    exported = host.vc.export_appointment(appointment_id)
    assert exported["appointment"]["id"] == appointment_id and len(exported["participants"]) == 1
    host.vc.delete_participant(first.invitation.public_id)
    assert host.vc.export_appointment(appointment_id)["participants"] == []
    assert host.vc.cancel_appointment(appointment_id).state.value == "cancelled"
    host.vc.delete_appointment(appointment_id)
    with pytest.raises(NotFound):
        host.vc.get_appointment(appointment_id)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("09:00:00", "09:15"),
        ("09:09:59", "09:15"),
        ("09:10:00", "09:15"),
        ("09:10:01", "09:30"),
        ("09:52:30", "10:00"),
        ("23:58:00", "00:15"),
    ],
)
def test_the_suggested_start_lies_within_check_in_time(now, expected):
    moment = datetime.combine(datetime(2026, 11, 24).date(), datetime.strptime(now, "%H:%M:%S").time(), UTC)
    start = suggested_start(moment)
    assert start.strftime("%H:%M") == expected
    assert timedelta(minutes=5) <= start - moment <= timedelta(minutes=20)
