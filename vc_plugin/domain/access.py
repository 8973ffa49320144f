"""Who is acting, and what they may do with appointments.

One rule set serves the pages, the JSON API and the Python API: practitioners manage
their own appointments; staff and admins plan for every practitioner of their own
organisation; an API token acts for its organisation; nobody reaches into another
organisation.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.audit import Actor
from ..core.models import Appointment, Practitioner, Role


class AccessDenied(PermissionError):
    """The actor may not do this (answered as 403 or 404, never with details)."""


@dataclass(frozen=True)
class Principal:
    kind: str  # practitioner, staff, admin, api, host
    organisation_id: int
    practitioner_id: int | None = None
    token_id: int | None = None

    @classmethod
    def of(cls, person: Practitioner) -> Principal:
        return cls(kind=person.role.value, organisation_id=person.organisation_id, practitioner_id=person.id)

    @classmethod
    def api(cls, organisation_id: int, token_id: int) -> Principal:
        return cls(kind="api", organisation_id=organisation_id, token_id=token_id)

    @classmethod
    def host(cls, organisation_id: int) -> Principal:
        """The host application itself, through the Python API."""
        return cls(kind="host", organisation_id=organisation_id)

    @property
    def plans_for_others(self) -> bool:
        return self.kind in {Role.STAFF.value, Role.ADMIN.value, "api", "host"}

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

    def require_manage(self, appointment: Appointment) -> None:
        if not self.may_manage(appointment):
            raise AccessDenied("not your appointment")
