"""Introductions at the start of a consultation (KBV Anlage 31b): everyone present in the room, on
both sides, is named, and the practitioner confirms that this happened.

The confirmation is one audit event per appointment (``consultation.introductions_confirmed``),
by ids only: who confirmed (the practitioner's id), which appointment (its public id) and when.
Nobody's name is stored; the audit period (at most 90 days) deletes it with the other events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, distinct, func, select
from sqlalchemy.orm import Session

from ..core.audit import Actor, ActorKind, AuditLog
from ..core.models import Appointment, AuditEvent, Practitioner
from .access import AccessDenied, call_refusal

#: The audit action of the confirmation; the report counts it against the consultations that ended.
CONFIRMED = "consultation.introductions_confirmed"
ENDED = "consultation.ended"


@dataclass(frozen=True)
class Confirmation:
    at: datetime
    #: False when the introductions had been confirmed before: nothing new was written.
    recorded: bool


class Introductions:
    def __init__(self, *, session: Callable[[], Session], audit: AuditLog) -> None:
        self._session = session
        self._audit = audit

    def confirmed_at(self, appointment: Appointment) -> datetime | None:
        """When the introductions of ``appointment`` were confirmed, or None."""
        return (
            self._session()
            .scalars(
                select(AuditEvent.at)
                .where(AuditEvent.action == CONFIRMED, AuditEvent.subject == appointment.public_id)
                .order_by(AuditEvent.at)
                .limit(1)
            )
            .first()
        )

    def confirm(self, person: Practitioner, appointment: Appointment) -> Confirmation:
        """The practitioner who holds the call confirms; a second confirmation records nothing."""
        refusal = call_refusal(person, appointment)
        if refusal is not None:
            raise AccessDenied(refusal.value)
        session = self._session()
        # Two clicks at once: on PostgreSQL the second waits for the first here and then finds its
        # event. SQLite has no such lock: both may record, and reports count each appointment once.
        # The lock ends with the request's transaction; what the caller has pending is left alone.
        session.execute(select(Appointment.id).where(Appointment.id == appointment.id).with_for_update())
        earlier = self.confirmed_at(appointment)
        if earlier is not None:
            return Confirmation(at=earlier, recorded=False)
        event = self._audit.record(
            CONFIRMED,
            Actor(ActorKind.of(person.role), person.id),
            organisation_id=appointment.organisation_id,
            subject=appointment.public_id,
        )
        session.commit()
        return Confirmation(at=event.at, recorded=True)


def introductions_confirmed(
    session: Session, since: datetime, *, organisation_id: int | None = None
) -> tuple[int, int]:
    """For a report: ``(consultations ended with their introductions confirmed, consultations ended)``
    since ``since`` (an aware datetime), each appointment once, of one organisation or of all.

    "Ended" is what the practitioner's "End for everyone" records; a consultation still running, or
    one that ended by everyone leaving, is in neither number. Audit events are kept for the audit
    period only, so a ``since`` further back counts what is still kept."""

    def ended(*extra: ColumnElement[bool]) -> int:
        query = select(func.count(distinct(AuditEvent.subject))).where(
            AuditEvent.action == ENDED, AuditEvent.at >= since, *extra
        )
        if organisation_id is not None:
            query = query.where(AuditEvent.organisation_id == organisation_id)
        return session.scalar(query) or 0

    confirmed = select(AuditEvent.subject).where(AuditEvent.action == CONFIRMED)
    return ended(AuditEvent.subject.in_(confirmed)), ended()
