"""Data-subject rights: export everything stored about an appointment or a participant
(Art. 15 and 20 GDPR) and delete it (Art. 17), and remove a practitioner who leaves.

Exports are plain JSON: every stored field, personal fields decrypted, and a list of what
is *not* stored so the reader need not guess. The audit events these actions leave hold
ids and counts only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ..core import signals
from ..core.audit import Actor, AuditLog
from ..core.clock import Clock
from ..core.config import Settings
from ..core.crypto import DecryptionError
from ..core.models import Appointment, AuditEvent, ConsentRecord, Invitation, Practitioner
from ..core.signals import Announcer
from .access import Principal
from .appointments import AppointmentBook
from .retention import RetentionPolicy
from .revocation import Reason, Revoker

EXPORT_FORMAT = "vc_plugin.export/1"
UNREADABLE = "unreadable: the organisation's data key was destroyed"

#: Told in every export, because absence is information too.
NOT_STORED = (
    "display names: only in memory (waiting room, call) until the session ends",
    "IP addresses: never stored, and removed from logs",
    "audio, video, chat messages and files: sent directly between the browsers, never to the server",
    "session descriptions and ICE candidates: relayed in memory, never stored",
    "the access code: stored only as a one-way hash, which cannot be turned back into the code",
    "the invitation's email address: only in the encrypted mail job until it is sent, unless the organiser "
    "chose to store contact details (then below, encrypted at rest)",
)


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


class SubjectRights:
    def __init__(
        self,
        *,
        session: Callable[[], Session],
        clock: Clock,
        settings: Settings,
        appointments: AppointmentBook,
        audit: AuditLog,
        revoker: Revoker,
        announce: Announcer,
    ) -> None:
        self._announce = announce
        self._session = session
        self._clock = clock
        self._retention = RetentionPolicy.of(settings)
        self._appointments = appointments
        self._audit = audit
        self._revoker = revoker

    # --- export ----------------------------------------------------------------------------------
    def export_appointment(self, principal: Principal, appointment_public_id: str) -> dict[str, Any]:
        appointment = self._appointments.get(principal, appointment_public_id)
        events = self._session().scalars(
            select(AuditEvent).where(AuditEvent.subject == appointment.public_id).order_by(AuditEvent.at)
        )
        document = {
            **self._header(),
            "appointment": self._appointment(appointment),
            "participants": [self._participant(i) for i in appointment.invitations],
            "audit_events": [
                {"at": _time(e.at), "action": e.action, "actor": e.actor_kind, "details": e.details} for e in events
            ],
        }
        self._exported("appointment.exported", principal, appointment)
        return document

    def export_participant(self, principal: Principal, invitation_public_id: str) -> dict[str, Any]:
        invitation = self._appointments.invitation(principal, invitation_public_id)
        appointment = invitation.appointment
        document = {
            **self._header(),
            "appointment": self._appointment(appointment, with_label=False),
            "participant": self._participant(invitation),
        }
        self._exported("invitation.exported", principal, appointment)
        return document

    def _exported(self, action: str, principal: Principal, appointment: Appointment) -> None:
        """Exports are audited: who, which appointment, nothing of the content."""
        self._audit.record(
            action, principal.audit_actor, organisation_id=appointment.organisation_id, subject=appointment.public_id
        )
        self._session().commit()

    def consents_of(self, invitation: Invitation) -> list[ConsentRecord]:
        return list(
            self._session().scalars(
                select(ConsentRecord)
                .where(ConsentRecord.invitation_id == invitation.id)
                .order_by(ConsentRecord.given_at)
            )
        )

    def _header(self) -> dict[str, Any]:
        return {
            "format": EXPORT_FORMAT,
            "exported_at": _time(self._clock.now()),
            "not_stored": list(NOT_STORED),
        }

    def _appointment(self, appointment: Appointment, *, with_label: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": appointment.public_id,
            "organisation": appointment.practitioner.organisation.slug,
            "practitioner": {
                "id": appointment.practitioner.public_id,
                "display_name": appointment.practitioner.display_name,
            },
            "starts_at": _time(appointment.starts_at),
            "ends_at": _time(appointment.ends_at),
            "kind": appointment.kind.value,
            "state": appointment.state.value,
            "ended_at": _time(appointment.ended_at),  # the last "End for everyone", kept when reopened
            "relay_only": appointment.relay_only,
            "created_at": _time(appointment.created_at),
            "delete_after": _time(self._retention.deleted_by(appointment)),
        }
        if with_label:
            data["label"] = self._readable(lambda: self._appointments.label(appointment))
        return data

    def _participant(self, invitation: Invitation) -> dict[str, Any]:
        consents = self.consents_of(invitation)

        def contact() -> dict[str, str | None] | None:
            found = self._appointments.stored_contact(invitation)
            return None if found is None else {"email": found.email, "phone": found.phone}

        return {
            "id": invitation.public_id,
            "kind": invitation.kind.value,
            "language": invitation.language,
            "contact": self._readable(contact),
            "code_by_sms": invitation.code_by_sms,
            "invitation_delivery": invitation.delivery.value,
            "invitation_delivery_changed_at": _time(invitation.delivery_changed_at),
            "failed_code_attempts": invitation.failed_code_attempts,
            "code_entry_locks": invitation.code_locks,
            "code_entry_locked_until": _time(invitation.code_locked_until),
            "created_at": _time(invitation.created_at),
            "consents": [
                {
                    "kind": c.kind.value,
                    "text_version": c.text_version,
                    "language": c.language,
                    "given_at": _time(c.given_at),
                }
                for c in consents
            ],
        }

    @staticmethod
    def _readable(read: Callable[[], Any]) -> Any:
        try:
            return read()
        except DecryptionError:
            return UNREADABLE

    # --- deletion ----------------------------------------------------------------------------------
    def erase_participant(self, principal: Principal, invitation_public_id: str) -> None:
        """Delete one participant's invitation and consent records; the appointment stays."""
        invitation = self._appointments.invitation(principal, invitation_public_id)
        appointment = invitation.appointment
        session = self._session()
        consents = session.execute(delete(ConsentRecord).where(ConsentRecord.invitation_id == invitation.id))
        appointment.invitations.remove(invitation)
        session.delete(invitation)
        self._audit.record(
            "invitation.deleted",
            principal.audit_actor,
            organisation_id=appointment.organisation_id,
            subject=appointment.public_id,
            consents=int(consents.rowcount),  # type: ignore[attr-defined]
        )
        session.commit()
        self._revoker.invitation(appointment.public_id, invitation_public_id, Reason.PARTICIPANT_REMOVED)
        self._announce(
            signals.invitation_deleted, appointment_id=appointment.public_id, invitation_id=invitation_public_id
        )

    def erase_practitioner(
        self, actor: Actor, practitioner_public_id: str, *, organisation_id: int | None = None
    ) -> dict[str, int]:
        """A practitioner leaves: their appointments with everything in them, then the person.

        Appointments they planned for colleagues stay (they belong to the colleague) and
        lose only the reference to their planner. ``organisation_id`` limits it to one
        organisation (an admin's reach); the operator's CLI passes none.
        """
        session = self._session()
        person = session.scalars(select(Practitioner).where(Practitioner.public_id == practitioner_public_id)).first()
        if person is None or (organisation_id is not None and person.organisation_id != organisation_id):
            raise LookupError("no such person")
        erased: dict[str, list[str]] = {}
        invitations = 0
        while True:
            batch = session.scalars(
                select(Appointment).where(Appointment.practitioner_id == person.id).order_by(Appointment.id).limit(200)
            ).all()
            if not batch:
                break
            for appointment in batch:
                erased[appointment.public_id] = [i.public_id for i in appointment.invitations]
                invitations += self._appointments.erase(appointment)["invitations"]
            session.flush()
        session.execute(
            update(Appointment).where(Appointment.created_by_id == person.id).values(created_by_id=None),
            execution_options={"synchronize_session": False},
        )
        organisation = person.organisation_id
        session.delete(person)
        counts = {"appointments": len(erased), "invitations": invitations}
        self._audit.record("practitioner.deleted", actor, organisation_id=organisation, **counts)
        session.commit()
        self._revoker.practitioner(practitioner_public_id, erased, Reason.PRACTITIONER_REMOVED)
        self._announce(signals.practitioner_deleted, practitioner_id=practitioner_public_id)
        return counts


def as_json(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2)
