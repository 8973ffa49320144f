"""Tables of vc_plugin, all prefixed ``vc_``.

The models live on their own declarative base, not on the host's ``db.Model``, so the
extension works with any Flask-SQLAlchemy instance and ships its own Alembic branch. What
is stored, and for how long, follows the retention table in ``docs/privacy.md`` (``retention.py`` enforces it): no IP
addresses, no display names of patients, and personal fields only encrypted.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every database; naive datetimes are refused, not guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware datetime (UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[type, Any]] = {datetime: UTCDateTime()}


def _enum(kind: type[enum.Enum], name: str) -> Enum:
    return Enum(
        kind,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class Role(enum.StrEnum):
    PRACTITIONER = "practitioner"
    STAFF = "staff"
    ADMIN = "admin"


class AppointmentKind(enum.StrEnum):
    SINGLE = "single"
    GROUP = "group"


class AppointmentState(enum.StrEnum):
    PLANNED = "planned"
    CANCELLED = "cancelled"
    ENDED = "ended"


class ParticipantKind(enum.StrEnum):
    PATIENT = "patient"
    INTERPRETER = "interpreter"
    RELATIVE = "relative"
    OTHER = "other"


class Delivery(enum.StrEnum):
    NOT_SENT = "not_sent"
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class ConsentKind(enum.StrEnum):
    PARTICIPATION = "participation"
    RELAY = "relay"


class Organisation(Base):
    __tablename__ = "vc_organisation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class OrganisationKey(Base):
    """An organisation's data key, wrapped by a master key. Deleting it shreds the data."""

    __tablename__ = "vc_organisation_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("vc_organisation.id", ondelete="CASCADE"), index=True)
    wrapped_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class Practitioner(Base):
    """Anyone who signs in: practitioners, staff and admins. Holds the minimum to show a name."""

    __tablename__ = "vc_practitioner"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_vc_practitioner_issuer_subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("vc_organisation.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(_enum(Role, "vc_role"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    last_sign_in_at: Mapped[datetime | None]
    #: Sessions signed in before this moment are void (set by signing out: copies of the cookie die too).
    sessions_valid_after: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship()

    @property
    def may_join_calls(self) -> bool:
        """Staff organise but never join a call (Anlage 31b BMV-Ä)."""
        return self.role is not Role.STAFF


class Appointment(Base):
    __tablename__ = "vc_appointment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("vc_organisation.id", ondelete="CASCADE"), index=True)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("vc_practitioner.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("vc_practitioner.id", ondelete="SET NULL"), index=True)
    starts_at: Mapped[datetime] = mapped_column(index=True)
    #: Indexed for the purge: metadata goes a fixed time after the planned end.
    ends_at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[AppointmentKind] = mapped_column(_enum(AppointmentKind, "vc_appointment_kind"))
    state: Mapped[AppointmentState] = mapped_column(_enum(AppointmentState, "vc_appointment_state"))
    relay_only: Mapped[bool] = mapped_column(Boolean, default=False)
    label_encrypted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delete_after: Mapped[datetime] = mapped_column(index=True)
    #: When it was last ended for everyone. Kept when it is reopened: passes and sockets from
    #: before that moment stay void (:mod:`vc_plugin.domain.revocation`).
    ended_at: Mapped[datetime | None]

    practitioner: Mapped[Practitioner] = relationship(foreign_keys=[practitioner_id])
    invitations: Mapped[list[Invitation]] = relationship(
        back_populates="appointment", cascade="all, delete-orphan", passive_deletes=True, order_by="Invitation.id"
    )


class Invitation(Base):
    """One participant's way in: a link and a code. The code is kept only as a slow hash."""

    __tablename__ = "vc_invitation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("vc_appointment.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ParticipantKind] = mapped_column(_enum(ParticipantKind, "vc_participant_kind"))
    language: Mapped[str] = mapped_column(String(8))
    code_hash: Mapped[str] = mapped_column(String(160))
    code_by_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    contact_encrypted: Mapped[str | None] = mapped_column(Text)
    delivery: Mapped[Delivery] = mapped_column(_enum(Delivery, "vc_delivery"))
    delivery_changed_at: Mapped[datetime | None]
    #: Identifies the current send request, so a retried or duplicated job sends at most once.
    delivery_key: Mapped[str | None] = mapped_column(String(32))
    failed_code_attempts: Mapped[int] = mapped_column(Integer, default=0)
    code_locked_until: Mapped[datetime | None]
    code_locks: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]

    appointment: Mapped[Appointment] = relationship(back_populates="invitations")


class ConsentRecord(Base):
    """That consent was given, to which text version and when; never by whom by name."""

    __tablename__ = "vc_consent"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("vc_appointment.id", ondelete="CASCADE"), index=True)
    #: Indexed: deleting invitations (the purge, by the million) must not scan this table each time.
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("vc_invitation.id", ondelete="SET NULL"), index=True)
    kind: Mapped[ConsentKind] = mapped_column(_enum(ConsentKind, "vc_consent_kind"))
    text_version: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    given_at: Mapped[datetime]


class AuditEvent(Base):
    """Who did what, by internal ids and counts only; no names, addresses or contents."""

    __tablename__ = "vc_audit_event"
    __table_args__ = (Index("ix_vc_audit_event_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("vc_organisation.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(64))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    subject: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class OutboxJob(Base):
    """A queued job's arguments, kept in the database until the job is done.

    Redis may lose its data on a restart; the outbox lets workers put such jobs back.
    Arguments that carry personal data are sealed by the caller (an invitation's address),
    and rows are deleted when the job succeeds, fails for good, or after
    ``VC_RETENTION_FAILED_JOB_HOURS``.
    """

    __tablename__ = "vc_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(String(100), unique=True)
    task: Mapped[str] = mapped_column(String(200))
    args: Mapped[str] = mapped_column(Text)
    on_final_failure: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(index=True)


class ApiToken(Base):
    """A host application's credential for the JSON API, scoped to one organisation."""

    __tablename__ = "vc_api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("vc_organisation.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
