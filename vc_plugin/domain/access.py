"""Who is acting, and what they may do with appointments.

One rule set serves the pages, the sockets, the JSON API and the Python API: practitioners
manage their own appointments; staff and admins plan for every practitioner of their own
organisation; an API token acts for its organisation; nobody reaches into another
organisation. Only the appointment's own practitioner holds its call (:func:`call_refusal`);
the web layer asks and chooses the status code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..core.audit import Actor, ActorKind
from ..core.models import Appointment, AppointmentState, Practitioner, Role


class AccessDenied(PermissionError):
    """The actor may not do this (answered as 403 or 404, never with details)."""


@dataclass(frozen=True)
class Principal:
    kind: ActorKind
    organisation_id: int
    practitioner_id: int | None = None
    token_id: int | None = None

    @classmethod
    def of(cls, person: Practitioner) -> Principal:
        return cls(kind=ActorKind.of(person.role), organisation_id=person.organisation_id, practitioner_id=person.id)

    @classmethod
    def api(cls, organisation_id: int, token_id: int) -> Principal:
        return cls(kind=ActorKind.API, organisation_id=organisation_id, token_id=token_id)

    @classmethod
    def host(cls, organisation_id: int) -> Principal:
        """The host application itself, through the Python API."""
        return cls(kind=ActorKind.HOST, organisation_id=organisation_id)

    @property
    def plans_for_others(self) -> bool:
        return self.kind in {ActorKind.STAFF, ActorKind.ADMIN, ActorKind.API, ActorKind.HOST}

    @property
    def audit_actor(self) -> Actor:
        return Actor(self.kind, self.practitioner_id if self.practitioner_id is not None else self.token_id)

    def may_manage(self, appointment: Appointment) -> bool:
        if appointment.organisation_id != self.organisation_id:
            return False
        return self.plans_for_others or appointment.practitioner_id == self.practitioner_id

    def may_plan_for(self, practitioner: Practitioner) -> bool:
        if practitioner.organisation_id != self.organisation_id or not practitioner.active:
            return False
        if not practitioner.may_join_calls:
            return False
        return self.plans_for_others or practitioner.id == self.practitioner_id


class CallRefusal(enum.Enum):
    """Why someone may not hold an appointment's call."""

    STAFF = "staff organise consultations but never join them"
    UNKNOWN = "no such appointment"
    NOT_HOLDER = "another practitioner's appointment"
    OVER = "the consultation is over"


def call_refusal(person: Practitioner, appointment: Appointment | None) -> CallRefusal | None:
    """None when ``person`` may hold the call: the appointment's own practitioner, while it is planned."""
    if person.role is Role.STAFF:
        return CallRefusal.STAFF
    if appointment is None:
        return CallRefusal.UNKNOWN
    if appointment.practitioner_id != person.id:
        return CallRefusal.NOT_HOLDER
    if appointment.state is not AppointmentState.PLANNED:
        return CallRefusal.OVER
    return None
