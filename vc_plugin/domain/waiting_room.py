"""The waiting room: who waits for which appointment, admission, and who may talk to whom.

State lives in :mod:`vc_plugin.adapters.presence` (soft, expiring); changes are announced on the bus
(channels in :mod:`vc_plugin.core.topics`) so that sockets on any process hear of them.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial

import msgspec
from sqlalchemy.orm import Session

from ..adapters.bus import Bus
from ..adapters.presence import (
    Ahead,
    Entered,
    Member,
    MemberRole,
    MemberState,
    PresenceStore,
    Room,
    index_of_organisation,
    index_of_practitioner,
)
from ..adapters.steps import Step, Steps, drive
from ..core import signals
from ..core.audit import Actor, ActorKind, AuditLog
from ..core.clock import Clock
from ..core.config import Settings
from ..core.models import Appointment, AppointmentState, Practitioner, Role
from ..core.signals import Announcer
from .directory import Directory
from .probe_rooms import PROBE_PREFIX
from .revocation import Claim, Reason, Revoker, target_claims
from .server_messages import (
    Admitted,
    Declined,
    Ended,
    HandedOver,
    ListedMember,
    Peer,
    PeerJoined,
    PeerLeft,
    PeerOffline,
    QueueOp,
    QueueUpdate,
    Replaced,
    RoomNotice,
    RoomView,
    RunningLate,
    Schedule,
    SentBack,
    ServerMessage,
)
from .signaling import Admit, Decline, End, Notice, ProtocolError, SendBack, StaffCommand
from .signaling import RunningLate as RunningLateCommand
from .topics import (
    dashboard_topics,
    event_message,
    member_topic,
    organisation_topic,
    practitioner_topic,
    room_topic,
)
from .waiting_time import LATE_LASTS_SECONDS, Estimate, estimate

#: How many sent-away members a room remembers (a room holds a handful of people).
DECLINED_KEPT = 50


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Arrival:
    """Someone in the room: as presence holds them, their new resume token, and who is present now."""

    member: Member
    token: str
    present: list[Member]
    revoked: str | None = None  # a claim was revoked meanwhile: not in the room, and nobody was told


@dataclass(frozen=True, slots=True)
class Staffer:
    """A signed-in person acting on a dashboard."""

    public_id: str
    id: int
    role: Role
    organisation_id: int
    name: str
    #: When this person's sign-in session began (None: the host's own login decides).
    signed_in_at: float | None = None

    @classmethod
    def of(cls, person: Practitioner, signed_in_at: float | None = None) -> Staffer:
        return cls(person.public_id, person.id, person.role, person.organisation_id, person.display_name, signed_in_at)


class WaitingRoom:
    def __init__(
        self,
        *,
        presence: PresenceStore,
        bus: Bus,
        clock: Clock,
        settings: Settings,
        session: Callable[[], Session],
        audit: AuditLog,
        directory: Directory,
        revoker: Revoker,
        announce: Announcer,
    ) -> None:
        self._announce = announce
        self.presence = presence
        self._bus = bus
        self._clock = clock
        self._settings = settings
        self._session = session
        self._audit = audit
        self._directory = directory
        self._revoker = revoker

    def now(self) -> float:
        return self._clock.now().timestamp()

    # --- publishing ----------------------------------------------------------------------------------
    def event(self, topic: str, message: ServerMessage) -> None:
        self._bus.publish(topic, event_message(message))

    def relay(self, appointment: str, member: str, message: str, sender: tuple[Claim, ...]) -> bool:
        """Forward to one member, unless sender or receiver was revoked (then False)."""
        claims = (*sender, *target_claims(member))
        return self._bus.publish_unless_revoked(member_topic(appointment, member), "R" + message, claims)

    def is_admitted(self, appointment: str, member: str) -> bool:
        """Asked before relaying to a peer a socket has not heard of yet (the news may still be on its way)."""
        found = self.presence.get(appointment, member)
        return found is not None and found.state == MemberState.ADMITTED

    def revoked_reason(self, claims: tuple[Claim, ...]) -> str | None:
        return self._bus.revoked_reason(claims)

    def _dashboards(self, room: Room, update: QueueUpdate) -> None:
        self._bus.publish_to_all(dashboard_topics(room.practitioner, room.organisation), event_message(update))

    # --- rooms --------------------------------------------------------------------------------------
    def room_for(self, appointment: Appointment) -> Room:
        """The appointment's room, opened on first use; it expires after the planned end plus grace."""
        grace = timedelta(minutes=min(self._settings.retention_presence_grace_minutes, 60))
        room = Room(
            appointment=appointment.public_id,
            organisation=appointment.organisation_id,
            practitioner=appointment.practitioner.public_id,
            starts_at=appointment.starts_at.timestamp(),
            ends_at=appointment.ends_at.timestamp(),
            expires_at=(appointment.ends_at + grace).timestamp(),
            relay_only=appointment.relay_only,
            kind=appointment.kind.value,
            practitioner_name=appointment.practitioner.display_name,
        )
        return self.presence.room_or_open(room)

    def room(self, appointment: str) -> Room | None:
        return self.presence.room(appointment)

    # --- members --------------------------------------------------------------------------------------
    def arrive(
        self,
        room: Room,
        member: Member,
        resume: str | None,
        connection: str,
        existing: Member | None,
        *,
        claims: tuple[Claim, ...] = (),
    ) -> Arrival:
        """Enter the room, or come back to the same place with the resume token (``existing``: the
        member's record as presence held it a moment ago, ``PresenceStore.arriving``); not if one
        of ``claims`` was revoked meanwhile (then ``revoked`` says why, and nobody hears of it)."""
        if not room.practitioner_name:  # a room an older version opened: the directory knows the name
            room = replace(room, practitioner_name=self.practitioner_name(room))
        return drive(self.arriving(room, member, resume, connection, existing, claims=claims))

    def arriving(
        self,
        room: Room,
        member: Member,
        resume: str | None,
        connection: str,
        existing: Member | None,
        *,
        claims: tuple[Claim, ...] = (),
    ) -> Steps[Arrival]:
        """``arrive`` as steps (:mod:`..adapters.steps`): two round trips for a first arrival, the
        entry and everything said about it. ``room`` names its practitioner already (an empty
        name stays empty: nothing between the steps may ask the database)."""
        token = secrets.token_urlsafe(18)
        if existing is not None and resume and _resumes(existing, resume):
            come_back = partial(
                self._come_back, room, member, existing, resume=digest(token), connection=connection, claims=claims
            )
            member, entered = yield Step(run=come_back)
            previous = existing.connection
        else:
            member = replace(member, resume=digest(token), since=self.now(), connection=connection)
            previous = existing.connection if existing is not None else None
            entered = yield self.presence.enter_step(room.appointment, member, self.now(), claims)
        if entered.revoked is not None:
            return Arrival(member, token, [], entered.revoked)
        present = entered.present
        said: list[tuple[str, str]] = []
        if previous and previous != connection:
            said.append((member_topic(room.appointment, member.id), event_message(Replaced(connection=previous))))
        if member.state != MemberState.WAITING:
            said.append((room_topic(room.appointment), event_message(PeerJoined(peer=Peer.of(member)))))
        update = event_message(self._arrival(room, member, present, named=True))
        said.extend((topic, update) for topic in dashboard_topics(room.practitioner, room.organisation))
        yield self._bus.publishing(said)
        return Arrival(member, token, present)

    def _come_back(
        self, room: Room, member: Member, existing: Member, *, resume: str, connection: str, claims: tuple[Claim, ...]
    ) -> tuple[Member, Entered]:
        """The same place again, with a new resume token; an admission or a send-back decided
        meanwhile is kept (only these fields change, atomically)."""
        back = {
            "resume": resume,
            "resume_before": existing.resume,
            "name": member.name,
            "connection": connection,
            # A page reloaded in the call skips the check: what it found before still holds.
            "camera": existing.camera if member.camera is None else member.camera,
            "microphone": existing.microphone if member.microphone is None else member.microphone,
        }
        updated = self.presence.update(room.appointment, member.id, **back)
        if updated is None:  # gone in between: in again at the same place
            updated = replace(existing, **back)
            return updated, self.presence.enter(room.appointment, updated, self.now(), claims)
        revoked = self.revoked_reason(claims)
        if revoked is not None:  # revoked while coming back: out again
            self.presence.remove(room.appointment, member.id)
            return updated, Entered([], revoked)
        self.presence.touch(room.appointment, member.id, self.now())
        return updated, Entered(self.presence.members(room.appointment, self.now()))

    def _arrival(
        self, room: Room, member: Member, present: list[Member] | None = None, *, named: bool = False
    ) -> QueueUpdate:
        """Someone came (back): waiting, with the whole room (a dashboard may not know it yet), or in the call.
        ``named``: the room's practitioner name is final, even if empty (the directory was asked)."""
        listed = ListedMember.of(member)
        if member.state == MemberState.WAITING:
            snapshot = self.room_snapshot(room, present, named=named)
            return QueueUpdate(op=QueueOp.ARRIVED, appointment=room.appointment, member=listed, room=snapshot)
        return QueueUpdate(op=QueueOp.IN_CALL, appointment=room.appointment, member=listed)

    def restore(self, room: Room, member: Member) -> None:
        """Write a member back after presence was lost, keeping its place (``since``)."""
        self.presence.put(room.appointment, member, self.now())
        self._dashboards(room, self._arrival(room, member))

    def went_offline(self, room: Room, member_id: str, connection: str) -> None:
        """The socket closed without "leave": keep the place for a while, tell the others at once.

        Nothing is said when a newer socket already speaks for the member (a reload, a reconnect)."""
        if self.presence.disconnect(room.appointment, member_id, connection) is None:
            return
        self._dashboards(room, QueueUpdate(op=QueueOp.OFFLINE, appointment=room.appointment, member_id=member_id))
        self.event(room_topic(room.appointment), PeerOffline(peer=member_id))

    def leave(self, room: Room, member_id: str) -> None:
        if self.presence.remove(room.appointment, member_id) is None:
            return
        if room.appointment.startswith(PROBE_PREFIX) and not self.presence.members(room.appointment, self.now()):
            self.presence.close_room(room.appointment)  # the probe leaves nothing behind
            return
        self.event(room_topic(room.appointment), PeerLeft(peer=member_id))
        self._dashboards(room, QueueUpdate(op=QueueOp.LEFT, appointment=room.appointment, member_id=member_id))

    def touch(self, room: Room, member_id: str) -> None:
        self.presence.touch(room.appointment, member_id, self.now())

    # --- the practitioner's commands -------------------------------------------------------------------
    def command(self, actor: Staffer, message: StaffCommand) -> None:
        """A command from a dashboard or the call page; raises :class:`ProtocolError` when refused."""
        if isinstance(message, Admit):
            self.admit(actor, message.appointment, message.participant)
        elif isinstance(message, Decline):
            self.decline(actor, message.appointment, message.participant)
        elif isinstance(message, SendBack):
            self.send_back(actor, message.appointment, message.participant)
        elif isinstance(message, Notice):
            self.notice(actor, message.appointment, message.text)
        elif isinstance(message, End):
            self.end(actor, message.appointment)
        elif isinstance(message, RunningLateCommand):
            self.running_late(actor, message.minutes)
        else:
            self.handover(actor, message.appointment, message.practitioner)

    def _own_room(self, actor: Staffer, appointment: str) -> Room:
        room = self.presence.room(appointment)
        if room is None or room.organisation != actor.organisation_id:
            raise ProtocolError("unknown_room", "no such waiting room")
        if room.practitioner != actor.public_id or actor.role is Role.STAFF:
            raise ProtocolError("not_allowed", "only the appointment's practitioner may do this")
        return room

    def admit(self, actor: Staffer, appointment: str, member_id: str) -> Member:
        room = self._own_room(actor, appointment)
        member = self.presence.get(appointment, member_id)
        if member is None:
            raise ProtocolError("unknown_participant", "this person is no longer waiting")
        admitted = [m for m in self.presence.members(appointment, self.now()) if m.state == MemberState.ADMITTED]
        if member.state != MemberState.ADMITTED and len(admitted) + 1 > self._settings.max_participants:
            raise ProtocolError("room_full", f"at most {self._settings.max_participants} people per consultation")
        member = self.presence.update(appointment, member_id, state=MemberState.ADMITTED, asked_to_wait_by="") or member
        peers = [Peer.of(m) for m in admitted if m.id != member_id]
        self.event(member_topic(appointment, member_id), Admitted(peers=peers))
        self.event(room_topic(appointment), PeerJoined(peer=Peer.of(member)))
        self._dashboards(room, QueueUpdate(op=QueueOp.ADMITTED, appointment=appointment, member_id=member_id))
        self._announce(
            signals.participant_admitted,
            appointment_id=appointment,
            invitation_id=member.invitation,
            practitioner_id=actor.public_id,
        )
        return member

    def decline(self, actor: Staffer, appointment: str, member_id: str) -> None:
        """Send one person away; the same check-in cannot enter again (a new one needs the code)."""
        room = self._own_room(actor, appointment)
        if self.presence.remove(appointment, member_id) is None:
            raise ProtocolError("unknown_participant", "this person is no longer waiting")
        self.presence.update_room(appointment, declined=(*room.declined, member_id)[-DECLINED_KEPT:])
        self.event(member_topic(appointment, member_id), Declined())
        self.event(room_topic(appointment), PeerLeft(peer=member_id))
        self._dashboards(room, QueueUpdate(op=QueueOp.LEFT, appointment=appointment, member_id=member_id))

    def send_back(self, actor: Staffer, appointment: str, member_id: str) -> Member:
        """From the call back to the waiting room, at the old place in the queue; admitting again reconnects.

        The same people who admit may do it. Everyone in the call hears ``peer-left`` and closes the
        connection; the member's socket relays nothing either way until admitted again."""
        room = self._own_room(actor, appointment)
        member = self.presence.get(appointment, member_id)
        if member is None or member.role is not MemberRole.PATIENT or member.state != MemberState.ADMITTED:
            raise ProtocolError("not_in_call", "this person is not in the call")
        member = (
            self.presence.update(appointment, member_id, state=MemberState.WAITING, asked_to_wait_by=actor.name)
            or member
        )
        position = 1 + sum(
            1
            for m in self.presence.members(appointment, self.now())
            if m.state == MemberState.WAITING and m.since < member.since
        )
        self.event(member_topic(appointment, member_id), SentBack(practitioner_name=actor.name, position=position))
        self.event(room_topic(appointment), PeerLeft(peer=member_id))
        self._dashboards(room, QueueUpdate(op=QueueOp.SENT_BACK, appointment=appointment, member_id=member_id))
        return member

    def notice(self, actor: Staffer, appointment: str, text: str) -> None:
        room = self.presence.room(appointment)
        if room is None or room.organisation != actor.organisation_id:
            raise ProtocolError("unknown_room", "no such waiting room")
        if actor.role is Role.PRACTITIONER and room.practitioner != actor.public_id:
            raise ProtocolError("not_allowed", "only the appointment's practitioner or staff may do this")
        cleaned = " ".join(text.split())[:500] or None
        self.presence.update_room(appointment, notice=cleaned)
        self.event(room_topic(appointment), RoomNotice(text=cleaned))
        self._dashboards(room, QueueUpdate(op=QueueOp.NOTICE, appointment=appointment, text=cleaned))

    def end(self, actor: Staffer, appointment: str) -> None:
        """End the consultation for everyone: sockets close, presence is deleted, the link says so.

        Until the link would expire anyway, the practitioner may reopen it (``AppointmentBook.reopen``).
        """
        room = self._own_room(actor, appointment)
        self.event(room_topic(appointment), Ended())
        invitations, ended_at = self._mark_ended(room, actor)
        # After the commit: closes the room and its presence, tells the dashboards, forgets the names.
        self._revoker.appointment(appointment, Reason.ENDED, invitations, at=ended_at)
        self._announce(signals.consultation_ended, appointment_id=appointment, practitioner_id=actor.public_id)
        self._reschedule(room.practitioner)  # those waiting for later appointments may come sooner now

    def _mark_ended(self, room: Room, actor: Staffer) -> tuple[list[str], float | None]:
        """The appointment is over in the database too; returns its invitations' ids and the end's moment."""
        from sqlalchemy import select

        session = self._session()
        appointment = session.scalars(select(Appointment).where(Appointment.public_id == room.appointment)).first()
        if appointment is None:
            return [], None
        invitations = [i.public_id for i in appointment.invitations]
        if appointment.state is AppointmentState.PLANNED:
            appointment.state = AppointmentState.ENDED
            appointment.ended_at = self._clock.now()
            self._audit.record(
                "consultation.ended",
                Actor(ActorKind.of(actor.role), actor.id),
                organisation_id=room.organisation,
                subject=room.appointment,
            )
            session.commit()
        # The stored moment, also when it had ended already: a reopening lets later sockets claim since then.
        return invitations, appointment.ended_at.timestamp() if appointment.ended_at is not None else None

    def handover(self, actor: Staffer, appointment: str, practitioner_public_id: str) -> Room:
        """Staff (or the practitioner) hand the appointment to a colleague of the same organisation."""
        room = self.presence.room(appointment)
        if room is None or room.organisation != actor.organisation_id:
            raise ProtocolError("unknown_room", "no such waiting room")
        if actor.role is Role.PRACTITIONER and room.practitioner != actor.public_id:
            raise ProtocolError("not_allowed", "only staff or the appointment's practitioner may hand over")
        target = self._directory.by_public_id(practitioner_public_id)
        if target is None or target.organisation_id != actor.organisation_id or not target.may_join_calls:
            raise ProtocolError("unknown_practitioner", "choose a practitioner of your organisation")
        self._check_nobody_in_call(actor, appointment)
        from sqlalchemy import select

        session = self._session()
        record = session.scalars(select(Appointment).where(Appointment.public_id == appointment)).first()
        if record is None or record.state is not AppointmentState.PLANNED:
            raise ProtocolError("unknown_room", "no such appointment")
        record.practitioner_id = target.id
        self._audit.record(
            "appointment.handed_over",
            Actor(ActorKind.of(actor.role), actor.id),
            organisation_id=room.organisation,
            subject=appointment,
        )
        session.commit()
        self._step_out(room, actor)
        previous = room.practitioner
        updated = (
            self.presence.update_room(appointment, practitioner=target.public_id, practitioner_name=target.display_name)
            or room
        )
        update = QueueUpdate(
            op=QueueOp.HANDOVER,
            appointment=appointment,
            practitioner=target.public_id,
            practitioner_name=target.display_name,
        )
        self.event(practitioner_topic(previous), update)
        # The new practitioner's dashboard may not know the room yet: it comes along.
        self.event(
            practitioner_topic(target.public_id), msgspec.structs.replace(update, room=self.room_snapshot(updated))
        )
        self.event(organisation_topic(room.organisation), update)
        self.event(room_topic(appointment), HandedOver(practitioner_name=target.display_name))
        return updated

    # --- how long the wait will probably be ---------------------------------------------------------------
    def running_late(self, actor: Staffer, minutes: int) -> None:
        """The practitioner's one click: every one of their waiting rooms hears the new estimate at once."""
        if actor.role is Role.STAFF:
            raise ProtocolError("not_allowed", "only practitioners say how late they run")
        self.presence.set_running_late(actor.public_id, minutes, self.now() + LATE_LASTS_SECONDS)
        self.event(practitioner_topic(actor.public_id), RunningLate(minutes=minutes))
        self._reschedule(actor.public_id)

    def announced_delay(self, actor: Staffer) -> int | None:
        """The delay a practitioner's dashboard shows as chosen; staff announce none."""
        return None if actor.role is Role.STAFF else self.presence.running_late(actor.public_id)

    def estimate(self, room: Room, ahead: Ahead | None = None) -> Estimate:
        """For someone waiting in ``room``: earlier rooms of the same practitioner with people in them
        come first (``ahead``: what presence said of them a moment ago, if it was asked already)."""
        now = self.now()
        if ahead is None:
            ahead = self.presence.ahead(room.practitioner, room.starts_at, now)
        return estimate(room, ahead.busy_until, ahead.late_minutes, now)

    def _estimate(self, room: Room, occupied: list[tuple[Room, list[Member]]], late: int) -> Estimate:
        busy = (other.ends_at for other, _ in occupied if other.starts_at < room.starts_at)
        return estimate(room, max(busy, default=None), late, self.now())

    def _occupied_rooms(self, practitioner: str) -> list[tuple[Room, list[Member]]]:
        """The practitioner's rooms that someone is in, with their members (read once per question)."""
        now = self.now()
        rooms = (self.presence.room(a) for a in self.presence.rooms_of(index_of_practitioner(practitioner)))
        found = [(r, self.presence.members(r.appointment, now)) for r in rooms if r is not None]
        return [(r, members) for r, members in found if members]

    def _reschedule(self, practitioner: str) -> None:
        occupied = self._occupied_rooms(practitioner)
        late = self.presence.running_late(practitioner)
        for room, members in occupied:
            if any(m.state == MemberState.WAITING for m in members):
                found = self._estimate(room, occupied, late)
                self.event(
                    room_topic(room.appointment),
                    Schedule(expected_in=found.expected_in, late_minutes=found.late_minutes),
                )

    def _check_nobody_in_call(self, actor: Staffer, appointment: str) -> None:
        """A handover moves the whole appointment: only while nobody is in the call but the one handing over.

        The practitioner sends each person in the call back to the waiting room first; then everyone
        waits for the colleague in the same order, and nobody is cut off mid-sentence."""
        members = self.presence.members(appointment, self.now())
        if any(m.state == MemberState.ADMITTED and m.id != actor.public_id for m in members):
            raise ProtocolError("in_call", "someone is in the call: send them back to the waiting room first")

    def _step_out(self, room: Room, actor: Staffer) -> None:
        """The practitioner who handed over from the call leaves the room (the call page closes)."""
        if self.presence.remove(room.appointment, actor.public_id) is None:
            return
        self.event(room_topic(room.appointment), PeerLeft(peer=actor.public_id))
        self._dashboards(room, QueueUpdate(op=QueueOp.LEFT, appointment=room.appointment, member_id=actor.public_id))

    # --- what dashboards see ----------------------------------------------------------------------------
    def practitioner_name(self, room: Room) -> str:
        """The room's own copy; the directory only for a room an older version opened."""
        if room.practitioner_name:
            return room.practitioner_name
        person = self._directory.by_public_id(room.practitioner)
        return person.display_name if person else ""

    def room_snapshot(self, room: Room, present: list[Member] | None = None, *, named: bool = False) -> RoomView:
        """``present``: the room's members when the caller has just read them; ``named``: the room's
        practitioner name is final (no directory asked)."""
        if present is None:
            present = self.presence.members(room.appointment, self.now())
        members = sorted(present, key=lambda m: m.since)
        return RoomView(
            appointment=room.appointment,
            practitioner=room.practitioner,
            practitioner_name=room.practitioner_name if named else self.practitioner_name(room),
            starts_at=room.starts_at,
            ends_at=room.ends_at,
            notice=room.notice,
            members=[ListedMember.of(m) for m in members],
        )

    def queue_for(self, actor: Staffer) -> list[RoomView]:
        """A practitioner's rooms; staff and admins see the organisation's shared queue."""
        if actor.role is Role.PRACTITIONER:
            index = index_of_practitioner(actor.public_id)
        else:
            index = index_of_organisation(actor.organisation_id)
        rooms = [self.presence.room(a) for a in self.presence.rooms_of(index)]
        return [self.room_snapshot(r) for r in sorted((r for r in rooms if r), key=lambda r: r.starts_at)]


def _resumes(member: Member, token: str) -> bool:
    """The newest token, or the one before it: a page that lost its socket between ``hello`` and
    ``welcome`` never saw the newest and must not be sent back to the end of the queue."""
    given = digest(token)
    current = secrets.compare_digest(member.resume, given)
    before = bool(member.resume_before) and secrets.compare_digest(member.resume_before, given)
    return current or before
