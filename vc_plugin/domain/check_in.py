"""Check-in of a patient: the code, a display name, and consent, for one invitation.

Success yields a :class:`ParticipantPass` (ids only) that the web layer keeps in the session
cookie; the name lives only in presence, never in a cookie or the database. An invitation
admits one person at a time: a new check-in revokes the earlier one. Wrong codes hold back
only the client that enters them (:mod:`vc_plugin.domain.code_guard`): after ``VC_CODE_MAX_ATTEMPTS``
tries it pauses, while the right code keeps working for everybody else; the invitation counts
wrong codes and pauses, so the practitioner sees that someone is guessing.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy.orm import Session

from ..adapters.presence import CheckInRecord, PresenceStore
from ..core import signals
from ..core.audit import Actor, ActorKind, AuditLog
from ..core.clock import Clock
from ..core.config import Settings
from ..core.crypto import verify_code
from ..core.models import ConsentKind, ConsentRecord, Invitation
from ..core.signals import Announcer
from .appointments import AppointmentBook, LinkState
from .code_guard import Allowance, Attempt, CodeGuard, MemoryCodeGuard, guard_key
from .revocation import Reason, Revoker

MAX_NAME = 60


class CheckInProblem(enum.StrEnum):
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    ENDED = "ended"  # the practice ended the consultation; if it reopens it, the same link and code work again
    NOT_YET_OPEN = "not_yet_open"
    THROTTLED = "throttled"  # this client paused after too many wrong codes; others are not affected
    WRONG_CODE = "wrong_code"
    NAME = "name"
    CONSENT = "consent"


class CheckInRefused(Exception):
    def __init__(
        self, problem: CheckInProblem, *, attempts_left: int | None = None, until: datetime | None = None
    ) -> None:
        super().__init__(problem.value)
        self.problem = problem
        self.attempts_left = attempts_left
        self.until = until  # THROTTLED: when this client may try again


@dataclass(frozen=True, slots=True)
class ParticipantPass:
    """What a checked-in participant may do: join one appointment until it expires.

    Ids only: it travels in the session cookie. The display name stays in presence
    (:class:`vc_plugin.adapters.presence.CheckIn`), next to the rest of the waiting-room state.
    """

    invitation: str
    appointment: str
    practitioner: str
    participant: str
    kind: str
    language: str
    expires_at: float
    #: When the check-in began. A pass from before the consultation was last ended stays void after a
    #: reopening; one from a cookie older than this field counts as issued at 0 (void too).
    issued_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> ParticipantPass | None:
        try:
            return cls(**data)
        except TypeError:
            return None


def code_tag(code_hash: str) -> str:
    """Names the code a check-in was made with, without revealing anything about it."""
    return hashlib.sha256(f"vc_plugin check-in {code_hash}".encode()).hexdigest()[:16]


def clean_name(raw: str) -> str | None:
    """A display name: printable, trimmed, at most 60 characters; a pseudonym is fine."""
    spaced = "".join(" " if ch.isspace() else ch for ch in raw)
    text = " ".join("".join(ch for ch in spaced if unicodedata.category(ch)[0] != "C").split())
    if not text or len(text) > MAX_NAME:
        return None
    return text


def held_by(participant_pass: ParticipantPass, current: CheckInRecord | None) -> CheckInRecord | None:
    """``current`` (the invitation's check-in) if this pass was issued with it; a later one voids the pass."""
    return current if current is not None and current.member == participant_pass.participant else None


class CheckIn:
    def __init__(
        self,
        *,
        session: Callable[[], Session],
        clock: Clock,
        settings: Settings,
        audit: AuditLog,
        appointments: AppointmentBook,
        presence: PresenceStore,
        revoker: Revoker,
        announce: Announcer,
        guard: CodeGuard | None = None,
    ) -> None:
        self._announce = announce
        self._guard = guard or MemoryCodeGuard(Allowance.of(settings))
        self._session = session
        self._clock = clock
        self._settings = settings
        self._audit = audit
        self._appointments = appointments
        self._presence = presence
        self._revoker = revoker

    def invitation(self, invitation_public_id: str) -> Invitation:
        invitation = self._appointments.invitation_by_public_id(invitation_public_id)
        if invitation is None:
            raise CheckInRefused(CheckInProblem.UNKNOWN)
        state = self._appointments.link_state(invitation)
        problems = {
            LinkState.CANCELLED: CheckInProblem.CANCELLED,
            LinkState.EXPIRED: CheckInProblem.EXPIRED,
            LinkState.ENDED: CheckInProblem.ENDED,
            LinkState.NOT_YET_OPEN: CheckInProblem.NOT_YET_OPEN,
        }
        if state in problems:
            raise CheckInRefused(problems[state])
        return invitation

    def paused_until(self, invitation: Invitation, client: str | None) -> datetime | None:
        """Until when this client must wait before its next try at this invitation's code (None: it may try)."""
        return _moment(self._guard.paused_until(self._guard_key(invitation, client), now=self._clock.now().timestamp()))

    def check_in(
        self,
        invitation_public_id: str,
        *,
        code: str,
        name: str,
        consent: bool,
        language: str,
        client: str | None = None,
    ) -> ParticipantPass:
        """``client`` names the client without its address (the web layer's HMAC); wrong codes pause only it."""
        began = self._clock.now().timestamp()  # before the state is read: a check-in racing an end counts as older
        invitation = self.invitation(invitation_public_id)
        key = self._guard_key(invitation, client)
        closes = invitation.appointment.ends_at + timedelta(minutes=self._settings.join_grace_minutes)
        attempt = self._guard.attempt(key, now=self._clock.now().timestamp(), keep_until=closes.timestamp())
        if not attempt.allowed:
            # Refused before the code is checked, even the right one: a pause must stop guessing.
            raise CheckInRefused(CheckInProblem.THROTTLED, until=_moment(attempt.paused_until))
        if not verify_code(code, invitation.code_hash):
            self._count_failure(invitation, attempt)
        self._guard.forget(key)
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
        participant_pass = ParticipantPass(
            invitation=invitation.public_id,
            appointment=appointment.public_id,
            practitioner=appointment.practitioner.public_id,
            participant=secrets.token_urlsafe(9),
            kind=invitation.kind.value,
            language=language,
            expires_at=expires.timestamp(),
            issued_at=began,
        )
        # The name lives as long as the presence may (the retention table), never longer than the pass.
        grace = timedelta(minutes=min(self._settings.retention_presence_grace_minutes, 60))
        name_until = min(participant_pass.expires_at, (appointment.ends_at + grace).timestamp())
        record = CheckInRecord(
            invitation.public_id, participant_pass.participant, display_name, name_until, code_tag(invitation.code_hash)
        )
        self._hold(participant_pass, record)
        return participant_pass

    def _hold(self, participant_pass: ParticipantPass, record: CheckInRecord) -> None:
        """One person per invitation: this check-in replaces any earlier one, wherever it is."""
        previous = self._presence.hold_check_in(record)
        members = self._presence.members(participant_pass.appointment, float("-inf"))
        if previous is not None or any(m.invitation == participant_pass.invitation for m in members):
            self._revoker.check_ins(
                participant_pass.appointment,
                participant_pass.invitation,
                Reason.REPLACED,
                keep=record.member,
                also=[previous.member] if previous is not None else [],
            )

    def hold_again(self, record: CheckInRecord) -> None:
        """After presence was lost (Redis restarted) a connected participant writes its check-in back.

        As it was: its code tag still has to match the invitation's code at the next check.
        """
        if self._presence.check_in(record.invitation) is None:
            self._presence.hold_check_in(record)

    def record_of(self, participant_pass: ParticipantPass) -> CheckInRecord | None:
        """The check-in this pass was issued with, while it is the invitation's current one."""
        return held_by(participant_pass, self._presence.check_in(participant_pass.invitation))

    def name_of(self, participant_pass: ParticipantPass) -> str | None:
        """The display name given at check-in, while this pass is the invitation's current one."""
        record = self.record_of(participant_pass)
        return record.name if record is not None else None

    def record_relay_consent(self, invitation_public_id: str, language: str) -> None:
        invitation = self._appointments.invitation_by_public_id(invitation_public_id)
        if invitation is not None:
            self._record_consent(invitation, ConsentKind.RELAY, language)
            self._session().commit()

    def pass_is_valid(self, participant_pass: ParticipantPass) -> bool:
        return self.valid_record(participant_pass) is not None

    def valid_record(
        self, participant_pass: ParticipantPass, invitation: Invitation | None = None
    ) -> CheckInRecord | None:
        """The pass's check-in, if the pass still works: within its time, the invitation's current
        check-in made with the current code, and the invitation still open. ``invitation``: the
        pass's invitation when the caller has it already."""
        if participant_pass.expires_at <= self._clock.now().timestamp():
            return None
        record = self.record_of(participant_pass)
        if record is None:
            return None  # replaced by a later check-in, or revoked by a new code
        if invitation is None or invitation.public_id != participant_pass.invitation:
            invitation = self._appointments.invitation_by_public_id(participant_pass.invitation)
        if (
            invitation is None
            or _issued_before_end(participant_pass, invitation)
            or not secrets.compare_digest(record.code_tag, code_tag(invitation.code_hash))  # made with today's code
            or self._appointments.link_state(invitation) is not LinkState.OPEN
        ):
            return None
        return record

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

    def _guard_key(self, invitation: Invitation, client: str | None) -> str:
        # Callers without a web request (scripts, tests) share one client.
        return guard_key(invitation.public_id, invitation.code_hash, client or "direct")

    def _count_failure(self, invitation: Invitation, attempt: Attempt) -> NoReturn:
        """A wrong code: the invitation counts it, and a try that makes its client pause is reported."""
        # In SQL (``n = n + 1``), so that parallel wrong codes from many clients are all counted.
        invitation.failed_code_attempts = Invitation.failed_code_attempts + 1  # type: ignore[assignment]
        if attempt.paused_until is None:
            self._session().commit()
            left = self._settings.code_max_attempts - attempt.number if attempt.number else None
            raise CheckInRefused(CheckInProblem.WRONG_CODE, attempts_left=left)
        until = datetime.fromtimestamp(attempt.paused_until, UTC)
        invitation.code_locks = Invitation.code_locks + 1  # type: ignore[assignment]
        if invitation.code_locked_until is None or invitation.code_locked_until < until:
            invitation.code_locked_until = until  # the end of the latest pause, whichever client it holds back
        appointment = invitation.appointment
        self._audit.record(
            "invitation.code_locked",
            Actor(ActorKind.PATIENT),
            organisation_id=appointment.organisation_id,
            subject=appointment.public_id,
            minutes=max(1, round((until - self._clock.now()).total_seconds() / 60)),
        )
        self._session().commit()
        self._announce(
            signals.code_entry_locked, appointment_id=appointment.public_id, invitation_id=invitation.public_id
        )
        raise CheckInRefused(CheckInProblem.THROTTLED, until=until)


def _issued_before_end(participant_pass: ParticipantPass, invitation: Invitation) -> bool:
    """A pass from before the last "End for everyone" stays void after a reopening."""
    ended_at = invitation.appointment.ended_at
    return ended_at is not None and participant_pass.issued_at <= ended_at.timestamp()


def _moment(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)
