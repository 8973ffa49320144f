"""Audit events: who did what, recorded by internal ids and counts, never by personal data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from .clock import Clock
from .models import AuditEvent

#: Detail values an audit event may hold. Free text is refused so nobody logs a name by accident.
AllowedDetail = int | bool | float | None


@dataclass(frozen=True)
class Actor:
    kind: str  # practitioner, staff, admin, patient, api, system
    id: int | None = None


SYSTEM = Actor("system")


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
            actor_kind=actor.kind,
            actor_id=actor.id,
            subject=subject,
            details=details,
        )
        self._session().add(event)
        return event
