"""What a request to plan or change an appointment must look like (pages and JSON API alike).

Pydantic checks shape and size; rules that need the database or the clock (in the past,
unknown practitioner) live in :mod:`vc_plugin.domain.appointments`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from ..core.models import AppointmentKind, ParticipantKind

MAX_DURATION = timedelta(hours=8)
PHONE = re.compile(r"^\+[1-9]\d{6,14}$")


def _email(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        raise ValueError("not a valid email address") from None


def _phone(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    compact = re.sub(r"[\s()/-]", "", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not PHONE.match(compact):
        raise ValueError("use the international format, e.g. +49 30 1234567")
    return compact


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("include the time zone offset, e.g. 2026-11-23T10:00:00+01:00")
    return value


Email = Annotated[str | None, Field(default=None, max_length=254), AfterValidator(_email)]
Phone = Annotated[str | None, Field(default=None, max_length=32), AfterValidator(_phone)]
AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
Language = Literal["de", "en"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ParticipantIn(Strict):
    """One invitation: who it is for (kind), how it is sent, in which language."""

    kind: ParticipantKind = ParticipantKind.PATIENT
    language: Language = "de"
    email: Email = None
    phone: Phone = None
    store_contact: bool = Field(
        False, description="Keep the contact (encrypted) so invitations can be re-sent without asking again."
    )
    code_by_sms: bool = Field(False, description="Send the code by SMS and only the link by email.")

    @model_validator(mode="after")
    def _sms_needs_phone(self) -> ParticipantIn:
        if self.code_by_sms and not self.phone:
            raise ValueError("code_by_sms needs a phone number")
        if self.code_by_sms and not self.email:
            raise ValueError("code_by_sms sends the link by email: give an email address too")
        return self


class AppointmentIn(Strict):
    practitioner: str | None = Field(
        None, max_length=32, description="Public id of the practitioner; default: the signed-in practitioner."
    )
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    kind: AppointmentKind = AppointmentKind.SINGLE
    label: str | None = Field(None, max_length=200, description="Optional note for the practice, stored encrypted.")
    relay_only: bool = Field(False, description="Always use the TURN relay: neither side sees the other's IP address.")
    participants: list[ParticipantIn] = Field(default_factory=lambda: [ParticipantIn()], max_length=11)

    @field_validator("label")
    @classmethod
    def _empty_label_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _times(self) -> AppointmentIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("the end must be after the start")
        if self.ends_at - self.starts_at > MAX_DURATION:
            raise ValueError("an appointment lasts at most 8 hours")
        if not self.participants:
            raise ValueError("invite at least one participant")
        if (
            self.kind is AppointmentKind.SINGLE
            and sum(p.kind is ParticipantKind.PATIENT for p in self.participants) > 1
        ):
            raise ValueError("a single appointment has one patient; plan a group appointment for more")
        return self


class RescheduleIn(Strict):
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _times(self) -> RescheduleIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("the end must be after the start")
        if self.ends_at - self.starts_at > MAX_DURATION:
            raise ValueError("an appointment lasts at most 8 hours")
        return self


class SendIn(Strict):
    """(Re)send an invitation: a new code replaces the old one."""

    email: Email = None
    phone: Phone = None
    language: Language | None = None
    code_by_sms: bool | None = None
