"""Check-in of a patient: the code, a display name, and consent, for one invitation.

Success yields a :class:`ParticipantPass` that the web layer keeps in the session cookie;
the name lives only there and in presence, never in the database. Wrong codes are counted
per invitation: after ``VC_CODE_MAX_ATTEMPTS`` code entry is locked for
``VC_CODE_LOCK_MINUTES`` and the practitioner sees that it happened. (Each invitation has
its own code, so a lock on one participant's link never locks out the others.)
"""

from __future__ import annotations

import enum
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from . import signals
from .appointments import AppointmentBook, LinkState
from .audit import Actor, AuditLog
from .clock import Clock
from .config import Settings
from .crypto import verify_code
from .models import ConsentKind, ConsentRecord, Invitation

MAX_NAME = 60


class CheckInProblem(enum.StrEnum):
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    NOT_YET_OPEN = "not_yet_open"
    LOCKED = "locked"
    WRONG_CODE = "wrong_code"
    NAME = "name"
    CONSENT = "consent"


class CheckInRefused(Exception):
    def __init__(self, problem: CheckInProblem, *, attempts_left: int | None = None) -> None:
        super().__init__(problem.value)
        self.problem = problem
        self.attempts_left = attempts_left


@dataclass(frozen=True)
class ParticipantPass:
    """What a checked-in participant may do: join one appointment until it expires."""

    invitation: str
    appointment: str
    practitioner: str
    participant: str
    name: str
    kind: str
    language: str
    expires_at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> ParticipantPass | None:
        try:
            return cls(**data)
        except TypeError:
            return None


def clean_name(raw: str) -> str | None:
    """A display name: printable, trimmed, at most 60 characters; a pseudonym is fine."""
    spaced = "".join(" " if ch.isspace() else ch for ch in raw)
    text = " ".join("".join(ch for ch in spaced if unicodedata.category(ch)[0] != "C").split())
    if not text or len(text) > MAX_NAME:
        return None
    return text


class CheckIn:
    def __init__(
        self,
        *,
        session: Callable[[], Session],
        clock: Clock,
        settings: Settings,
        audit: AuditLog,
        appointments: AppointmentBook,
    ) -> None:
        self._session = session
        self._clock = clock
        self._settings = settings
        self._audit = audit
        self._appointments = appointments

    def invitation(self, invitation_public_id: str) -> Invitation:
        invitation = self._appointments.invitation_by_public_id(invitation_public_id)
        if invitation is None:
            raise CheckInRefused(CheckInProblem.UNKNOWN)
        state = self._appointments.link_state(invitation)
        problems = {
            LinkState.CANCELLED: CheckInProblem.CANCELLED,
            LinkState.EXPIRED: CheckInProblem.EXPIRED,
            LinkState.NOT_YET_OPEN: CheckInProblem.NOT_YET_OPEN,
        }
        if state in problems:
            raise CheckInRefused(problems[state])
        return invitation

    def is_locked(self, invitation: Invitation) -> bool:
        return invitation.code_locked_until is not None and invitation.code_locked_until > self._clock.now()

    def check_in(
        self, invitation_public_id: str, *, code: str, name: str, consent: bool, language: str
    ) -> ParticipantPass:
        invitation = self.invitation(invitation_public_id)
        if self.is_locked(invitation):
            raise CheckInRefused(CheckInProblem.LOCKED)
        if not verify_code(code, invitation.code_hash):
            self._count_failure(invitation)
        display_name = clean_name(name)
        if display_name is None:
            raise CheckInRefused(CheckInProblem.NAME)
        if not consent:
            raise CheckInRefused(CheckInProblem.CONSENT)
        appointment = invitation.appointment
        invitation.failed_code_attempts = 0
        kinds = [ConsentKind.PARTICIPATION]
        if appointment.relay_only:
            kinds.append(ConsentKind.RELAY)  # the relay is part of this appointment, agreed to at joining
        for kind in kinds:
            self._record_consent(invitation, kind, language)
        self._session().commit()
        expires = appointment.ends_at + timedelta(minutes=self._settings.join_grace_minutes)
        return ParticipantPass(
            invitation=invitation.public_id,
            appointment=appointment.public_id,
            practitioner=appointment.practitioner.public_id,
            participant=secrets.token_urlsafe(9),
            name=display_name,
            kind=invitation.kind.value,
            language=language,
            expires_at=expires.timestamp(),
        )

    def record_relay_consent(self, invitation_public_id: str, language: str) -> None:
        invitation = self._appointments.invitation_by_public_id(invitation_public_id)
        if invitation is not None:
            self._record_consent(invitation, ConsentKind.RELAY, language)
            self._session().commit()

    def pass_is_valid(self, participant_pass: ParticipantPass) -> bool:
        """Still within its time, and the invitation still open (not cancelled, deleted or ended)."""
        if participant_pass.expires_at <= self._clock.now().timestamp():
            return False
        invitation = self._appointments.invitation_by_public_id(participant_pass.invitation)
        return invitation is not None and self._appointments.link_state(invitation) is LinkState.OPEN

    def _record_consent(self, invitation: Invitation, kind: ConsentKind, language: str) -> None:
        self._session().add(
            ConsentRecord(
                appointment_id=invitation.appointment_id,
                invitation_id=invitation.id,
                kind=kind,
                text_version=self._settings.consent_version,
                language=language if language in self._settings.languages else self._settings.default_language,
                given_at=self._clock.now(),
            )
        )

    def _count_failure(self, invitation: Invitation) -> None:
        invitation.failed_code_attempts += 1
        left = self._settings.code_max_attempts - invitation.failed_code_attempts
        if left <= 0:
            invitation.failed_code_attempts = 0
            invitation.code_locked_until = self._clock.now() + timedelta(minutes=self._settings.code_lock_minutes)
            invitation.code_locks += 1
            appointment = invitation.appointment
            self._audit.record(
                "invitation.code_locked",
                Actor("patient"),
                organisation_id=appointment.organisation_id,
                subject=appointment.public_id,
                minutes=self._settings.code_lock_minutes,
            )
            self._session().commit()
            signals.emit(
                signals.code_entry_locked, appointment_id=appointment.public_id, invitation_id=invitation.public_id
            )
            raise CheckInRefused(CheckInProblem.LOCKED)
        self._session().commit()
        raise CheckInRefused(CheckInProblem.WRONG_CODE, attempts_left=left)
