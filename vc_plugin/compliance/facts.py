"""What the pack knows about this installation: the settings in force, the checks' findings, and
what the database shows happened (purge runs, consultations whose introductions were confirmed).

Gathered once, in one language, at one moment (the app's clock), so that two packs of the same
installation differ only where the installation does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import select

from ..adapters.mail import SmtpMailer
from ..core.config import Settings
from ..core.data_keys import ENCRYPTED_FIELDS
from ..core.models import AuditEvent
from ..domain.introductions import introductions_confirmed
from ..domain.purge import PurgeReport
from ..domain.retention import PurgeSchedule
from ..version import __version__
from ..web.cookie import OwnCookieInterface
from ..web.state import VCState
from .checks import Finding, run_checks

#: How many purge runs the deletion proof lists.
LISTED_PURGE_RUNS = 12


@dataclass(frozen=True)
class PurgeRun:
    """One run of the purge, as its audit event recorded it: when, and how many of each kind."""

    at: datetime
    counts: dict[str, int]
    #: Time since the run before it (None for the oldest listed); more than twice the interval is late.
    gap: timedelta | None
    late: bool


@dataclass(frozen=True)
class Facts:
    settings: Settings
    findings: dict[str, Finding]
    generated_at: datetime
    version: str
    purge_interval: timedelta
    #: Newest first.
    purge_runs: list[PurgeRun]
    #: The newest run is older than twice the interval (or there is none).
    purge_overdue: bool
    #: What a purge would delete right now (a dry run): overdue since the last run, not yet deleted.
    pending: PurgeReport
    sealed_fields: list[str]
    master_keys: int
    cookie_digest: str
    #: host:port of the SMTP server, None when mail goes to the console.
    mail_server: str | None
    #: host names of the database and Redis (no credentials), None for SQLite or no Redis.
    database_host: str | None
    redis_host: str | None
    #: Appointments with a confirmation that everyone present was introduced, and appointments
    #: whose consultation ended, within the audit period.
    introductions_confirmed: int
    consultations_ended: int

    def finding(self, key: str) -> Finding:
        return self.findings[key]

    def local(self, moment: datetime) -> str:
        zone = ZoneInfo(self.settings.display_timezone)
        return f"{moment.astimezone(zone):%Y-%m-%d %H:%M} ({self.settings.display_timezone})"


def gather(app: Flask, state: VCState) -> Facts:
    settings = state.settings
    now = state.clock.now()
    interval = timedelta(seconds=PurgeSchedule.of(settings).interval_seconds)
    runs = _purge_runs(state, interval)
    confirmed, ended = introductions_confirmed(state.db.session, now - timedelta(days=settings.retention_audit_days))
    return Facts(
        settings=settings,
        findings={finding.key: finding for finding in run_checks(app, state)},
        generated_at=now,
        version=__version__,
        purge_interval=interval,
        purge_runs=runs,
        purge_overdue=not runs or runs[0].at < now - 2 * interval,
        pending=state.purger.run(dry_run=True),
        sealed_fields=[f"{field.model.__tablename__}.{field.attribute}" for field in ENCRYPTED_FIELDS],
        master_keys=len(settings.encryption_keys),
        cookie_digest=_cookie_digest(settings),
        mail_server=f"{state.mailer.host}:{state.mailer.port}" if isinstance(state.mailer, SmtpMailer) else None,
        database_host=state.db.engine.url.host,
        redis_host=urlsplit(settings.redis_url).hostname if settings.redis_url else None,
        introductions_confirmed=confirmed,
        consultations_ended=ended,
    )


def _purge_runs(state: VCState, interval: timedelta) -> list[PurgeRun]:
    events = state.db.session.execute(
        select(AuditEvent.at, AuditEvent.details)
        .where(AuditEvent.action == "retention.purged")
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(LISTED_PURGE_RUNS + 1)
    ).all()
    runs = []
    for index, (at, details) in enumerate(events[:LISTED_PURGE_RUNS]):
        before = events[index + 1].at if index + 1 < len(events) else None
        gap = at - before if before is not None else None
        counts = {name: int((details or {}).get(name, 0)) for name in PurgeReport().as_dict()}
        runs.append(PurgeRun(at=at, counts=counts, gap=gap, late=gap is not None and gap > 2 * interval))
    return runs


def _cookie_digest(settings: Settings) -> str:
    digest = OwnCookieInterface(settings).digest_method
    return f"HMAC-{getattr(digest(), 'name', '?').upper()}"
