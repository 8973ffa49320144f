"""What the pack knows about this installation: the settings in force, the checks' findings, and
what the database shows happened (purge runs, consultations whose introductions were confirmed).

Gathered once, in one language, at one moment (the app's clock), so that two packs of the same
installation differ only where the installation does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import URL

from ..adapters.mail import SmtpMailer
from ..core.catalogue import gettext as _
from ..core.config import Settings
from ..core.data_keys import ENCRYPTED_FIELDS
from ..domain.introductions import introductions_confirmed
from ..domain.purge import PurgeReport
from ..domain.retention import PurgeSchedule
from ..version import __version__
from ..web.cookie import OwnCookieInterface
from ..web.state import VCState
from .checks import Finding, run_checks
from .purge_history import PurgeHistory, purge_history

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Facts:
    settings: Settings
    findings: dict[str, Finding]
    generated_at: datetime
    version: str
    purges: PurgeHistory
    #: What a purge would delete right now (a dry run), or None when it could not be asked.
    pending: PurgeReport | None
    sealed_fields: list[str]
    master_keys: int
    cookie_digest: str
    #: host:port of the SMTP server, None when mail goes to the console.
    mail_server: str | None
    #: Where the database and Redis are (kind and host, never credentials); None: no Redis.
    database: str
    redis: str | None
    #: vc_plugin's own sign-in (OIDC or none), not the host's: then our session limits apply.
    own_sign_in: bool
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
    since = now - timedelta(days=settings.retention_audit_days)
    confirmed, ended = introductions_confirmed(state.db.session, since)
    return Facts(
        settings=settings,
        findings={finding.key: finding for finding in run_checks(app, state)},
        generated_at=now,
        version=__version__,
        purges=purge_history(state.db.session, now, interval, since),
        pending=_pending(state),
        sealed_fields=[f"{field.model.__tablename__}.{field.attribute}" for field in ENCRYPTED_FIELDS],
        master_keys=len(settings.encryption_keys),
        cookie_digest=_cookie_digest(settings),
        mail_server=f"{state.mailer.host}:{state.mailer.port}" if isinstance(state.mailer, SmtpMailer) else None,
        database=_database(state.db.engine.url),
        redis=_redis(settings.redis_url),
        own_sign_in=state.practitioner_loader is None,
        introductions_confirmed=confirmed,
        consultations_ended=ended,
    )


def _pending(state: VCState) -> PurgeReport | None:
    try:
        return state.purger.run(dry_run=True)
    except Exception:  # noqa: BLE001 - Redis or the database not answering: the pack says "not measured"
        log.warning("the dry run of the purge failed; the pack shows what is overdue as not measured")
        state.db.session.rollback()
        return None


def _database(url: URL) -> str:
    where = url.host or (_("a local socket") if url.get_backend_name() != "sqlite" else _("a file on this server"))
    return f"{url.get_backend_name()}, {where}"


def _redis(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return parts.hostname or _("a local socket")


def _cookie_digest(settings: Settings) -> str:
    digest = OwnCookieInterface(settings).digest_method
    return f"HMAC-{getattr(digest(), 'name', '?').upper()}"
