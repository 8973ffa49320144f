"""Each kind of data the service handles: where it lives, how long, how it goes, and how that is
proven. One table for the record of processing, the deletion concept and the DPIA, built from the
settings in force (``docs/privacy.md`` has the same table for readers of the code).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.catalogue import gettext as _
from ..core.catalogue import ngettext
from ..core.config import Settings, key_name
from ..domain.revocation import TOMBSTONE_SECONDS
from ..domain.waiting_time import LATE_LASTS_SECONDS
from ..version import __version__


@dataclass(frozen=True)
class DataClass:
    name: str
    where: str
    kept: str
    #: Where ``kept`` comes from: a setting and its value, or the product itself.
    source: str
    deletion: str
    proof: str
    #: The purge's counters (``PurgeReport`` fields) that count its deletions.
    purge_counters: tuple[str, ...] = ()
    personal: bool = True


def setting(settings: Settings, name: str) -> str:
    """A source: the setting's key and the value in force."""
    return f"{key_name(name)} = {getattr(settings, name)}"


def built_in() -> str:
    """A source: the product's own behaviour, the same in every installation."""
    return _("vc_plugin %(version)s, built in", version=__version__)


def days(n: int) -> str:
    return ngettext("%(num)d day", "%(num)d days", n)


def hours(n: int) -> str:
    return ngettext("%(num)d hour", "%(num)d hours", n)


def minutes(n: int) -> str:
    return ngettext("%(num)d minute", "%(num)d minutes", n)


def data_classes(settings: Settings) -> list[DataClass]:
    metadata = days(settings.retention_metadata_days)
    purge = _("the purge deletes the rows in batches")
    counted = _("each purge run records how many it deleted (deletion proof)")
    expiry = _("an expiry set with every write; the purge removes keys of ours that have none")
    return [
        DataClass(
            _("accounts of practitioners and staff: display name, role, the identity provider's ids"),
            _("database, not encrypted"),
            _("until the person is removed"),
            built_in(),
            _("flask vc remove-practitioner or the admin page deletes the account and its appointments"),
            _("each removal leaves an audit event with ids and counts"),
        ),
        DataClass(
            _("appointment metadata: times, state, practitioner"),
            _("database"),
            _("until %(period)s after the planned end", period=metadata),
            setting(settings, "retention_metadata_days"),
            purge,
            counted,
            ("appointments",),
        ),
        DataClass(
            _("optional note and contact details of a participant"),
            _("database, encrypted (AES-256-GCM, one key per organisation)"),
            _("with the appointment; the organiser can delete them at any time"),
            setting(settings, "retention_metadata_days"),
            _("deleted with the appointment; destroying an organisation's key makes them unreadable at once"),
            counted,
            ("appointments", "invitations"),
        ),
        DataClass(
            _("access code"),
            _("database, only as a salted scrypt hash"),
            _("with the appointment"),
            setting(settings, "retention_metadata_days"),
            _("deleted with the invitation"),
            counted,
            ("invitations",),
        ),
        DataClass(
            _("consent record: text version, language, time, no name"),
            _("database"),
            _("with the appointment"),
            setting(settings, "retention_metadata_days"),
            _("deleted with the appointment"),
            counted,
            ("consents",),
        ),
        DataClass(
            _("invitation address (email or phone number)"),
            _("only in the encrypted job payload (outbox table, job queue)"),
            _(
                "until sent; a job that keeps failing at most %(period)s",
                period=hours(settings.retention_failed_job_hours),
            ),
            setting(settings, "retention_failed_job_hours"),
            _("deleted when the job succeeds or fails for good; the purge deletes older jobs"),
            counted,
            ("outbox_jobs", "failed_jobs"),
        ),
        DataClass(
            _("name entered at check-in, presence, place in the waiting room, whether camera and microphone worked"),
            _("memory or Redis, never the database"),
            _(
                "until the consultation ends, at most %(period)s after the planned end",
                period=minutes(settings.retention_presence_grace_minutes),
            ),
            setting(settings, "retention_presence_grace_minutes"),
            expiry,
            counted,
            ("presence", "orphaned_keys"),
        ),
        DataClass(
            _("a practitioner's announced delay in minutes, shown in their waiting rooms"),
            _("memory or Redis"),
            hours(LATE_LASTS_SECONDS // 3600),
            built_in(),
            expiry,
            _("the expiry is set when the delay is announced; “On time” deletes it at once"),
        ),
        DataClass(
            _("revocation marks (ids of ended appointments and withdrawn invitations, a time)"),
            _("memory or Redis"),
            hours(TOMBSTONE_SECONDS // 3600),
            built_in(),
            expiry,
            _("the expiry is set when the mark is written"),
            personal=False,
        ),
        DataClass(
            _("connection set-up data (session descriptions, network candidates with IP addresses)"),
            _("memory, only while passed on"),
            _("not kept"),
            built_in(),
            _("never written to a disk, a database or a log"),
            _("tests scan logs, Redis and the database of whole consultations"),
        ),
        DataClass(
            _("rate-limit counters"),
            _("memory or Redis, keyed by a daily changing keyed hash of the address, never the address"),
            _("the length of the limit's window"),
            setting(settings, "ratelimit_code_entry"),
            expiry,
            _("the expiry is set when the counter is written"),
        ),
        DataClass(
            _("wrong-code counts per client and invitation"),
            _("memory or Redis, keyed by a hash of the invitation and a keyed hash of the address (IPv6: its /64)"),
            _("until the link closes or the client's pause ends, whichever is later"),
            setting(settings, "code_lock_minutes"),
            expiry,
            _("the expiry is set when the count is written"),
        ),
        DataClass(
            _("IP addresses in logs"),
            _("not written in full"),
            _("removed or shortened before any log handler sees them"),
            setting(settings, "log_ip_mode"),
            _("never stored, so nothing to delete"),
            _("tests scan the logs of whole consultations"),
        ),
        DataClass(
            _("audit events: who did what, by internal ids (a practitioner's among them) and counts, no names"),
            _("database"),
            days(settings.retention_audit_days),
            setting(settings, "retention_audit_days"),
            purge,
            counted,
            ("audit_events",),
        ),
        DataClass(
            _("audio, video, chat messages, files"),
            _("never on the server: directly between the browsers, encrypted"),
            _("not kept"),
            built_in(),
            _("never reach the server"),
            _("the server has no code path that receives them; tests check what the server relays"),
        ),
    ]
