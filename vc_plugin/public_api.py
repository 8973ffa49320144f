"""The Python API for host applications, offered as methods of ``VideoConsultation``.

The host is trusted: its calls act for the organisation of the appointment or practitioner
concerned. They run inside the app context (a request, a CLI command, a job)::

    planned = vc.create_appointment(
        practitioner="k2Jf…", starts_at=start, ends_at=start + timedelta(minutes=30),
        participants=[{"email": "patient@example.org", "language": "de"}],
    )
    planned.invitations[0].code   # shown once: the mail is already queued
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .core.models import Appointment
from .domain.access import Principal
from .domain.appointments import IssuedInvitation, NotFound, PlannedAppointment
from .domain.inputs import AppointmentIn, ParticipantIn, SendIn
from .web.state import vc_state


class PublicAPI:
    def create_appointment(
        self,
        *,
        practitioner: str,
        starts_at: datetime,
        ends_at: datetime,
        participants: list[dict[str, Any]] | None = None,
        kind: str = "single",
        label: str | None = None,
        relay_only: bool = False,
    ) -> PlannedAppointment:
        """Plan an appointment for a practitioner (by public id) and queue its invitations."""
        state = vc_state()
        person = state.directory.by_public_id(practitioner)
        if person is None:
            raise NotFound("no such practitioner")
        request = AppointmentIn(
            practitioner=practitioner,
            starts_at=starts_at,
            ends_at=ends_at,
            kind=kind,  # type: ignore[arg-type]
            label=label,
            relay_only=relay_only,
            participants=[ParticipantIn(**item) for item in (participants or [{}])],
        )
        return state.appointments.plan(Principal.host(person.organisation_id), request)

    def list_appointments(
        self, *, organisation: str, practitioner: str | None = None, upcoming: bool = True
    ) -> list[Appointment]:
        state = vc_state()
        organisation_id = state.directory.organisation(organisation).id
        return state.appointments.list(
            Principal.host(organisation_id), upcoming=upcoming, practitioner_public_id=practitioner
        )

    def get_appointment(self, appointment_id: str) -> Appointment:
        return vc_state().appointments.get(host_principal(appointment_id), appointment_id)

    def cancel_appointment(self, appointment_id: str) -> Appointment:
        return vc_state().appointments.cancel(host_principal(appointment_id), appointment_id)

    def delete_appointment(self, appointment_id: str) -> None:
        """Delete the appointment and all its data now."""
        vc_state().appointments.delete(host_principal(appointment_id), appointment_id)

    def send_invitation(
        self, invitation_id: str, *, email: str | None = None, phone: str | None = None, language: str | None = None
    ) -> IssuedInvitation:
        """Issue a new code for an invitation and send it (to ``email`` or the stored contact)."""
        request = SendIn(email=email, phone=phone, language=language)  # type: ignore[arg-type]
        return vc_state().appointments.resend(_invitation_host(invitation_id), invitation_id, request)

    def export_appointment(self, appointment_id: str) -> dict[str, Any]:
        """Everything stored about the appointment, personal fields decrypted (Art. 15 and 20 GDPR)."""
        return vc_state().subject_rights.export_appointment(host_principal(appointment_id), appointment_id)

    def delete_participant(self, invitation_id: str) -> None:
        """One participant's invitation and consent records, now (Art. 17 GDPR)."""
        vc_state().subject_rights.erase_participant(_invitation_host(invitation_id), invitation_id)


def host_principal(appointment_id: str) -> Principal:
    """The host application acting for the organisation of this appointment."""
    found = vc_state().appointments.organisation_of(appointment_id)
    if found is None:
        raise NotFound("no such appointment")
    return Principal.host(found)


def _invitation_host(invitation_id: str) -> Principal:
    invitation = vc_state().appointments.invitation_by_public_id(invitation_id)
    if invitation is None:
        raise NotFound("no such invitation")
    return Principal.host(invitation.appointment.organisation_id)
