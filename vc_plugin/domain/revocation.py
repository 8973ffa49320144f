"""Revocation: what ends, ends at once, on every app process.

Cancelling, deleting or ending an appointment, a new access code, a second check-in with the
same invitation, removing a participant or a practitioner, signing out everywhere and
shredding an organisation each revoke *scopes* — short keys such as ``a:<appointment>``.
After its commit the action calls :class:`Revoker`, which

1. writes a tombstone per scope (the revocation time) and publishes the revocation on the
   bus, in one step (:meth:`vc_plugin.adapters.bus.Bus.revoke`);
2. removes the affected presence — a whole room, or the members of one invitation — and
   tells the others: ``peer-left`` in the room, ``left`` or ``ended`` on the dashboards.

Every socket holds *claims* on scopes. A revocation hits a claim when it names the claim's
scope and happened after the claim's ``since`` (only sessions use that: signing in again
after "sign out everywhere" must work). Each process closes the sockets it hits with
``{"type": "revoked", "reason": …}`` and close code 4001; until that has happened the bus
itself refuses to relay a message whose sender or receiver holds a revoked claim, so nothing
is relayed for them from the moment the revoking request returns.

A consultation ended by mistake can be reopened. The end's tombstone carries the moment stored
as the appointment's ``ended_at``, and sockets opened after the reopening claim the appointment
*since* that moment (:func:`appointment_claim`): the end does not hit them, while every socket
and pass from before it stays revoked (passes by their issue time, checked against the database).
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from ..adapters.bus import Bus
from ..adapters.presence import PresenceStore, Room, index_of_organisation
from ..core.clock import Clock
from .server_messages import PeerLeft, QueueOp, QueueUpdate, Revoked, ServerMessage
from .topics import dashboard_topics, event_message, room_topic

log = logging.getLogger(__name__)

#: The bus channel every process listens on for revocations.
CHANNEL = "revoke"
#: WebSocket close code after the final ``revoked`` message.
CLOSE_CODE = 4001
#: Tombstones cover the moments until every process has heard of a revocation; after that the
#: database refuses handshakes and the pass check (60 s) catches what a lost message missed.
#: Kept generously: 36 hours, ids and a time only.
TOMBSTONE_SECONDS = 36 * 3600
#: A claim with this ``since`` is hit by any revocation of its scope.
ALWAYS = -1.0


class Reason(enum.StrEnum):
    CANCELLED = "cancelled"
    DELETED = "deleted"
    ENDED = "ended"
    NEW_CODE = "new_code"
    REPLACED = "replaced"
    PARTICIPANT_REMOVED = "participant_removed"
    PRACTITIONER_REMOVED = "practitioner_removed"
    SIGNED_OUT = "signed_out"
    ORGANISATION_REMOVED = "organisation_removed"


def appointment_scope(appointment: str) -> str:
    return f"a:{appointment}"


def invitation_scope(invitation: str) -> str:
    return f"i:{invitation}"


def member_scope(member: str) -> str:
    """A patient's check-in (member ids are random per check-in and never reused)."""
    return f"m:{member}"


def practitioner_scope(practitioner: str) -> str:
    return f"p:{practitioner}"


def sessions_scope(practitioner: str) -> str:
    """A practitioner's sign-in sessions; claims carry the session's start as ``since``."""
    return f"s:{practitioner}"


def organisation_scope(organisation: int) -> str:
    return f"o:{organisation}"


class Claim(NamedTuple):
    """A scope a socket depends on; revoked by a revocation of that scope later than ``since``.

    A (scope, since) pair, as :meth:`vc_plugin.adapters.bus.Bus.publish_unless_revoked` checks it.
    """

    scope: str
    since: float = ALWAYS


def target_claims(member: str) -> tuple[Claim, ...]:
    """What a relayed message's receiver depends on, as far as the sender can tell."""
    return (Claim(member_scope(member)), Claim(practitioner_scope(member)))


def appointment_claim(appointment: str, ended_at: float | None) -> Claim:
    """A socket's claim on its appointment: hit by any revocation after its last end (all, if never ended).

    A socket can only open while the appointment is planned, so one opened after a reopening
    is not hit by the end before it, and is hit by the next one.
    """
    return Claim(appointment_scope(appointment), ALWAYS if ended_at is None else ended_at)


@dataclass(frozen=True)
class Revocation:
    scopes: tuple[str, ...]
    at: float
    reason: Reason

    def hits(self, claims: Iterable[Claim]) -> bool:
        return any(claim.scope in self.scopes and self.at > claim.since for claim in claims)

    def encode(self) -> str:
        return json.dumps({"scopes": list(self.scopes), "at": self.at, "reason": self.reason.value})

    @classmethod
    def decode(cls, raw: str) -> Revocation:
        body = json.loads(raw)
        return cls(tuple(body["scopes"]), float(body["at"]), Reason(body["reason"]))

    @classmethod
    def heard(cls, raw: str) -> Revocation | None:
        """A revocation as the bus brought it; None, with a warning, when it cannot be read."""
        try:
            return cls.decode(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed revocation")
            return None

    def final_message(self) -> Revoked:
        return Revoked(reason=self.reason.value)


class Revoker:
    """Publishes revocations and removes what they make stale from presence.

    Every method runs after its caller's commit and never raises: the action stands, and what
    could not be done now (Redis away) is caught by the database at the next handshake or pass
    check. Callers send their mail before revoking, so a failure here loses no new code.
    """

    def __init__(self, *, bus: Bus, presence: PresenceStore, clock: Clock) -> None:
        self._bus = bus
        self._presence = presence
        self._clock = clock

    def revoke(self, scopes: Iterable[str], reason: Reason, *, at: float | None = None) -> Revocation:
        """Tombstones and the bus message, in one step."""
        revocation = Revocation(tuple(scopes), self._clock.now().timestamp() if at is None else at, reason)
        if revocation.scopes:
            with _best_effort("publish a revocation"):
                self._bus.revoke(
                    revocation.scopes,
                    revocation.at,
                    reason.value,
                    keep_seconds=TOMBSTONE_SECONDS,
                    channel=CHANNEL,
                    message=revocation.encode(),
                )
        return revocation

    def appointment(
        self, appointment: str, reason: Reason, invitations: Iterable[str] = (), *, at: float | None = None
    ) -> None:
        """The whole appointment: its sockets, its room, and the names held for its invitations.

        ``at``: the moment stored with an end (``Appointment.ended_at``), which later sockets claim since.
        """
        self.revoke([appointment_scope(appointment)], reason, at=at)
        with _best_effort("remove the room"):
            self._close_room(appointment)
            for invitation in invitations:
                self._presence.drop_check_in(invitation)

    def check_ins(
        self, appointment: str, invitation: str, reason: Reason, *, keep: str | None = None, also: Iterable[str] = ()
    ) -> None:
        """Every check-in of one invitation but ``keep``: a new code, or a second check-in.

        ``also`` names check-ins the caller knows of that presence may no longer show (the one a
        new check-in has just replaced, whose socket may not have said hello yet).
        """
        members = set(also)
        with _best_effort("find the check-ins"):
            members |= self._members_of(appointment, invitation)
            record = self._presence.check_in(invitation)
            if record is not None:
                members.add(record.member)
                if record.member != keep:
                    self._presence.drop_check_in(invitation)
        members.discard(keep or "")
        self.revoke([member_scope(m) for m in sorted(members)], reason)
        with _best_effort("remove the members"):
            self._remove(appointment, members)

    def invitation(self, appointment: str, invitation: str, reason: Reason) -> None:
        members: set[str] = set()
        with _best_effort("find the check-ins"):
            members = self._members_of(appointment, invitation)
        self.revoke([invitation_scope(invitation), *(member_scope(m) for m in sorted(members))], reason)
        with _best_effort("remove the members"):
            self._presence.drop_check_in(invitation)
            self._remove(appointment, members)

    def practitioner(self, practitioner: str, appointments: dict[str, list[str]], reason: Reason) -> None:
        """A practitioner leaves: their sockets, and their appointments (id → invitation ids)."""
        self.revoke([practitioner_scope(practitioner), *(appointment_scope(a) for a in appointments)], reason)
        self._forget_appointments(appointments)

    def sessions(self, practitioner: str, before: float) -> None:
        """Sessions that started before ``before`` ("sign out everywhere")."""
        self.revoke([sessions_scope(practitioner)], Reason.SIGNED_OUT, at=before)

    def organisation(self, organisation: int, appointments: dict[str, list[str]], reason: Reason) -> None:
        """An organisation leaves: every socket opened before now, and its appointments (cancelled by the caller)."""
        self.revoke([organisation_scope(organisation), *(appointment_scope(a) for a in appointments)], reason)
        with _best_effort("find the rooms"):
            rooms = self._presence.rooms_of(index_of_organisation(organisation))
            self._forget_appointments({room: appointments.get(room, []) for room in rooms} | appointments)

    def _forget_appointments(self, appointments: dict[str, list[str]]) -> None:
        with _best_effort("remove the rooms"):
            for appointment, invitations in appointments.items():
                self._close_room(appointment)
                for invitation in invitations:
                    self._presence.drop_check_in(invitation)

    def _remove(self, appointment: str, members: Iterable[str]) -> None:
        """Out of presence, and told, even when the revoked socket's own close was quicker."""
        room = self._presence.room(appointment)
        for member in members:
            self._presence.remove(appointment, member)
            if room is None:
                continue
            self._event(room_topic(appointment), PeerLeft(peer=member))
            self._dashboards(room, QueueUpdate(op=QueueOp.LEFT, appointment=appointment, member_id=member))

    def _close_room(self, appointment: str) -> None:
        room = self._presence.room(appointment)
        self._presence.close_room(appointment)
        if room is not None:
            self._dashboards(room, QueueUpdate(op=QueueOp.ENDED, appointment=appointment))

    def _dashboards(self, room: Room, update: QueueUpdate) -> None:
        for topic in dashboard_topics(room.practitioner, room.organisation):
            self._event(topic, update)

    def _event(self, topic: str, message: ServerMessage) -> None:
        self._bus.publish(topic, event_message(message))

    def _members_of(self, appointment: str, invitation: str) -> set[str]:
        # Stale members too: a socket that stopped answering may still be open somewhere.
        return {m.id for m in self._presence.members(appointment, float("-inf")) if m.invitation == invitation}


@contextlib.contextmanager
def _best_effort(what: str) -> Iterator[None]:
    try:
        yield
    except Exception as error:  # noqa: BLE001 - the commit stands; handshakes and pass checks ask the database
        log.error("revocation: could not %s (%s); sockets close at their next check", what, type(error).__name__)
