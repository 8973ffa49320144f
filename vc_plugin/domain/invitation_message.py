"""The invitation as the patient receives it: the mail (text and HTML), the ``.ics`` and the SMS text.

The ``.ics`` attachment carries the link but not the code, because calendars are often
synchronised to third parties.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from babel.dates import format_date
from icalendar import Calendar, Event

from ..core.catalogue import gettext as _
from ..core.catalogue import language
from ..core.config import Settings
from ..core.models import Appointment, Invitation, Practitioner
from ..core.time_words import day_and_time, time_of_day
from .invitations import InvitationPayload

#: Renders a template by name with variables (Flask's ``render_template`` in the app).
Render = Callable[..., str]


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
        time=time_of_day(start, zone, lang),
        when=day_and_time(start, zone, lang),
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
    render: Render,
) -> EmailMessage:
    """The invitation mail; ``render`` is the app's template renderer, so hosts may restyle the mail."""
    appointment = invitation.appointment
    lang = invitation.language
    with language(lang):
        context = mail_context(settings, appointment, practitioner, payload, lang)
        show_code = not invitation.code_by_sms
        subject = _("Your video consultation on %(date)s", date=context.date)
        variables = {"m": context, "show_code": show_code, "settings": settings, "_": _}
        text = render("vc_plugin/email/invitation.txt", **variables)
        html = render("vc_plugin/email/invitation.html", **variables)
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
