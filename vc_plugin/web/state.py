"""What ``init_app`` builds for one Flask app, kept in ``app.extensions["vc_plugin"]``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from flask import current_app

from ..domain.entrance import Entrance

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy
    from redis import Redis

    from ..adapters.bus import Bus
    from ..adapters.jobs import JobQueue
    from ..adapters.mail import Mailer
    from ..adapters.presence import PresenceStore
    from ..adapters.sms import SmsSender
    from ..adapters.thread_jobs import RepeatingTimer
    from ..adapters.webhooks import WebhookSender
    from ..core.audit import AuditLog
    from ..core.clock import Clock
    from ..core.config import Settings
    from ..core.crypto import MasterKeyring
    from ..core.data_keys import FieldCipher
    from ..core.signals import Announcer
    from ..domain.api_tokens import ApiTokens
    from ..domain.appointments import AppointmentBook
    from ..domain.check_in import CheckIn
    from ..domain.directory import Directory
    from ..domain.introductions import Introductions
    from ..domain.purge import Purger
    from ..domain.revocation import Revoker
    from ..domain.socket_ticket import SocketTickets
    from ..domain.subject_rights import SubjectRights
    from ..domain.waiting_room import WaitingRoom
    from .oidc import SignInProvider
    from .ratelimits import RateLimits
    from .sockets import LiveConnections

EXTENSION_KEY = "vc_plugin"


@dataclass
class VCState:
    settings: Settings
    db: SQLAlchemy
    clock: Clock
    keyring: MasterKeyring
    cipher: FieldCipher
    redis: Redis | None
    jobs: JobQueue
    bus: Bus
    mailer: Mailer
    audit: AuditLog
    directory: Directory
    appointments: AppointmentBook
    api_tokens: ApiTokens
    presence: PresenceStore
    revoker: Revoker
    announce: Announcer
    waiting_room: WaitingRoom
    check_in: CheckIn
    connections: LiveConnections
    socket_tickets: SocketTickets
    subject_rights: SubjectRights
    purger: Purger
    introductions: Introductions
    purge_timer: RepeatingTimer | None = None
    sms: SmsSender | None = None
    sign_in_provider: SignInProvider | None = None
    rate_limits: RateLimits | None = None
    webhooks: WebhookSender | None = None
    #: Set by hosts that sign their users in themselves (``@vc.practitioner_loader``).
    practitioner_loader: Callable[[], Any] | None = None
    #: Set by hosts that choose the language for their users (``@vc.locale_loader``).
    locale_loader: Callable[[], Any] | None = None
    #: Set by hosts whose login page is not found by itself (``@vc.login_url``).
    login_url_builder: Callable[[str], str] | None = None

    @cached_property
    def entrance(self) -> Entrance:
        """The room sockets' way in (``hello``)."""
        return Entrance(self.waiting_room)

    def close(self) -> None:
        """Stop this app's background threads (jobs, bus listener, purge timer)."""
        if self.purge_timer is not None:
            self.purge_timer.close()
        self.jobs.close()
        self.bus.close()


def vc_state() -> VCState:
    """The extension's state for the current app; fails clearly when it was not initialised."""
    try:
        return current_app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "vc_plugin is not initialised on this app: call VideoConsultation(app) or init_app(app)"
        ) from None
