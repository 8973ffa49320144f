"""The technical part of a privacy notice (Datenschutzhinweis), written from the running configuration.

Retention periods, the relay, server locations, processors and the cookie come from the
settings in force, so the notice cannot drift from what the service does. The operator
adds the legal part (legal basis, data protection officer, supervisory authority).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.catalogue import gettext as _
from ..core.catalogue import language, ngettext
from ..core.config import Settings
from ..domain.turn import ice_host
from .cookie import cookie_name


@dataclass(frozen=True)
class Section:
    heading: str
    paragraphs: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Notice:
    language: str
    title: str
    intro: str
    sections: list[Section]

    def markdown(self) -> str:
        lines = [f"# {self.title}", "", self.intro, ""]
        for section in self.sections:
            lines += [f"## {section.heading}", ""]
            for paragraph in section.paragraphs:
                lines += [paragraph, ""]
            if section.items:
                lines += [f"- {item}" for item in section.items] + [""]
        return "\n".join(lines).rstrip() + "\n"


def _days(n: int) -> str:
    return ngettext("%(num)d day", "%(num)d days", n)


def _hours(n: int) -> str:
    return ngettext("%(num)d hour", "%(num)d hours", n)


def _minutes(n: int) -> str:
    return ngettext("%(num)d minute", "%(num)d minutes", n)


def _hosts(urls: list[str]) -> str:
    return ", ".join(dict.fromkeys(ice_host(url) for url in urls))


def build_notice(settings: Settings, lang: str) -> Notice:
    """The notice in ``lang`` for these settings."""
    with language(lang):
        return Notice(
            language=lang,
            title=_("Privacy notice for video consultations: technical part"),
            intro=_(
                "This part describes what the video consultation service stores, for how long, and where data "
                "travels. It is generated from the service's current configuration."
            ),
            sections=[
                _controller(settings),
                _what_is_processed(settings),
                _connections(settings),
                _locations(settings),
                _processors(settings),
                _cookies(settings),
                _rights(),
            ],
        )


def _controller(settings: Settings) -> Section:
    name = settings.operator_name or _("the organisation that invited you")
    return Section(
        _("Who is responsible"),
        [_("Responsible for the processing (controller) is %(name)s.", name=name)],
    )


def _what_is_processed(settings: Settings) -> Section:
    ip_rule = (
        _("IP addresses are removed from all log entries.")
        if settings.log_ip_mode == "drop"
        else _("IP addresses in log entries are shortened (IPv4 to the first two parts, IPv6 to the first 32 bits).")
    )
    return Section(
        _("What is processed, and for how long"),
        items=[
            _(
                "Appointment data (time, state, the practitioner): deleted %(period)s after the planned end.",
                period=_days(settings.retention_metadata_days),
            ),
            _(
                "An optional note on the appointment and optional contact details: encrypted at rest, deleted with "
                "the appointment; the organiser can delete them at any time."
            ),
            _("The access code: stored only as a one-way hash, deleted with the appointment."),
            _(
                "The email address for the invitation: only in the encrypted mail job until the mail is sent; "
                "a job that keeps failing is deleted after %(period)s at the latest.",
                period=_hours(settings.retention_failed_job_hours),
            ),
            _(
                "The name you enter and your place in the waiting room: only in memory, never in the database; "
                "deleted when the consultation ends, at the latest %(period)s after its planned end.",
                period=_minutes(settings.retention_presence_grace_minutes),
            ),
            _("Your consent: the version of the text and the time, without your name; deleted with the appointment."),
            _(
                "Records of actions (who planned, admitted, deleted), without names or addresses: deleted after "
                "%(period)s.",
                period=_days(settings.retention_audit_days),
            ),
            _(
                "Connection set-up data (session descriptions and network candidates, which contain IP addresses): "
                "passed on in memory, never stored."
            ),
            ip_rule,
            _(
                "Audio, video, chat messages and files: sent directly between the browsers, encrypted; they never "
                "reach the server."
            ),
        ],
    )


def _connections(settings: Settings) -> Section:
    paragraphs = [
        _(
            "Browsers connect directly to each other (peer-to-peer). The server only passes on the messages "
            "needed to set up the connection."
        )
    ]
    if settings.stun_urls:
        paragraphs.append(
            _(
                "To find a direct path, your browser asks a STUN server (%(hosts)s), which sees your IP address.",
                hosts=_hosts(settings.stun_urls),
            )
        )
    if settings.turn_urls and settings.turn_secret:
        paragraphs.append(
            _(
                "If no direct connection is possible, we ask for your consent before the encrypted audio and video "
                "are routed through our relay server (TURN, %(hosts)s). The relay cannot read the content. Its "
                "access is valid for at most %(period)s and never beyond the end of the appointment.",
                hosts=_hosts(settings.turn_urls),
                period=_minutes(max(1, settings.turn_credential_ttl_seconds // 60)),
            )
        )
        paragraphs.append(
            _(
                "Some appointments use the relay from the start, so that the other side does not learn your IP "
                "address; you agree to it when you check in."
            )
        )
    else:
        paragraphs.append(
            _(
                "This service uses no relay server: if no direct connection is possible, the consultation cannot "
                "take place by video."
            )
        )
    return Section(_("How the connection is made"), paragraphs)


def _locations(settings: Settings) -> Section:
    unknown = _("not declared")
    items = [_("Signalling server: %(place)s", place=settings.signaling_location or unknown)]
    if settings.turn_urls:
        items.append(_("Relay server (TURN): %(place)s", place=settings.turn_location or unknown))
    return Section(_("Where the servers are"), items=items)


def _processors(settings: Settings) -> Section:
    if not settings.processors:
        return Section(_("Processors"), [_("The operator has declared no processors.")])
    return Section(
        _("Processors"),
        items=[
            _("%(name)s: %(purpose)s (%(location)s)", name=p.name, purpose=p.purpose, location=p.location)
            for p in settings.processors
        ],
    )


def _cookies(settings: Settings) -> Section:
    name = cookie_name(settings)
    return Section(
        _("Cookies"),
        [
            _(
                "One strictly necessary cookie (%(name)s) keeps your session: your check-in or sign-in and your "
                "language. It is deleted when you close the browser. There are no tracking cookies, no analytics "
                "and no content from third parties.",
                name=name,
            )
        ],
    )


def _rights() -> Section:
    return Section(
        _("Your rights"),
        [
            _(
                "You may ask for a copy of the data stored about your appointment and for its deletion at any time. "
                "Please contact the organisation that invited you: it can export and delete the data at once."
            )
        ],
    )
