"""One socket in a room (patient, practitioner or probe), as a state machine without I/O.

The phase moves ``OPENED → WAITING → ADMITTED → CLOSED`` (or straight on from ``OPENED``), and
back from ``ADMITTED`` to ``WAITING`` only when the practitioner sends someone back to the waiting
room; it changes in one place, :meth:`RoomSession._enter`. Who may do what follows from the
phase and the identity: only admitted members relay, only the appointment's practitioner commands,
people waiting do not learn who else is there. See :mod:`.socket_session` for the shape of events
and actions.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import msgspec

from ..adapters.presence import CheckInRecord, Member, MemberRole, MemberState, Room
from ..core.config import Settings
from .check_in import ParticipantPass
from .entrance import Barred, Joined, JoinOutcome, SentAway
from .revocation import (
    Claim,
    Reason,
    Revocation,
    appointment_claim,
    invitation_scope,
    member_scope,
    organisation_scope,
    practitioner_scope,
    sessions_scope,
)
from .server_messages import (
    Admitted,
    AppointmentView,
    Declined,
    Ended,
    HandedOver,
    Left,
    Peer,
    PeerJoined,
    PeerLeft,
    PeerOffline,
    Pong,
    RelayServers,
    Replaced,
    SentBack,
    Welcome,
    You,
    decode_room_event,
)
from .signaling import (
    RELAYED,
    Admit,
    Decline,
    End,
    Handover,
    Hello,
    Incoming,
    Notice,
    Ping,
    ProtocolError,
    RelayRequest,
    RunningLate,
    SendBack,
    relayed,
)
from .signaling import Leave as LeaveMessage
from .socket_actions import (
    Action,
    CheckPass,
    Command,
    Forget,
    Goodbye,
    GrantRelay,
    Join,
    Leave,
    Relay,
    Send,
    Subscribe,
    Touch,
)
from .socket_session import Ending, SocketSession
from .topics import member_topic, room_topic
from .turn import ice_servers, relay_available
from .waiting_room import Staffer

log = logging.getLogger(__name__)

#: How often presence hears that a member is still there, at most.
TOUCH_SECONDS = 10.0
#: How often an idle participant's socket asks whether its appointment still stands.
PASS_CHECK_SECONDS = 60.0


class RoomPhase(enum.Enum):
    OPENED = "opened"  # the handshake passed; no hello yet
    WAITING = "waiting"
    ADMITTED = "admitted"
    CLOSED = "closed"  # see ``ending``


_NEXT = {
    RoomPhase.OPENED: {RoomPhase.WAITING, RoomPhase.ADMITTED, RoomPhase.CLOSED},
    RoomPhase.WAITING: {RoomPhase.ADMITTED, RoomPhase.CLOSED},
    # Back to the waiting room is the practitioner's decision ("sent-back"), never the client's.
    RoomPhase.ADMITTED: {RoomPhase.WAITING, RoomPhase.CLOSED},
    RoomPhase.CLOSED: set(),
}
#: Endings after which nothing is said about the member: they left, or the room told everyone already.
_QUIET = {Ending.LEFT, Ending.DECLINED, Ending.ENDED, Ending.REPLACED, Ending.HANDED_OVER}


@dataclass(frozen=True, slots=True)
class RoomIdentity:
    """Who joins a room, from the participant pass or the practitioner's session."""

    appointment: str
    member_id: str
    role: MemberRole
    name: str
    kind: str = "patient"
    participant_pass: ParticipantPass | None = None
    #: The check-in behind the pass, as the handshake found it (written back after a Redis restart).
    check_in: CheckInRecord | None = None
    staffer: Staffer | None = None
    #: When the appointment was last ended (it was reopened since): earlier revocations are not this socket's.
    ended_at: float | None = None


class RoomSession(SocketSession):
    __slots__ = (
        "connection",
        "hello_sent",
        "identity",
        "last_pass_check",
        "last_touch",
        "member",
        "peers",
        "phase",
        "relay_consented",
        "room",
        "swept",
    )

    def __init__(
        self,
        settings: Settings,
        identity: RoomIdentity,
        room: Room | None,
        *,
        connection: str,
        opened: float,
        now: float,
        swept: bool = False,
    ) -> None:
        """``opened``: wall time of the handshake (claims); ``now``: monotonic seconds.

        ``swept``: the transport keeps presence for all its sockets in one sweep (``present``) and
        hears revocations as events, asking about passes only after a bus outage; the session then
        asks for neither ``Touch`` nor ``CheckPass`` itself."""
        super().__init__(settings, room_claims(identity, room, opened), now)
        self.identity = identity
        self.room = room
        self.connection = connection
        self.phase = RoomPhase.OPENED
        self.member: Member | None = None
        self.peers: set[str] = set()
        self.relay_consented = False
        self.hello_sent = False
        self.last_touch = float("-inf")
        self.last_pass_check = now
        self.swept = swept

    @property
    def greeted(self) -> bool:
        return self.member is not None

    def _enter(self, phase: RoomPhase) -> None:
        if phase is self.phase:
            return
        if phase not in _NEXT[self.phase]:
            raise AssertionError(f"a room socket does not go from {self.phase.value} to {phase.value}")
        self.phase = phase

    def close(self, code: int, reason: str, ending: Ending, *, flush: bool = True) -> list[Action]:
        self._enter(RoomPhase.CLOSED)
        return super().close(code, reason, ending, flush=flush)

    # --- messages from the client --------------------------------------------------------------------
    def on_message(self, message: Incoming, now: float, at: datetime) -> list[Action]:
        if isinstance(message, Hello):
            return self._hello(message)
        if isinstance(message, Ping):
            # A client that pings often is never idle: presence and the pass check go on.
            return [self.say(Pong(t=message.t)), *self.idle(now, at)]
        if isinstance(message, LeaveMessage):
            return [Leave(), self.say(Left()), *self.close(1000, "left", Ending.LEFT)]
        if message.type in RELAYED:
            return self._relay(message)
        if isinstance(message, RelayRequest):
            return self._relay_request(message)
        if isinstance(message, Admit | Decline | SendBack | Notice | End | Handover):
            return self._command(message)
        if isinstance(message, RunningLate):
            raise ProtocolError("not_allowed", "say it on the dashboard socket", ref=message.type)
        raise ProtocolError("unknown_type", "unknown message type")

    def _hello(self, message: Hello) -> list[Action]:
        if self.hello_sent:
            raise ProtocolError("already_joined", "hello was already sent")
        if self.room is None:
            raise ProtocolError("unknown_room", "this consultation is not open", close=True)
        self.hello_sent = True
        identity = self.identity
        admitted = identity.role in {MemberRole.PRACTITIONER, MemberRole.PROBE}
        member = Member(
            id=identity.member_id,
            role=identity.role,
            name=identity.name,
            state=MemberState.ADMITTED if admitted else MemberState.WAITING,
            since=0.0,
            invitation=identity.participant_pass.invitation if identity.participant_pass else None,
            kind=identity.kind,
        )
        if identity.role is MemberRole.PATIENT and message.devices is not None:
            member = replace(member, camera=message.devices.camera, microphone=message.devices.microphone)
        appointment = self.room.appointment
        topics = (member_topic(appointment, member.id), room_topic(appointment))
        # Listening before arriving: nothing said about this member in between is missed.
        return [Subscribe(topics), Join(member, message.resume)]

    def joined(self, outcome: JoinOutcome, at: datetime) -> list[Action]:
        """What came of ``Join``; ``at`` is the wall time (relay credentials)."""
        if isinstance(outcome, Barred):
            return self.revoke(Revocation((), at.timestamp(), outcome.reason))
        if isinstance(outcome, SentAway):
            return [self.say(Declined()), *self.close(1000, "declined", Ending.DECLINED)]
        self.member, self.room = outcome.member, outcome.room
        if self.closed:
            return []  # revoked while arriving: closing will take the member out again
        # "admitted" may have come over the bus before this answer: it is not taken back.
        admitted = outcome.member.state == MemberState.ADMITTED or self.phase is RoomPhase.ADMITTED
        self._enter(RoomPhase.ADMITTED if admitted else RoomPhase.WAITING)
        self.peers |= {p.id for p in outcome.peers}
        return [self.say(self._welcome(outcome, at))]

    def _welcome(self, outcome: Joined, at: datetime) -> Welcome:
        member, room = outcome.member, outcome.room
        return Welcome(
            you=You(member.id, member.role, member.name, member.kind),
            appointment=AppointmentView.of(room, outcome.practitioner_name),
            state=MemberState.ADMITTED if self.phase is RoomPhase.ADMITTED else MemberState.WAITING,
            position=outcome.position,
            peers=[Peer.of(p) for p in outcome.peers],
            resume=outcome.resume,
            notice=room.notice,
            ice_servers=ice_servers(self.settings, at, relay_until=self._relay_until() if room.relay_only else None),
            ice_transport_policy="relay" if room.relay_only else "all",
            relay_available=relay_available(self.settings),
            max_message_bytes=self.settings.ws_max_message_bytes,
            file_max_bytes=self.settings.file_transfer_max_bytes,
            **self._while_waiting(outcome),
        )

    def _while_waiting(self, outcome: Joined) -> dict[str, int | str]:
        """What only a waiting welcome carries: the estimate, and who asked to wait after a call."""
        if self.phase is RoomPhase.ADMITTED:
            return {}
        waiting: dict[str, int | str] = {}
        if outcome.estimate is not None:
            waiting |= {"expected_in": outcome.estimate.expected_in, "late_minutes": outcome.estimate.late_minutes}
        if outcome.member.asked_to_wait_by:
            waiting["asked_to_wait_by"] = outcome.member.asked_to_wait_by
        return waiting

    def _relay_until(self) -> datetime:
        """Relay credentials never outlive the appointment's end plus the grace for joining late."""
        assert self.room is not None
        grace = timedelta(minutes=self.settings.join_grace_minutes)
        return datetime.fromtimestamp(self.room.ends_at, UTC) + grace

    def _relay(self, message: Incoming) -> list[Action]:
        if self.phase is not RoomPhase.ADMITTED:
            raise ProtocolError("not_admitted", "wait until you are admitted", ref=message.type)
        target: str = message.to  # type: ignore[attr-defined]
        if target == self.identity.member_id:
            raise ProtocolError("unknown_peer", "no such participant in this consultation", ref=message.type)
        text = relayed(message.type, self.identity.member_id, message)
        return [Relay(target, message.type, text, verify=target not in self.peers)]

    def relay_result(self, relay: Relay, delivered: bool, now: float) -> list[Action]:
        """What came of ``Relay``: not delivered means no such peer, or one of the two was just revoked."""
        if not delivered:
            self.peers.discard(relay.to)
            error = ProtocolError("unknown_peer", "no such participant in this consultation", ref=relay.kind)
            return [] if self.closed else [self.say_error(error)]
        self.peers.add(relay.to)
        return self._touch(now)

    def _relay_request(self, message: RelayRequest) -> list[Action]:
        if not message.consent:
            raise ProtocolError("relay_consent_required", "a relay is used only with your consent")
        if not relay_available(self.settings):
            raise ProtocolError("relay_unavailable", "no relay server is configured")
        if self.phase is not RoomPhase.ADMITTED:
            raise ProtocolError("not_admitted", "wait until you are admitted")
        first = not self.relay_consented and self.identity.participant_pass is not None
        return [GrantRelay(record_consent=first)]

    def relay_granted(self, at: datetime) -> list[Action]:
        if self.closed:
            return []
        self.relay_consented = True
        return [self.say(RelayServers(ice_servers=ice_servers(self.settings, at, relay_until=self._relay_until())))]

    def _command(self, message: Admit | Decline | SendBack | Notice | End | Handover) -> list[Action]:
        staffer = self.identity.staffer
        if staffer is None:
            raise ProtocolError("not_allowed", "only the practitioner may do this", ref=message.type)
        assert self.room is not None
        if message.appointment != self.room.appointment:
            raise ProtocolError("unknown_room", "use the dashboard for other appointments", ref=message.type)
        return [Command(staffer, message)]

    # --- time passing --------------------------------------------------------------------------------
    def idle(self, now: float, at: datetime) -> list[Action]:
        """Nothing heard for a while (``now`` monotonic, ``at`` wall time)."""
        if self.closed or not self.greeted:
            return []
        pass_ = self.identity.participant_pass
        if pass_ is not None and pass_.expires_at <= at.timestamp():
            return self.pass_checked(False)  # the pass's own expiry costs nothing to check
        actions = self._touch(now)
        # Whether the appointment was cancelled needs the database: thousands of sockets ask rarely.
        if pass_ is not None and not self.swept and now - self.last_pass_check >= PASS_CHECK_SECONDS:
            self.last_pass_check = now
            actions.append(CheckPass())
        return actions

    def _touch(self, now: float) -> list[Action]:
        if self.swept or now - self.last_touch <= TOUCH_SECONDS or not self.greeted:
            return []
        self.last_touch = now
        return [Touch()]

    def pass_checked(self, valid: bool) -> list[Action]:
        if valid or self.closed:
            return []
        error = ProtocolError("expired", "this invitation is no longer valid")
        return [self.say_error(error), *self.close(1008, "expired", Ending.EXPIRED)]

    # --- what the bus says ---------------------------------------------------------------------------
    def event(self, text: str) -> list[Action]:
        """A bus message for this socket: ``R…`` is relayed as it is, ``E…`` is an event to read first."""
        if text[:1] == "R":
            return self.relayed_in(text[1:])
        if self.closed:
            return []
        body = text[1:]
        try:
            event = decode_room_event(body)
        except (msgspec.ValidationError, msgspec.DecodeError):
            log.warning("ignored a malformed room event")
            return []
        if isinstance(event, SentBack | HandedOver | Replaced):
            return self._turn(event, body)
        me = self.identity.member_id
        if isinstance(event, Admitted):
            self._enter(RoomPhase.ADMITTED)
            self.peers = {p.id for p in event.peers}
        elif isinstance(event, PeerJoined | PeerLeft | PeerOffline):
            peer = event.peer.id if isinstance(event, PeerJoined) else event.peer
            if peer == me or self.phase is not RoomPhase.ADMITTED:
                return []  # people in the waiting room do not learn who else is there
            if isinstance(event, PeerJoined):
                self.peers.add(peer)
            elif isinstance(event, PeerLeft):
                self.peers.discard(peer)
        actions: list[Action] = [Send(body)]
        if isinstance(event, Ended):
            actions += self.close(1000, "ended", Ending.ENDED)
        elif isinstance(event, Declined):
            actions += self.close(1000, "declined", Ending.DECLINED)
        return actions

    def _turn(self, event: SentBack | HandedOver | Replaced, body: str) -> list[Action]:
        """Events that move this socket back to waiting or close it."""
        if isinstance(event, Replaced):
            if event.connection != self.connection:
                return []  # another socket of the same member was meant (the newer one hears it too)
            error = ProtocolError("replaced", "you joined from another window", close=True)
            return [self.say_error(error), *self.close(1000, "replaced", Ending.REPLACED)]
        if isinstance(event, HandedOver):
            if self.identity.role is not MemberRole.PRACTITIONER:
                return [Send(body)]
            # The waiting room took the practitioner out of the room; the colleague takes over.
            return [Send(body), *self.close(1000, "handed-over", Ending.HANDED_OVER)]
        return self._sent_back(body)

    def _sent_back(self, body: str) -> list[Action]:
        """Back in the waiting room: no relays either way until admitted again (the client closes its calls)."""
        if self.phase is not RoomPhase.ADMITTED:
            return []
        self._enter(RoomPhase.WAITING)
        self.peers = set()
        return [Send(body)]

    def relayed_in(self, text: str) -> list[Action]:
        """Signalling relayed to this member, as it is; nothing once the socket is closed or revoked, and
        nothing while sent back to the waiting room (a peer may not have heard of it yet)."""
        return [] if self.closed or self.phase is RoomPhase.WAITING else [Send(text)]

    # --- the end -------------------------------------------------------------------------------------
    def socket_closed(self) -> list[Action]:
        """The socket is gone, however it ended: what the member leaves behind."""
        if not self.closed:
            self.close(1000, "gone", Ending.GONE)
        if self.member is None:
            return []
        if self.ending is Ending.REVOKED:
            # A revocation removed the member already, except a signed-out practitioner, who may come
            # back; removing again catches an arrival that raced the revocation.
            signed_out = self.revocation is not None and self.revocation.reason is Reason.SIGNED_OUT
            return [Forget(Goodbye.OFFLINE if signed_out else Goodbye.REMOVE)]
        return [] if self.ending in _QUIET else [Forget(Goodbye.OFFLINE)]

    def present(self) -> tuple[str, str] | None:
        """(appointment, member) while this socket speaks for a member in a room: what a sweep touches."""
        if self.closed or self.member is None or self.room is None:
            return None
        return self.room.appointment, self.member.id

    def restorable(self) -> tuple[Room, Member] | None:
        """The room and member to write back after presence was lost (Redis restarted)."""
        if self.closed or self.member is None or self.room is None:
            return None
        state = MemberState.ADMITTED if self.phase is RoomPhase.ADMITTED else MemberState.WAITING
        return self.room, replace(self.member, state=state)


def room_claims(identity: RoomIdentity, room: Room | None, opened: float) -> tuple[Claim, ...]:
    """What a room socket depends on; probes (no appointment) depend on nothing revocable."""
    if identity.role is MemberRole.PROBE or room is None:
        return ()
    claims = [
        appointment_claim(room.appointment, identity.ended_at),
        Claim(organisation_scope(room.organisation), opened),
    ]
    if identity.participant_pass is not None:
        invitation = identity.participant_pass.invitation
        claims += [Claim(invitation_scope(invitation)), Claim(member_scope(identity.member_id))]
    if identity.staffer is not None:
        claims += staffer_claims(identity.staffer, opened)
    return tuple(dict.fromkeys(claims))


def staffer_claims(staffer: Staffer, opened: float) -> tuple[Claim, ...]:
    """A person who signs in: ``opened`` is when the socket opened (an organisation may start again later)."""
    claims = [Claim(practitioner_scope(staffer.public_id)), Claim(organisation_scope(staffer.organisation_id), opened)]
    if staffer.signed_in_at is not None:
        claims.append(Claim(sessions_scope(staffer.public_id), since=staffer.signed_in_at))
    return tuple(claims)
