"""Planning in tests without pages: an appointment in five minutes, straight through the domain."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NamedTuple

from vc_plugin.domain.access import Principal
from vc_plugin.domain.appointments import PlannedAppointment
from vc_plugin.domain.inputs import AppointmentIn, ParticipantIn


class Issued(NamedTuple):
    invitation: str  # the public id
    code: str
    row: int  # the database id


def plan_soon(
    host: Any,
    people: Any,
    *,
    kind: str = "single",
    participants: int = 1,
    relay_only: bool = False,
    in_minutes: int = 5,
    **participant: Any,
) -> PlannedAppointment:
    """Dr. Berg's appointment in five minutes, or ``in_minutes`` (``host``: a host app or its state)."""
    state = getattr(host, "state", host)
    start = state.clock.now() + timedelta(minutes=in_minutes)
    return state.appointments.plan(
        Principal.of(people.doc),
        AppointmentIn(
            starts_at=start,
            ends_at=start + timedelta(minutes=30),
            kind=kind,
            relay_only=relay_only,
            participants=[ParticipantIn(**participant)] * participants,
        ),
    )


def plan_group(host: Any, people: Any, patients: int = 2, **participant: Any) -> tuple[str, list[Issued]]:
    """A group appointment; returns its id and what each invitation issued."""
    planned = plan_soon(host, people, kind="group", participants=patients, **participant)
    issued = [Issued(i.invitation.public_id, i.code, i.invitation.id) for i in planned.invitations]
    return planned.appointment.public_id, issued
