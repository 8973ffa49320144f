"""The ``VideoConsultation`` extension object: three lines in a host app mount everything."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from . import tasks, worker
from .adapters import host_migrations
from .adapters.bus import Bus, LocalBus, RedisBus
from .adapters.jobs import JobQueue
from .adapters.mail import ConsoleMailer, Mailer, SmtpMailer
from .adapters.presence import MemoryPresence, PresenceStore, RedisPresence
from .adapters.rq_jobs import RQJobQueue
from .adapters.sms import load_sms_sender
from .adapters.thread_jobs import RepeatingTimer, ThreadJobQueue
from .adapters.tombstones import MemoryTombstones, RedisTombstones
from .adapters.webhooks import WebhookSender
from .cli import vc_cli
from .core import log_privacy
from .core.audit import AuditLog
from .core.clock import Clock, SystemClock
from .core.config import ConfigurationError, Settings, load_settings
from .core.crypto import MasterKeyring
from .core.data_keys import FieldCipher
from .core.models import Base
from .core.signals import Announcer
from .domain.api_tokens import ApiTokens
from .domain.appointments import AppointmentBook
from .domain.check_in import CheckIn
from .domain.code_guard import code_guard
from .domain.directory import Directory
from .domain.introductions import Introductions
from .domain.invitations import InvitationSender
from .domain.purge import Purger
from .domain.retention import PurgeSchedule
from .domain.revocation import Revoker
from .domain.socket_ticket import SocketTickets
from .domain.subject_rights import SubjectRights
from .domain.waiting_room import WaitingRoom
from .public_api import PublicAPI
from .web import language, ratelimits
from .web.blueprints import register_blueprints
from .web.hosting import our_records
from .web.identity import HostUser, Loader, NotAllowed
from .web.navigation import public_root
from .web.oidc import SignInProvider
from .web.sockets import LiveConnections
from .web.state import EXTENSION_KEY, VCState

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger(__name__)


class VideoConsultation(PublicAPI):
    """Flask extension for privacy-first video consultations.

    ``VideoConsultation(app, db=db)`` or, in an app factory, ``vc = VideoConsultation(db=db)``
    and later ``vc.init_app(app)``. Without ``db`` it uses the app's Flask-SQLAlchemy
    instance or creates one.
    """

    def __init__(self, app: Flask | None = None, db: SQLAlchemy | None = None, *, clock: Clock | None = None) -> None:
        self._db = db
        self._clock = clock
        self._practitioner_loader: Callable[[], HostUser | NotAllowed | None] | None = None
        self._locale_loader: Callable[[], str | None] | None = None
        self._login_url_builder: Callable[[str], str] | None = None
        self._states: list[VCState] = []
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError("vc_plugin is already initialised on this app")
        settings = load_settings(app.config, debug=app.debug, testing=app.testing)
        log_privacy.install(settings.log_ip_mode, our_records(settings.url_prefix))
        db = self._database(app)
        clock = self._clock or SystemClock()
        redis = _redis_client(settings)
        keyring = MasterKeyring(settings.encryption_keys)

        def session() -> Any:
            return db.session

        jobs = _job_queue(app, settings, redis, clock)
        cipher = FieldCipher(session, keyring, clock)
        audit = AuditLog(session, clock)
        directory = Directory(session, clock)

        def seconds() -> float:  # the app's clock, for expiries
            return clock.now().timestamp()

        # The bus writes the revocations' tombstones; presence reads them while someone arrives.
        bus: Bus
        presence: PresenceStore
        if redis is not None:
            stones = RedisTombstones()
            bus, presence = RedisBus(redis, tombstones=stones), RedisPresence(redis, seconds, stones)
        else:
            kept = MemoryTombstones()
            bus, presence = LocalBus(kept), MemoryPresence(seconds, kept)
        revoker = Revoker(bus=bus, presence=presence, clock=clock)
        announce = Announcer(app)
        appointments = AppointmentBook(
            session=session,
            clock=clock,
            settings=settings,
            cipher=cipher,
            audit=audit,
            directory=directory,
            sender=InvitationSender(
                jobs=jobs,
                keyring=keyring,
                clock=clock,
                settings=settings,
                session=session,
                announce=announce,
                deliver=tasks.send_invitation,
                give_up=tasks.invitation_failed,
            ),
            revoker=revoker,
            site_root=lambda: public_root(settings),
            announce=announce,
        )
        state = VCState(
            settings=settings,
            db=db,
            clock=clock,
            keyring=keyring,
            cipher=cipher,
            redis=redis,
            jobs=jobs,
            bus=bus,
            mailer=_mailer(settings, reveal=app.debug or app.testing),
            audit=audit,
            directory=directory,
            appointments=appointments,
            api_tokens=ApiTokens(session, clock, directory),
            presence=presence,
            revoker=revoker,
            waiting_room=WaitingRoom(
                presence=presence,
                bus=bus,
                clock=clock,
                settings=settings,
                session=session,
                audit=audit,
                directory=directory,
                revoker=revoker,
                announce=announce,
            ),
            announce=announce,
            check_in=CheckIn(
                session=session,
                clock=clock,
                settings=settings,
                audit=audit,
                appointments=appointments,
                presence=presence,
                revoker=revoker,
                guard=code_guard(redis, settings),
                announce=announce,
            ),
            connections=LiveConnections(),
            socket_tickets=SocketTickets(keyring),
            subject_rights=SubjectRights(
                session=session,
                clock=clock,
                settings=settings,
                appointments=appointments,
                audit=audit,
                revoker=revoker,
                announce=announce,
            ),
            purger=Purger(
                session=session,
                clock=clock,
                settings=settings,
                audit=audit,
                presence=presence,
                redis=redis,
                announce=announce,
            ),
            introductions=Introductions(session=session, audit=audit),
            sms=load_sms_sender(settings),
            practitioner_loader=self._practitioner_loader,
            locale_loader=self._locale_loader,
            login_url_builder=self._login_url_builder,
        )
        if redis is None:
            # Embedded mode: a timer purges; with Redis, `rq cron` schedules it (docs/privacy.md).
            interval = PurgeSchedule.of(settings).interval_seconds
            state.purge_timer = RepeatingTimer(lambda: _purge_in_context(app), interval, name="purge").start()
        if settings.oidc_issuer or settings.oidc_metadata_url:
            state.sign_in_provider = SignInProvider(app, settings)
        if settings.webhook_url:
            state.webhooks = WebhookSender(app, settings, jobs, clock, deliver=tasks.deliver_webhook)
        bus.on_reconnect(lambda: threading.Thread(target=state.connections.reannounce, daemon=True).start())
        state.connections.listen_for_revocations(bus)
        app.extensions[EXTENSION_KEY] = state
        self._states.append(state)
        language.install(app, settings.default_language)
        host_migrations.join(app)

        register_blueprints(app, settings)
        state.rate_limits = ratelimits.install(app, settings)
        app.cli.add_command(vc_cli)

    # --- helpers for hosts and tests -------------------------------------------------------------
    def practitioner_loader(self, loader: Loader) -> Loader:
        """Decorator for hosts with their own login: return a ``HostUser`` for the current user,
        ``NOT_ALLOWED`` for a signed-in user who may not use video consultations (a 403 page), or
        None for nobody signed in (sent to the host's login page, see :meth:`login_url`).

        OIDC sign-in is then not offered; the host's session decides who is signed in.
        """
        self._practitioner_loader = loader
        for state in self._states:
            state.practitioner_loader = loader
        return loader

    def locale_loader(self, loader: Callable[[], str | None]) -> Callable[[], str | None]:
        """Decorator: the language the host chose for its signed-in user (``"de"``, ``"en_GB"``), or None.

        Without it, the host's own Flask-Babel ``locale_selector`` is asked. Patients are not asked
        about: they have no account with the host.
        """
        self._locale_loader = loader
        for state in self._states:
            state.locale_loader = loader
        return loader

    def login_url(self, builder: Callable[[str], str]) -> Callable[[str], str]:
        """Decorator: the host's login page for someone not signed in, given the page to return to.

        Needed only when neither ``VC_LOGIN_URL`` nor Flask-Login's ``login_view`` says it.
        """
        self._login_url_builder = builder
        for state in self._states:
            state.login_url_builder = builder
        return builder

    @staticmethod
    def create_tables(app: Flask) -> None:
        """Create the tables directly, for hosts without migrations (tests, quick trials)."""
        with app.app_context():
            state: VCState = app.extensions[EXTENSION_KEY]
            Base.metadata.create_all(state.db.engine)

    def _database(self, app: Flask) -> SQLAlchemy:
        # Connections that died while the database was away are replaced, not handed out.
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})
        if self._db is not None:
            if "sqlalchemy" not in app.extensions:
                self._db.init_app(app)
            return self._db
        existing = app.extensions.get("sqlalchemy")
        if existing is not None:
            return existing
        if not app.config.get("SQLALCHEMY_DATABASE_URI") and not app.config.get("SQLALCHEMY_BINDS"):
            Path(app.instance_path).mkdir(parents=True, exist_ok=True)
            app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(app.instance_path) / 'vc_plugin.sqlite'}"
        return SQLAlchemy(app)


def _redis_client(settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    from redis import Redis
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from redis.retry import Retry

    return Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=3,
        socket_timeout=5,
        health_check_interval=15,
        # A restarted Redis: retry a few times before a request fails.
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 5),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


def _job_queue(app: Flask, settings: Settings, redis: Redis | None, clock: Clock) -> JobQueue:
    if redis is None:
        return ThreadJobQueue(app)
    from flask import current_app

    def session() -> Any:
        return current_app.extensions[EXTENSION_KEY].db.session

    return RQJobQueue(
        redis,
        settings.job_queue_name,
        settings.retention_failed_job_hours * 3600,
        session,
        clock,
        run_from_outbox=worker.run_from_outbox,
        on_failure=worker.rq_failure_hook,
    )


def _purge_in_context(app: Flask) -> None:
    with app.app_context():
        tasks.purge()


def _mailer(settings: Settings, *, reveal: bool) -> Mailer:
    """SMTP, or the console; the console shows codes and links only in debug or testing mode (the demo)."""
    if settings.mail_delivery == "smtp" and settings.smtp_url:
        return SmtpMailer(settings.smtp_url)
    return ConsoleMailer(reveal=reveal)


__all__ = ["ConfigurationError", "VideoConsultation"]
