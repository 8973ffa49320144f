"""Invitations: the mail a patient receives, and how it travels through the job queue.

The address and the code travel only inside the job's payload, sealed with a key derived
from the master key; the database keeps neither (unless the organiser chose to store the
contact, encrypted). The ``.ics`` attachment carries the link but not the code, because
calendars are often synchronised to third parties.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid
from typing import TYPE_CHECKING

from babel.dates import format_date, format_datetime, format_time
from flask import render_template
from icalendar import Calendar, Event

from ..adapters.jobs import JobQueue, JobSpec, Task
from ..core import signals
from ..core.catalogue import gettext as _
from ..core.catalogue import language
from ..core.config import Settings
from ..core.crypto import MasterKeyring
from ..core.models import Appointment, Delivery, Invitation, Practitioner
from ..core.signals import Announcer

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from ..core.clock import Clock

PAYLOAD_PURPOSE = "vc_plugin invitation payload"


@dataclass(frozen=True)
class Contact:
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class InvitationPayload:
    """What the job carries, sealed: enough to send one mail, nothing more."""

    key: str
    code: str
    link: str
    email: str | None
    phone: str | None

    def seal(self, keyring: MasterKeyring) -> str:
        return keyring.seal_for(PAYLOAD_PURPOSE, json.dumps(asdict(self)).encode())

    @classmethod
    def open(cls, keyring: MasterKeyring, sealed: str) -> InvitationPayload:
        return cls(**json.loads(keyring.open_for(PAYLOAD_PURPOSE, sealed)))


class InvitationSender:
    """Marks an invitation as queued and puts the sealed job on the queue."""

    def __init__(
        self,
        *,
        jobs: JobQueue,
        keyring: MasterKeyring,
        clock: Clock,
        settings: Settings,
        session: Callable[[], Session],
        announce: Announcer,
        deliver: Task,
        give_up: Task,
    ) -> None:
        """``deliver`` sends one invitation (a job); ``give_up`` marks it failed when no retry is left."""
        self._announce = announce
        self._deliver = deliver
        self._give_up = give_up
        self._jobs = jobs
        self._keyring = keyring
        self._clock = clock
        self._settings = settings
        self._session = session

    def queue(self, invitation: Invitation, code: str, link: str, contact: Contact) -> None:
        """Commit the queued state first, so the worker always finds it."""
        key = secrets.token_hex(8)
        invitation.delivery = Delivery.QUEUED
        invitation.delivery_key = key
        invitation.delivery_changed_at = self._clock.now()
        session = self._session()
        session.commit()
        payload = InvitationPayload(key, code, link, contact.email, contact.phone)
        try:
            self._jobs.enqueue(
                JobSpec(
                    self._deliver,
                    (invitation.public_id, payload.seal(self._keyring)),
                    retries=self._settings.invitation_retries,
                    backoff=tuple(self._settings.invitation_backoff_seconds),
                    on_final_failure=self._give_up,
                    job_id=f"vc-invite-{invitation.public_id}-{key}",
                )
            )
        except Exception:  # noqa: BLE001 - the queue is unreachable: say so on the invitation
            invitation.delivery = Delivery.FAILED
            invitation.delivery_changed_at = self._clock.now()
            session.commit()
            return
        self._announce(
            signals.invitation_queued,
            appointment_id=invitation.appointment.public_id,
            invitation_id=invitation.public_id,
        )


# --- the message ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MailContext:
    practitioner: str
    date: str
    time: str
    when: str
    link: str
    link_without_code: str
    code: str | None
    language: str


def mail_context(
    settings: Settings, appointment: Appointment, practitioner: Practitioner, payload: InvitationPayload, lang: str
) -> MailContext:
    zone = settings.zone
    start = appointment.starts_at.astimezone(zone)
    return MailContext(
        practitioner=practitioner.display_name,
        date=format_date(start, format="full", locale=lang),
        time=format_time(start, format="short", locale=lang),
        when=format_datetime(start, format="full", tzinfo=zone, locale=lang),
        link=payload.link,
        link_without_code=payload.link.split("#", 1)[0],
        code=payload.code,
        language=lang,
    )


def compose_invitation(
    settings: Settings,
    invitation: Invitation,
    practitioner: Practitioner,
    payload: InvitationPayload,
    *,
    sender_domain: str,
) -> EmailMessage:
    appointment = invitation.appointment
    lang = invitation.language
    with language(lang):
        context = mail_context(settings, appointment, practitioner, payload, lang)
        show_code = not invitation.code_by_sms
        subject = _("Your video consultation on %(date)s", date=context.date)
        variables = {"m": context, "show_code": show_code, "settings": settings, "_": _}
        text = render_template("vc_plugin/email/invitation.txt", **variables)
        html = render_template("vc_plugin/email/invitation.html", **variables)
        calendar = invitation_calendar(appointment, invitation, context, sender_domain)
    message = EmailMessage()
    message["From"] = settings.mail_sender
    message["To"] = payload.email or ""
    message["Subject"] = subject
    # Derived from the delivery key: a re-delivered job produces the same Message-ID.
    message["Message-ID"] = make_msgid(idstring=f"vc-{payload.key}", domain=sender_domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    message.add_attachment(
        calendar, maintype="text", subtype="calendar", filename="termin.ics" if lang == "de" else "appointment.ics"
    )
    return message


def invitation_calendar(appointment: Appointment, invitation: Invitation, context: MailContext, domain: str) -> bytes:
    """An iCalendar event with the link (without the code) and no patient data."""
    calendar = Calendar()
    calendar.add("prodid", "-//vc_plugin//video consultation//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"{invitation.public_id}@{domain}")
    event.add("dtstamp", invitation.created_at)
    event.add("dtstart", appointment.starts_at)
    event.add("dtend", appointment.ends_at)
    event.add("summary", _("Video consultation with %(name)s", name=context.practitioner))
    event.add("location", context.link_without_code)
    event.add("url", context.link_without_code)
    event.add(
        "description",
        _("Join here: %(link)s — you need the access code from the invitation email.", link=context.link_without_code),
    )
    calendar.add_component(event)
    return calendar.to_ical()


def sms_text(context: MailContext) -> str:
    return _("Your access code for the video consultation on %(date)s: %(code)s", date=context.date, code=context.code)


def starts_at_text(moment: datetime, settings: Settings, lang: str) -> str:
    return format_datetime(moment, format="full", tzinfo=settings.zone, locale=lang)
