"""Blinker signals for host applications: the public names (``from vc_plugin.signals import …``).

Receivers get the sender (the Flask app) and keyword arguments with public ids and states
only, never names, addresses or codes::

    from vc_plugin.signals import appointment_created

    @appointment_created.connect
    def remember(app, appointment_id, practitioner_id, starts_at, **extra): ...

The signals themselves and their contract live in ``core/signals.py``; docs/integration.md lists
every field.
"""

from .core.signals import (
    EVENTS,
    FIELDS,
    Announcer,
    appointment_cancelled,
    appointment_created,
    appointment_deleted,
    appointment_rescheduled,
    code_entry_locked,
    consultation_ended,
    consultation_reopened,
    data_purged,
    invitation_deleted,
    invitation_failed,
    invitation_queued,
    invitation_sent,
    participant_added,
    participant_admitted,
    practitioner_deleted,
    signals,
)

__all__ = [
    "EVENTS",
    "FIELDS",
    "Announcer",
    "appointment_cancelled",
    "appointment_created",
    "appointment_deleted",
    "appointment_rescheduled",
    "code_entry_locked",
    "consultation_ended",
    "consultation_reopened",
    "data_purged",
    "invitation_deleted",
    "invitation_failed",
    "invitation_queued",
    "invitation_sent",
    "participant_added",
    "participant_admitted",
    "practitioner_deleted",
    "signals",
]
