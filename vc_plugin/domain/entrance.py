"""Coming into a room on ``hello``: the handshake's checks asked again, the arrival, and what the welcome needs.

Between the handshake and ``hello`` an appointment may have been cancelled, a pass replaced by a
new check-in, or the appointment handed to a colleague; a revocation in that gap reached no socket
yet. So the entrance asks again, right before and right after the arrival.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

from ..adapters.presence import Ahead, AheadOf, CheckInRecord, Member, MemberRole, MemberState, Room
from ..adapters.steps import Step, Steps, drive
from .check_in import ParticipantPass, held_by
from .revocation import Claim, Reason, appointment_scope
from .signaling import ProtocolError
from .waiting_room import WaitingRoom
from .waiting_time import Estimate


@dataclass(frozen=True)
class Joined:
    """In the room: the member as presence holds it, and what the welcome message tells."""

    member: Member
    resume: str
    room: Room
    peers: list[Member]
    position: int
    practitioner_name: str
    estimate: Estimate | None = None  # waiting only


@dataclass(frozen=True)
class SentAway:
    """The practitioner declined this check-in earlier; the page shows so again."""


@dataclass(frozen=True)
class Barred:
    """Revoked before the socket could hear of it."""

    reason: Reason


JoinOutcome = Joined | SentAway | Barred


@dataclass(frozen=True)
class JoinRequest:
    room: Room
    member: Member
    resume: str | None
    connection: str
    claims: tuple[Claim, ...]
    participant_pass: ParticipantPass | None


class Entrance:
    def __init__(self, waiting_room: WaitingRoom) -> None:
        self._waiting_room = waiting_room
        self._presence = waiting_room.presence

    def join(self, request: JoinRequest) -> JoinOutcome:
        """Raises :class:`ProtocolError` for a pass no longer valid or an appointment handed over."""
        return drive(self.joining(request))

    def joining(self, request: JoinRequest) -> Steps[JoinOutcome]:
        """``join`` as steps (:mod:`..adapters.steps`). The room is read once, as it is now (declined
        members, its practitioner, what the welcome says), and the people present once, right after
        arriving (place, peers, the dashboards' view): three round trips for a first arrival."""
        pass_ = request.participant_pass
        invitation = pass_.invitation if pass_ is not None else None
        asked = request.room
        waiting_room = self._waiting_room
        # What a waiting person waits for is asked along with the rest: one round trip less (only
        # the invited wait; practitioners and the operator's probe go straight in).
        ahead_of = (
            AheadOf(asked.practitioner, asked.starts_at, waiting_room.now())
            if request.member.role is MemberRole.PATIENT
            else None
        )
        facts = yield self._presence.arriving_step(
            asked.appointment, request.member.id, invitation, request.claims, ahead_of
        )
        current = facts.room
        held = held_by(pass_, facts.check_in) if pass_ is not None else None
        if facts.revoked is not None:
            return (yield Step(run=partial(self._revoked, request, facts.revoked)))
        self._check_still_valid(request, current, held)
        room = current or request.room
        if request.member.id in room.declined:
            return SentAway()
        if not room.practitioner_name:  # a room an older version opened: the directory knows the name
            name = yield Step(run=partial(waiting_room.practitioner_name, room))
            room = replace(room, practitioner_name=name)
        member = request.member
        if held is not None:  # a participant is called as the check-in says (a socket ticket carries no name)
            member = replace(member, name=held.name)
        arrival = yield from waiting_room.arriving(
            room, member, request.resume, request.connection, facts.earlier, claims=request.claims
        )
        if arrival.revoked is not None:  # revoked while arriving: not in the room
            return (yield Step(run=partial(self._revoked, request, arrival.revoked)))
        member = arrival.member
        if member.role is MemberRole.PRACTITIONER and member.state != MemberState.ADMITTED:
            admit = partial(self._presence.update, room.appointment, member.id, state=MemberState.ADMITTED)
            member = (yield Step(run=admit)) or member
        admitted = member.state == MemberState.ADMITTED
        estimate = None
        if not admitted:
            ahead = _answer(facts.ahead, ahead_of, room)
            estimate = (
                waiting_room.estimate(room, ahead)
                if ahead is not None
                else (yield Step(run=partial(waiting_room.estimate, room)))
            )
        return Joined(
            member=member,
            resume=arrival.token,
            room=room,
            peers=[m for m in arrival.present if m.state == MemberState.ADMITTED and m.id != member.id]
            if admitted
            else [],
            position=0 if admitted else _position(arrival.present, member),
            practitioner_name=room.practitioner_name,
            estimate=estimate,
        )

    def _revoked(self, request: JoinRequest, reason: str) -> Barred:
        """One of the socket's claims was revoked; if it was the appointment itself, the room this
        socket's handshake reopened is closed again."""
        appointment = request.room.appointment
        own = tuple(claim for claim in request.claims if claim.scope == appointment_scope(appointment))
        if self._waiting_room.revoked_reason(own) is not None:
            self._presence.close_room(appointment)
        return Barred(Reason(reason))

    @staticmethod
    def _check_still_valid(request: JoinRequest, current: Room | None, held: CheckInRecord | None) -> None:
        """``current``: the room as stored; ``held``: the check-in the pass was issued with, if it is
        still the invitation's current one."""
        pass_ = request.participant_pass
        if pass_ is not None and held is None:
            raise ProtocolError("expired", "this invitation is no longer valid", close=True)
        handed_over = current is not None and current.practitioner != request.member.id
        if request.member.role is MemberRole.PRACTITIONER and handed_over:
            raise ProtocolError("not_allowed", "this appointment was handed over to a colleague", close=True)


def _answer(ahead: Ahead | None, asked: AheadOf | None, room: Room) -> Ahead | None:
    """What was read ahead of the arrival, if it was asked about this room's practitioner and start
    (a handover in between changes the practitioner: then the estimate asks again)."""
    if ahead is None or asked is None or (asked.practitioner, asked.before) != (room.practitioner, room.starts_at):
        return None
    return ahead


def _position(present: list[Member], member: Member) -> int:
    return 1 + sum(1 for m in present if m.state == MemberState.WAITING and m.since < member.since)
