"""The signals hosts can receive (a case tool can record events without polling), and their contract.

Hosts import them from ``vc_plugin.signals``. Services announce through an :class:`Announcer`
handed to them, which checks the fields and names the app as sender. Invitation signals fire
in the process that sends the mail (an RQ worker in production).
"""

from __future__ import annotations

from typing import Any

from blinker import NamedSignal, Namespace

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
consultation_reopened = signals.signal("consultation-reopened")
invitation_deleted = signals.signal("invitation-deleted")
practitioner_deleted = signals.signal("practitioner-deleted")
data_purged = signals.signal("data-purged")

_APPOINTMENT = ("appointment_id",)
_INVITATION = ("appointment_id", "invitation_id")
#: ``domain/purge.py`` ``PurgeReport``'s counts (tests/test_host_contract.py holds the two together).
_PURGED = (
    "appointments",
    "invitations",
    "consents",
    "audit_events",
    "outbox_jobs",
    "failed_jobs",
    "presence",
    "orphaned_keys",
)

#: The contract with hosts: every signal's keyword arguments, exactly (docs/integration.md lists
#: them with their meaning; :func:`emit` refuses any other set, so the table cannot drift).
FIELDS: dict[NamedSignal, tuple[str, ...]] = {
    appointment_created: ("appointment_id", "practitioner_id", "starts_at", "ends_at"),
    appointment_rescheduled: ("appointment_id", "starts_at", "ends_at"),
    appointment_cancelled: _APPOINTMENT,
    appointment_deleted: _APPOINTMENT,
    participant_added: _INVITATION,
    invitation_queued: _INVITATION,
    invitation_sent: _INVITATION,
    invitation_failed: _INVITATION,
    code_entry_locked: _INVITATION,
    participant_admitted: ("appointment_id", "invitation_id", "practitioner_id"),
    consultation_ended: ("appointment_id", "practitioner_id"),
    consultation_reopened: ("appointment_id", "practitioner_id"),
    invitation_deleted: _INVITATION,
    practitioner_deleted: ("practitioner_id",),
    data_purged: _PURGED,
}


#: Event names, as webhooks and ``VC_WEBHOOK_EVENTS`` spell them.
EVENTS = tuple(signal.name for signal in FIELDS)


class Announcer:
    """Sends our signals on behalf of one host app, the sender every receiver gets.

    Built once per app by ``init_app`` and handed to the services that announce events, so no
    service needs to know which app it serves.
    """

    def __init__(self, sender: object) -> None:
        self._sender = sender

    def __call__(self, signal: NamedSignal, **payload: Any) -> None:
        """Send ``signal`` (after the change is committed) with exactly its documented fields."""
        expected = FIELDS[signal]
        if set(payload) != set(expected):
            raise TypeError(f"signal {signal.name} sent with {sorted(payload)}; its contract is {sorted(expected)}")
        signal.send(self._sender, **payload)
