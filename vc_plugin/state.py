"""What ``init_app`` builds for one Flask app, kept in ``app.extensions["vc_plugin"]``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import current_app

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy
    from redis import Redis

    from .api_tokens import ApiTokens
    from .appointments import AppointmentBook
    from .audit import AuditLog
    from .bus import Bus
    from .clock import Clock
    from .config import Settings
    from .crypto import MasterKeyring
    from .data_keys import FieldCipher
    from .directory import Directory
    from .jobs import JobQueue
    from .joining import CheckIn
    from .mail import Mailer
    from .oidc import SignInProvider
    from .presence import PresenceStore
    from .ratelimits import RateLimits
    from .retention import Purger, PurgeTimer
    from .revocation import Revoker
    from .signals import Announcer
    from .sms import SmsSender
    from .sockets import LiveConnections
    from .subject_rights import SubjectRights
    from .waiting_room import WaitingRoom
    from .webhooks import WebhookSender

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
    subject_rights: SubjectRights
    purger: Purger
    purge_timer: PurgeTimer | None = None
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
