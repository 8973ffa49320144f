"""Audit events: who did what, recorded by internal ids and counts, never by personal data."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from .clock import Clock
from .models import AuditEvent, Role

#: Detail values an audit event may hold. Free text is refused so nobody logs a name by accident.
AllowedDetail = int | bool | float | None


class ActorKind(enum.StrEnum):
    """Who acts: a signed-in person by role, a patient, or something acting for the organisation."""

    PRACTITIONER = Role.PRACTITIONER.value
    STAFF = Role.STAFF.value
    ADMIN = Role.ADMIN.value
    PATIENT = "patient"
    API = "api"  # an API token of the organisation
    HOST = "host"  # the host application, through the Python API
    OPERATOR = "operator"  # someone running `flask vc …`
    SYSTEM = "system"  # the purge and other scheduled work

    @classmethod
    def of(cls, role: Role) -> ActorKind:
        return cls(role.value)


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: int | None = None


SYSTEM = Actor(ActorKind.SYSTEM)


class AuditLog:
    def __init__(self, session: Callable[[], Session], clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def record(
        self,
        action: str,
        actor: Actor,
        *,
        organisation_id: int | None = None,
        subject: str | None = None,
        **details: Any,
    ) -> AuditEvent:
        for name, value in details.items():
            if not isinstance(value, AllowedDetail):
                raise TypeError(f"audit detail {name!r} must be a number or flag, not {type(value).__name__}")
        event = AuditEvent(
            at=self._clock.now(),
            organisation_id=organisation_id,
            action=action,
            actor_kind=str(actor.kind),
            actor_id=actor.id,
            subject=subject,
            details=details,
        )
        self._session().add(event)
        return event
