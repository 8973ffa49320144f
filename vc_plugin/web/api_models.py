"""What the JSON API returns, as pydantic models (they also feed the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from ..core.models import Appointment, Invitation, Practitioner
from ..domain.appointments import AppointmentBook, IssuedInvitation, LinkState


class InvitationOut(BaseModel):
    id: str
    kind: str
    language: str
    delivery: str = Field(description="not_sent, queued, sent or failed")
    delivery_changed_at: datetime | None
    code_by_sms: bool
    code_locked_until: datetime | None = Field(
        description="End of the latest pause of a client (device) that entered too many wrong codes; the link "
        "kept working for every other client. Null: no pause since the code was issued."
    )
    code_locks: int = Field(
        description="How often a client had to pause after too many wrong codes for this invitation: someone "
        "may be guessing. Nobody else was locked out."
    )
    link: str = Field(description="The join link without the code.")
    link_state: str = Field(description="open, not_yet_open, ended (the practice may reopen it), expired or cancelled")
    contact_stored: bool


class IssuedInvitationOut(InvitationOut):
    code: str = Field(description="The access code, returned only when it is created.")
    link_with_code: str = Field(description="The link with the code in its fragment.")


class AppointmentOut(BaseModel):
    id: str
    practitioner: str
    practitioner_name: str
    starts_at: datetime
    ends_at: datetime
    kind: str
    state: str
    relay_only: bool
    label: str | None
    created_at: datetime
    delete_after: datetime
    invitations: list[InvitationOut]


class PlannedAppointmentOut(AppointmentOut):
    invitations: list[IssuedInvitationOut]  # type: ignore[assignment]


class AppointmentListOut(BaseModel):
    appointments: list[AppointmentOut]


class PractitionerOut(BaseModel):
    id: str
    display_name: str
    role: str


class PractitionerListOut(BaseModel):
    practitioners: list[PractitionerOut]


class ErrorOut(BaseModel):
    error: str
    message: str
    fields: dict[str, str] | None = None


def invitation_out(book: AppointmentBook, invitation: Invitation) -> InvitationOut:
    return InvitationOut(
        id=invitation.public_id,
        kind=invitation.kind.value,
        language=invitation.language,
        delivery=invitation.delivery.value,
        delivery_changed_at=invitation.delivery_changed_at,
        code_by_sms=invitation.code_by_sms,
        code_locked_until=invitation.code_locked_until,
        code_locks=invitation.code_locks,
        link=book.link(invitation),
        link_state=LinkState(book.link_state(invitation)).value,
        contact_stored=invitation.contact_encrypted is not None,
    )


def issued_out(book: AppointmentBook, issued: IssuedInvitation) -> IssuedInvitationOut:
    base = invitation_out(book, issued.invitation).model_dump()
    return IssuedInvitationOut(**base, code=issued.code, link_with_code=issued.link)


def appointment_out(book: AppointmentBook, appointment: Appointment) -> AppointmentOut:
    return AppointmentOut(
        id=appointment.public_id,
        practitioner=appointment.practitioner.public_id,
        practitioner_name=appointment.practitioner.display_name,
        starts_at=appointment.starts_at,
        ends_at=appointment.ends_at,
        kind=appointment.kind.value,
        state=appointment.state.value,
        relay_only=appointment.relay_only,
        label=book.label(appointment),
        created_at=appointment.created_at,
        delete_after=appointment.delete_after,
        invitations=[invitation_out(book, invitation) for invitation in appointment.invitations],
    )


def practitioner_out(practitioner: Practitioner) -> PractitionerOut:
    return PractitionerOut(
        id=practitioner.public_id, display_name=practitioner.display_name, role=practitioner.role.value
    )
