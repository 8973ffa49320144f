"""Turning the planning forms into the same request models the JSON API uses.

The page asks for date, start time and duration in the display time zone; the model wants
aware datetimes. Errors come back per field, in the person's language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError
from werkzeug.datastructures import MultiDict

from ..core.catalogue import gettext as _
from ..core.models import ParticipantKind
from ..domain.inputs import AppointmentIn, ParticipantIn, RescheduleIn

DURATIONS = (10, 15, 20, 30, 45, 60, 90, 120)

#: Our own validation messages, so that they can be shown translated.
MESSAGES = {
    "not a valid email address": lambda: _("This is not a valid email address."),
    "use the international format, e.g. +49 30 1234567": lambda: _(
        "Use the international format, e.g. +49 30 1234567."
    ),
    "the end must be after the start": lambda: _("The end must be after the start."),
    "an appointment lasts at most 8 hours": lambda: _("An appointment lasts at most 8 hours."),
    "invite at least one participant": lambda: _("Invite at least one participant."),
    "a single appointment has one patient; plan a group appointment for more": lambda: _(
        "A single appointment has one patient; plan a group appointment for more."
    ),
    "code_by_sms needs a phone number": lambda: _("Sending the code by SMS needs a mobile number."),
    "code_by_sms sends the link by email: give an email address too": lambda: _(
        "With the code by SMS, the link goes by email: give an email address too."
    ),
    "the start lies in the past": lambda: _("The start lies in the past."),
    "unknown practitioner": lambda: _("Choose a practitioner of your organisation."),
    "choose the practitioner who holds the consultation": lambda: _(
        "Choose the practitioner who holds the consultation."
    ),
    "no email address: give one, or read the new code out on the phone": lambda: _(
        "No email address is stored: enter one, or read the new code out on the phone."
    ),
    "the code goes by SMS: give a phone number": lambda: _("The code goes by SMS: enter a mobile number."),
}


def translate(message: str) -> str:
    message = message.removeprefix("Value error, ")
    if message.startswith("at most ") and message.endswith(" invitations per appointment"):
        return _("At most %(n)s invitations per appointment.", n=message.split()[2])
    if message == "a single appointment takes a patient and up to two companions":
        return _("A single appointment takes a patient and up to two companions.")
    if message.startswith("the appointment is "):
        return _("The appointment can no longer be changed.")
    found = MESSAGES.get(message)
    return found() if found else message


@dataclass
class FormResult:
    model: BaseModel | None
    errors: dict[str, str] = field(default_factory=dict)


def validation_errors(error: ValidationError, prefix: str = "") -> dict[str, str]:
    errors: dict[str, str] = {}
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "form"
        kind = item["type"]
        if kind == "string_too_long":
            text = _("Too long: at most %(n)s characters.", n=item["ctx"]["max_length"])
        elif kind in {"missing", "datetime_parsing", "datetime_type"}:
            text = _("Please fill this in.")
        elif kind in {"enum", "literal_error"}:
            text = _("Choose one of the offered values.")
        else:
            text = translate(item["msg"])
        errors.setdefault(prefix + location, text)
    return errors


def _moment(day: str, start: str, zone: ZoneInfo) -> datetime | None:
    try:
        return datetime.combine(date.fromisoformat(day), time.fromisoformat(start), tzinfo=zone)
    except ValueError:
        return None


def _duration(value: str) -> int:
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    return int(value) if value.isdecimal() and int(value) in DURATIONS else 30


def times_from_form(form: MultiDict[str, str], zone: ZoneInfo) -> tuple[dict[str, Any], dict[str, str]]:
    starts = _moment(form.get("date", ""), form.get("time", ""), zone)
    ends = _plus_minutes(starts, _duration(form.get("duration", ""))) if starts is not None else None
    if starts is None or ends is None or not _fits_in_utc(starts):
        return {}, {"starts_at": _("Enter a date and a start time.")}
    return {"starts_at": starts, "ends_at": ends}, {}


def _plus_minutes(moment: datetime, minutes: int) -> datetime | None:
    """``moment`` plus ``minutes``, or None at the calendar's end (year 9999)."""
    try:
        later = moment + timedelta(minutes=minutes)
    except OverflowError:
        return None
    return later if _fits_in_utc(later) else None


def _fits_in_utc(moment: datetime) -> bool:
    """The first and last hours of the calendar have no UTC equivalent in every zone."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    return True


def participants_from_form(form: MultiDict[str, str], rows: int, *, first_required: bool) -> list[dict[str, Any]]:
    participants = []
    for index in range(rows):
        email = form.get(f"p{index}-email", "").strip()
        phone = form.get(f"p{index}-phone", "").strip()
        used = email or phone or (index == 0 and first_required)
        if not used:
            continue
        participants.append(
            {
                "kind": form.get(f"p{index}-kind", ParticipantKind.PATIENT.value),
                "language": form.get(f"p{index}-language", "de"),
                "email": email or None,
                "phone": phone or None,
                "store_contact": form.get(f"p{index}-store_contact") == "on",
                "code_by_sms": form.get(f"p{index}-code_by_sms") == "on",
            }
        )
    return participants


def appointment_from_form(form: MultiDict[str, str], zone: ZoneInfo, rows: int) -> FormResult:
    times, errors = times_from_form(form, zone)
    if errors:
        return FormResult(None, errors)
    data = {
        "practitioner": form.get("practitioner") or None,
        "kind": form.get("kind", "single"),
        "label": form.get("label", ""),
        "relay_only": form.get("relay_only") == "on",
        "participants": participants_from_form(form, rows, first_required=True),
        **times,
    }
    try:
        return FormResult(AppointmentIn.model_validate(data))
    except ValidationError as error:
        return FormResult(None, validation_errors(error))


def participant_from_form(form: MultiDict[str, str]) -> FormResult:
    [data] = participants_from_form(form, 1, first_required=True)
    try:
        return FormResult(ParticipantIn.model_validate(data))
    except ValidationError as error:
        return FormResult(None, validation_errors(error, prefix="participants.0."))


def reschedule_from_form(form: MultiDict[str, str], zone: ZoneInfo) -> FormResult:
    times, errors = times_from_form(form, zone)
    if errors:
        return FormResult(None, errors)
    try:
        return FormResult(RescheduleIn.model_validate(times))
    except ValidationError as error:
        return FormResult(None, validation_errors(error))
