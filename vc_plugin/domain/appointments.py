"""Planning appointments: times, participants, access codes, links and their validity.

Every method is one unit of work: it checks permissions and rules, commits, and only then
queues invitation mails, so a worker never sees an uncommitted invitation. Access codes
exist in clear only in the return value of the call that created them.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload

from ..core import signals
from ..core.audit import ActorKind, AuditLog
from ..core.clock import Clock
from ..core.config import Settings
from ..core.crypto import generate_access_code, hash_code, public_id
from ..core.data_keys import ENCRYPTED_FIELDS, FieldCipher
from ..core.models import (
    Appointment,
    AppointmentKind,
    AppointmentState,
    ConsentRecord,
    Delivery,
    Invitation,
    Practitioner,
)
from ..core.signals import Announcer
from .access import AccessDenied, Principal
from .directory import Directory
from .inputs import AppointmentIn, ParticipantIn, RescheduleIn, SendIn
from .invitations import Contact, InvitationSender
from .retention import RetentionPolicy
from .revocation import Reason, Revoker

#: Planning a start this far in the past is still accepted (a form filled in slowly).
PAST_SLACK = timedelta(minutes=5)
LABEL, CONTACT = ENCRYPTED_FIELDS


class PlanningError(ValueError):
    """A request that breaks a rule; ``field`` says which input to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class NotFound(LookupError):
    """No such appointment or invitation for this actor."""


class LinkState(enum.StrEnum):
    OPEN = "open"
    NOT_YET_OPEN = "not_yet_open"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    ENDED = "ended"  # the practice ended the consultation; it may reopen it until the link expires


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    code: str
    link: str


@dataclass(frozen=True)
class PlannedAppointment:
    appointment: Appointment
    invitations: list[IssuedInvitation]


def suggested_start(now: datetime) -> datetime:
    """The next quarter hour at least five minutes ahead: soon enough that check-in is already open."""
    ahead = now + timedelta(minutes=5)
    rounded = ahead.replace(second=0, microsecond=0) + timedelta(minutes=-ahead.minute % 15)
    return rounded if rounded >= ahead else rounded + timedelta(minutes=15)


class AppointmentBook:
    def __init__(
        self,
        *,
        session: Callable[[], Session],
        clock: Clock,
        settings: Settings,
        cipher: FieldCipher,
        audit: AuditLog,
        directory: Directory,
        sender: InvitationSender,
        revoker: Revoker,
        site_root: Callable[[], str],
        announce: Announcer,
    ) -> None:
        self._announce = announce
        self._site_root = site_root
        self._session = session
        self._clock = clock
        self._settings = settings
        self._retention = RetentionPolicy.of(settings)
        self._cipher = cipher
        self._audit = audit
        self._directory = directory
        self._sender = sender
        self._revoker = revoker

    # --- reading ---------------------------------------------------------------------------------
    def find(self, appointment_public_id: str) -> Appointment | None:
        """The appointment with its practitioner (one query), for callers that decide access themselves
        (a patient's pass, the call's holder)."""
        statement = select(Appointment).options(joinedload(Appointment.practitioner, innerjoin=True))
        return self._session().scalars(statement.where(Appointment.public_id == appointment_public_id)).first()

    def get(self, principal: Principal, appointment_public_id: str) -> Appointment:
        appointment = self.find(appointment_public_id)
        if appointment is None or not principal.may_manage(appointment):
            raise NotFound("no such appointment")
        return appointment

    def invitation(self, principal: Principal, invitation_public_id: str) -> Invitation:
        invitation = self.invitation_by_public_id(invitation_public_id)
        if invitation is None or not principal.may_manage(invitation.appointment):
            raise NotFound("no such invitation")
        return invitation

    def organisation_of(self, appointment_public_id: str) -> int | None:
        return (
            self._session()
            .scalars(select(Appointment.organisation_id).where(Appointment.public_id == appointment_public_id))
            .first()
        )

    def invitation_by_public_id(self, invitation_public_id: str) -> Invitation | None:
        """The invitation with its appointment and the appointment's practitioner, in one query."""
        statement = select(Invitation).options(
            joinedload(Invitation.appointment, innerjoin=True).joinedload(Appointment.practitioner, innerjoin=True)
        )
        return self._session().scalars(statement.where(Invitation.public_id == invitation_public_id)).first()

    def list(
        self,
        principal: Principal,
        *,
        upcoming: bool = True,
        practitioner_public_id: str | None = None,
        starts_from: datetime | None = None,
        starts_before: datetime | None = None,
        limit: int = 200,
    ) -> list[Appointment]:
        boundary = self._clock.now() - timedelta(minutes=self._settings.join_grace_minutes)
        statement = select(Appointment).where(Appointment.organisation_id == principal.organisation_id)
        if not principal.plans_for_others:
            statement = statement.where(Appointment.practitioner_id == principal.practitioner_id)
        if practitioner_public_id:
            statement = statement.join(Practitioner, Appointment.practitioner_id == Practitioner.id).where(
                Practitioner.public_id == practitioner_public_id
            )
        if starts_from is not None:
            statement = statement.where(Appointment.starts_at >= starts_from)
        if starts_before is not None:
            statement = statement.where(Appointment.starts_at < starts_before)
        if upcoming:
            statement = statement.where(Appointment.ends_at >= boundary).order_by(Appointment.starts_at)
        else:
            statement = statement.where(Appointment.ends_at < boundary).order_by(Appointment.starts_at.desc())
        return list(self._session().scalars(statement.limit(max(1, min(limit, 1000)))))

    def label(self, appointment: Appointment) -> str | None:
        return self._cipher.decrypt_field(LABEL, appointment)

    def stored_contact(self, invitation: Invitation) -> Contact | None:
        raw = self._cipher.decrypt_field(CONTACT, invitation)
        return Contact(**json.loads(raw)) if raw else None

    def link(self, invitation: Invitation, code: str | None = None) -> str:
        link = f"{self._site_root()}{self._settings.url_prefix}/join/{invitation.public_id}"
        return f"{link}#code={code}" if code else link

    def link_state(self, invitation: Invitation) -> LinkState:
        """A link works from planning until the planned end plus the grace period."""
        appointment = invitation.appointment
        now = self._clock.now()
        if appointment.state is AppointmentState.CANCELLED:
            return LinkState.CANCELLED
        if now > self.link_closes(appointment):
            return LinkState.EXPIRED
        if appointment.state is AppointmentState.ENDED:
            return LinkState.ENDED
        if now < appointment.starts_at - timedelta(minutes=self._settings.waiting_room_opens_minutes):
            return LinkState.NOT_YET_OPEN
        return LinkState.OPEN

    def link_closes(self, appointment: Appointment) -> datetime:
        """When its links expire: the planned end plus the grace period."""
        return appointment.ends_at + timedelta(minutes=self._settings.join_grace_minutes)

    def may_reopen(self, principal: Principal, appointment: Appointment) -> bool:
        """Whoever may end it, while its links would still work."""
        return (
            appointment.state is AppointmentState.ENDED
            and _holds(principal, appointment)
            and self._clock.now() <= self.link_closes(appointment)
        )

    # --- planning --------------------------------------------------------------------------------
    def plan(self, principal: Principal, details: AppointmentIn) -> PlannedAppointment:
        practitioner = self._practitioner_for(principal, details.practitioner)
        self._check_not_in_past(details.starts_at)
        self._check_participant_count(details.kind, len(details.participants))
        now = self._clock.now()
        appointment = Appointment(
            public_id=public_id(),
            organisation_id=practitioner.organisation_id,
            practitioner_id=practitioner.id,
            created_by_id=principal.practitioner_id,
            starts_at=details.starts_at,
            ends_at=details.ends_at,
            kind=details.kind,
            state=AppointmentState.PLANNED,
            relay_only=details.relay_only,
            created_at=now,
            delete_after=self._retention.delete_after(details.ends_at),
        )
        session = self._session()
        session.add(appointment)
        self._cipher.encrypt_field(LABEL, appointment, appointment.organisation_id, details.label)
        issued = [self._new_invitation(appointment, participant) for participant in details.participants]
        self._audit.record(
            "appointment.planned",
            principal.audit_actor,
            organisation_id=appointment.organisation_id,
            subject=appointment.public_id,
            participants=len(issued),
        )
        session.commit()
        self._announce(
            signals.appointment_created,
            appointment_id=appointment.public_id,
            practitioner_id=practitioner.public_id,
            starts_at=appointment.starts_at,
            ends_at=appointment.ends_at,
        )
        for item, participant in zip(issued, details.participants, strict=True):
            self._send_if_possible(item, Contact(participant.email, participant.phone))
        return PlannedAppointment(appointment, issued)

    def add_participant(
        self, principal: Principal, appointment_public_id: str, details: ParticipantIn
    ) -> IssuedInvitation:
        appointment = self._changeable(principal, appointment_public_id)
        self._check_participant_count(appointment.kind, len(appointment.invitations) + 1)
        item = self._new_invitation(appointment, details)
        self._audit.record(
            "appointment.participant_added",
            principal.audit_actor,
            organisation_id=appointment.organisation_id,
            subject=appointment.public_id,
        )
        self._session().commit()
        self._announce(
            signals.participant_added, appointment_id=appointment.public_id, invitation_id=item.invitation.public_id
        )
        self._send_if_possible(item, Contact(details.email, details.phone))
        return item

    def resend(self, principal: Principal, invitation_public_id: str, details: SendIn) -> IssuedInvitation:
        """Issue a new code and send it to the given or stored contact.

        The old code stops working, and every pass checked in with it is revoked.
        """
        invitation = self.invitation(principal, invitation_public_id)
        self._changeable(principal, invitation.appointment.public_id)
        stored = self.stored_contact(invitation)
        contact = Contact(
            details.email or (stored.email if stored else None), details.phone or (stored.phone if stored else None)
        )
        if not contact.email:
            raise PlanningError("email", "no email address: give one, or read the new code out on the phone")
        if details.language:
            invitation.language = details.language
        if details.code_by_sms is not None:
            invitation.code_by_sms = details.code_by_sms
        if invitation.code_by_sms and not contact.phone:
            raise PlanningError("phone", "the code goes by SMS: give a phone number")
        code = generate_access_code()
        invitation.code_hash = hash_code(code)
        invitation.failed_code_attempts = 0
        invitation.code_locked_until = None
        if stored is not None:
            self._store_contact(invitation, contact)
        self._audit.record(
            "invitation.code_renewed",
            principal.audit_actor,
            organisation_id=invitation.appointment.organisation_id,
            subject=invitation.appointment.public_id,
        )
        self._session().commit()
        item = IssuedInvitation(invitation, code, self.link(invitation, code))
        self._send_if_possible(item, contact)
        self._revoker.check_ins(invitation.appointment.public_id, invitation.public_id, Reason.NEW_CODE)
        return item

    def reschedule(self, principal: Principal, appointment_public_id: str, details: RescheduleIn) -> Appointment:
        appointment = self._changeable(principal, appointment_public_id)
        self._check_not_in_past(details.starts_at)
        appointment.starts_at = details.starts_at
        appointment.ends_at = details.ends_at
        appointment.delete_after = self._retention.delete_after(details.ends_at)
        self._audit.record(
            "appointment.rescheduled",
            principal.audit_actor,
            organisation_id=appointment.organisation_id,
            subject=appointment.public_id,
        )
        self._session().commit()
        self._announce(
            signals.appointment_rescheduled,
            appointment_id=appointment.public_id,
            starts_at=appointment.starts_at,
            ends_at=appointment.ends_at,
        )
        return appointment

    def cancel(self, principal: Principal, appointment_public_id: str) -> Appointment:
        appointment = self.get(principal, appointment_public_id)
        if appointment.state is AppointmentState.CANCELLED:
            return appointment
        appointment.state = AppointmentState.CANCELLED
        self._audit.record(
            "appointment.cancelled",
            principal.audit_actor,
            organisation_id=appointment.organisation_id,
            subject=appointment.public_id,
        )
        self._session().commit()
        self._revoker.appointment(
            appointment.public_id, Reason.CANCELLED, [i.public_id for i in appointment.invitations]
        )
        self._announce(signals.appointment_cancelled, appointment_id=appointment.public_id)
        return appointment

    def reopen(self, principal: Principal, appointment_public_id: str) -> Appointment:
        """Undo "End for everyone": the same links and codes work again, for new check-ins only.

        Idempotent. ``ended_at`` stays, so passes and sockets from before the end stay void
        (:func:`vc_plugin.domain.revocation.appointment_claim`). After the links' expiry the end stands.
        """
        appointment = self.get(principal, appointment_public_id)
        if not _holds(principal, appointment):
            raise AccessDenied("only the appointment's practitioner ends and reopens it")
        if appointment.state is AppointmentState.PLANNED:
            return appointment
        if not self.may_reopen(principal, appointment):
            raise PlanningError("state", f"the appointment is {appointment.state.value}")
        appointment.state = AppointmentState.PLANNED
        self._audit.record(
            "consultation.reopened",
            principal.audit_actor,
            organisation_id=appointment.organisation_id,
            subject=appointment.public_id,
        )
        self._session().commit()
        self._announce(
            signals.consultation_reopened,
            appointment_id=appointment.public_id,
            practitioner_id=appointment.practitioner.public_id,
        )
        return appointment

    def delete(self, principal: Principal, appointment_public_id: str) -> None:
        """Delete the appointment and everything stored with it, now (Art. 17 GDPR)."""
        appointment = self.get(principal, appointment_public_id)
        invitations = [i.public_id for i in appointment.invitations]
        counts = self.erase(appointment)
        self._audit.record(
            "appointment.deleted",
            principal.audit_actor,
            organisation_id=appointment.organisation_id,
            subject=None,
            **counts,
        )
        self._session().commit()
        self._revoker.appointment(appointment_public_id, Reason.DELETED, invitations)
        self._announce(signals.appointment_deleted, appointment_id=appointment_public_id)

    def erase(self, appointment: Appointment) -> dict[str, int]:
        """Remove an appointment's rows, children first (works without database cascades)."""
        session = self._session()
        consents = session.execute(delete(ConsentRecord).where(ConsentRecord.appointment_id == appointment.id))
        invitations = session.execute(delete(Invitation).where(Invitation.appointment_id == appointment.id))
        session.execute(delete(Appointment).where(Appointment.id == appointment.id))
        session.expunge(appointment)
        return {"invitations": invitations.rowcount, "consents": consents.rowcount}  # type: ignore[attr-defined]

    # --- rules ------------------------------------------------------------------------------------
    def _practitioner_for(self, principal: Principal, practitioner_public_id: str | None) -> Practitioner:
        if practitioner_public_id:
            practitioner = self._directory.by_public_id(practitioner_public_id)
        elif principal.practitioner_id is not None and principal.kind is not ActorKind.STAFF:
            practitioner = self._directory.get(principal.practitioner_id)
        else:
            raise PlanningError("practitioner", "choose the practitioner who holds the consultation")
        if practitioner is None or not principal.may_plan_for(practitioner):
            # Unknown, inactive, staff, or of another organisation: the same answer for all.
            raise PlanningError("practitioner", "unknown practitioner")
        return practitioner

    def _changeable(self, principal: Principal, appointment_public_id: str) -> Appointment:
        appointment = self.get(principal, appointment_public_id)
        if appointment.state is not AppointmentState.PLANNED:
            raise PlanningError("state", f"the appointment is {appointment.state.value}")
        return appointment

    def _check_not_in_past(self, starts_at: datetime) -> None:
        if starts_at < self._clock.now() - PAST_SLACK:
            raise PlanningError("starts_at", "the start lies in the past")

    def _check_participant_count(self, kind: AppointmentKind, invitations: int) -> None:
        # The practitioner is a participant too.
        if invitations + 1 > self._settings.max_participants:
            raise PlanningError(
                "participants", f"at most {self._settings.max_participants - 1} invitations per appointment"
            )
        if kind is AppointmentKind.SINGLE and invitations > 3:
            raise PlanningError("participants", "a single appointment takes a patient and up to two companions")

    def _new_invitation(self, appointment: Appointment, participant: ParticipantIn) -> IssuedInvitation:
        code = generate_access_code()
        invitation = Invitation(
            public_id=public_id(),
            kind=participant.kind,
            language=participant.language,
            code_hash=hash_code(code),
            code_by_sms=participant.code_by_sms,
            delivery=Delivery.NOT_SENT,
            failed_code_attempts=0,
            code_locks=0,
            created_at=self._clock.now(),
        )
        appointment.invitations.append(invitation)
        if participant.store_contact and (participant.email or participant.phone):
            self._store_contact(invitation, Contact(participant.email, participant.phone))
        return IssuedInvitation(invitation, code, self.link(invitation, code))

    def _store_contact(self, invitation: Invitation, contact: Contact) -> None:
        payload = json.dumps({"email": contact.email, "phone": contact.phone})
        self._cipher.encrypt_field(CONTACT, invitation, invitation.appointment.organisation_id, payload)

    def _send_if_possible(self, item: IssuedInvitation, contact: Contact) -> None:
        if contact.email:
            self._sender.queue(item.invitation, item.code, item.link, contact)


def _holds(principal: Principal, appointment: Appointment) -> bool:
    """Who may end a consultation may reopen it: its own practitioner, never staff (nor an API token)."""
    return principal.kind is not ActorKind.STAFF and principal.practitioner_id == appointment.practitioner_id


__all__ = [
    "AccessDenied",
    "AppointmentBook",
    "IssuedInvitation",
    "LinkState",
    "NotFound",
    "PlannedAppointment",
    "PlanningError",
]
