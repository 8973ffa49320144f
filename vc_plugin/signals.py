"""Blinker signals for host applications (a case tool can record events without polling).

Receivers get the sender (the Flask app) and keyword arguments with public ids and states
only, never names, addresses or codes::

    from vc_plugin.signals import appointment_created

    @appointment_created.connect
    def remember(app, appointment_id, practitioner_id, starts_at, **extra): ...

Invitation signals fire in the process that sends the mail (an RQ worker in production).
"""

from __future__ import annotations

from typing import Any

from blinker import Namespace
from flask import current_app, has_app_context

signals = Namespace()

appointment_created = signals.signal("appointment-created")
appointment_rescheduled = signals.signal("appointment-rescheduled")
appointment_cancelled = signals.signal("appointment-cancelled")
appointment_deleted = signals.signal("appointment-deleted")
participant_added = signals.signal("participant-added")
invitation_queued = signals.signal("invitation-queued")
invitation_sent = signals.signal("invitation-sent")
invitation_failed = signals.signal("invitation-failed")
code_entry_locked = signals.signal("code-entry-locked")
participant_admitted = signals.signal("participant-admitted")
consultation_ended = signals.signal("consultation-ended")
invitation_deleted = signals.signal("invitation-deleted")
practitioner_deleted = signals.signal("practitioner-deleted")
data_purged = signals.signal("data-purged")


def emit(signal: Any, **payload: Any) -> None:
    sender = current_app._get_current_object() if has_app_context() else None  # type: ignore[attr-defined]
    signal.send(sender, **payload)
