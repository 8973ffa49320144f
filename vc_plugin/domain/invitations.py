"""Invitations on their way: how one travels through the job queue to the patient.

The address and the code travel only inside the job's payload, sealed with a key derived
from the master key; the database keeps neither (unless the organiser chose to store the
contact, encrypted). What the patient receives is composed in ``invitation_message.py``.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from ..adapters.jobs import JobQueue, JobSpec, Task
from ..core import signals
from ..core.config import Settings
from ..core.crypto import MasterKeyring
from ..core.models import Delivery, Invitation
from ..core.signals import Announcer

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session

    from ..core.clock import Clock

PAYLOAD_PURPOSE = "vc_plugin invitation payload"


@dataclass(frozen=True)
class Contact:
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class InvitationPayload:
    """What the job carries, sealed: enough to send one mail, nothing more."""

    key: str
    code: str
    link: str
    email: str | None
    phone: str | None

    def seal(self, keyring: MasterKeyring) -> str:
        return keyring.seal_for(PAYLOAD_PURPOSE, json.dumps(asdict(self)).encode())

    @classmethod
    def open(cls, keyring: MasterKeyring, sealed: str) -> InvitationPayload:
        return cls(**json.loads(keyring.open_for(PAYLOAD_PURPOSE, sealed)))


class InvitationSender:
    """Marks an invitation as queued and puts the sealed job on the queue."""

    def __init__(
        self,
        *,
        jobs: JobQueue,
        keyring: MasterKeyring,
        clock: Clock,
        settings: Settings,
        session: Callable[[], Session],
        announce: Announcer,
        deliver: Task,
        give_up: Task,
    ) -> None:
        """``deliver`` sends one invitation (a job); ``give_up`` marks it failed when no retry is left."""
        self._announce = announce
        self._deliver = deliver
        self._give_up = give_up
        self._jobs = jobs
        self._keyring = keyring
        self._clock = clock
        self._settings = settings
        self._session = session

    def queue(self, invitation: Invitation, code: str, link: str, contact: Contact) -> None:
        """Commit the queued state first, so the worker always finds it."""
        key = secrets.token_hex(8)
        invitation.delivery = Delivery.QUEUED
        invitation.delivery_key = key
        invitation.delivery_changed_at = self._clock.now()
        session = self._session()
        session.commit()
        payload = InvitationPayload(key, code, link, contact.email, contact.phone)
        try:
            self._jobs.enqueue(
                JobSpec(
                    self._deliver,
                    (invitation.public_id, payload.seal(self._keyring)),
                    retries=self._settings.invitation_retries,
                    backoff=tuple(self._settings.invitation_backoff_seconds),
                    on_final_failure=self._give_up,
                    job_id=f"vc-invite-{invitation.public_id}-{key}",
                )
            )
        except Exception:  # noqa: BLE001 - the queue is unreachable: say so on the invitation
            invitation.delivery = Delivery.FAILED
            invitation.delivery_changed_at = self._clock.now()
            session.commit()
            return
        self._announce(
            signals.invitation_queued,
            appointment_id=invitation.appointment.public_id,
            invitation_id=invitation.public_id,
        )
