"""One WebSocket connection: reading, writing, rate limits, and the protocol's rules per role.

A connection has a reader thread (parses and acts on client messages) and writes from the
thread that flask-sock gave it, draining an outbox that bus callbacks fill. So a slow
client never blocks the process-wide bus listener; a client that stops reading long enough
to fill its outbox is disconnected.

Each connection holds *claims* (:mod:`vc_plugin.domain.revocation`): the appointment, invitation,
check-in, practitioner, session and organisation it depends on. A revocation that hits one
closes the connection with a final ``revoked`` message, on whichever process it runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from simple_websocket import ConnectionClosed

from ..adapters.presence import CheckInRecord, Member, MemberRole, MemberState, Room
from ..core.models import Appointment, Role
from ..domain.check_in import ParticipantPass
from ..domain.revocation import CHANNEL as REVOCATIONS
from ..domain.revocation import CLOSE_CODE as REVOKED_CLOSE_CODE
from ..domain.revocation import (
    Claim,
    Reason,
    Revocation,
    appointment_scope,
    invitation_scope,
    member_scope,
    organisation_scope,
    practitioner_scope,
    sessions_scope,
)
from ..domain.signaling import (
    RELAYED,
    Admit,
    Decline,
    End,
    Handover,
    Hello,
    Incoming,
    Leave,
    Notice,
    Ping,
    ProtocolError,
    RelayRequest,
    encode,
    parse,
    relayed,
)
from ..domain.topics import connection_topic, member_topic, organisation_topic, practitioner_topic, room_topic
from ..domain.turn import relay_available, stun_servers, turn_credentials
from ..domain.waiting_room import Staffer

if TYPE_CHECKING:
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from ..adapters.bus import Bus
    from ..core.clock import Clock
    from ..core.config import Settings
    from ..domain.check_in import CheckIn
    from ..domain.directory import Directory
    from ..domain.waiting_room import WaitingRoom

log = logging.getLogger(__name__)

CLOSE = object()
OUTBOX_LIMIT = 512
IDLE_SECONDS = 10.0
#: How often an idle participant's socket asks the database whether its appointment still stands.
PASS_CHECK_SECONDS = 60.0
STRIKES_BEFORE_CLOSE = 3


class TokenBucket:
    """``rate`` messages per second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.capacity = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class LiveConnections:
    """The sockets of this process: revocations close them; after a Redis restart they re-announce."""

    def __init__(self) -> None:
        self._items: set[Connection] = set()
        self._lock = threading.Lock()
        self._bus: Bus | None = None
        self._listening = False

    def add(self, connection: Connection) -> None:
        with self._lock:
            self._items.add(connection)
            listen = not self._listening and self._bus is not None
            self._listening = self._listening or listen
        if listen:
            assert self._bus is not None
            self._bus.subscribe(REVOCATIONS, self.apply)

    def discard(self, connection: Connection) -> None:
        with self._lock:
            self._items.discard(connection)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def listen_for_revocations(self, bus: Bus) -> None:
        """Subscribe with the first socket: workers and CLI commands hold no listener."""
        self._bus = bus

    def apply(self, raw: str) -> None:
        """A revocation from any process: close every socket here that it hits."""
        try:
            revocation = Revocation.decode(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed revocation")
            return
        with self._lock:
            hit = [c for c in self._items if revocation.hits(c.claims)]
        for connection in hit:
            connection.revoke(revocation)

    def reannounce(self) -> None:
        """Called by the bus after a reconnect: rooms first, then dashboards get fresh queues."""
        with self._lock:
            items = list(self._items)
        rooms = [c for c in items if isinstance(c, RoomConnection)]
        dashboards = [c for c in items if isinstance(c, PracticeConnection)]
        for connection in rooms:
            connection.reannounce()
        time.sleep(0.5)  # let other processes' rooms come back too
        for connection in dashboards:
            connection.reannounce()


class SocketServices(Protocol):
    """What a socket needs of the app's services (the app's ``VCState`` provides them)."""

    settings: Settings
    clock: Clock
    bus: Bus
    db: SQLAlchemy
    directory: Directory
    check_in: CheckIn
    waiting_room: WaitingRoom
    connections: LiveConnections


class Revoked(Exception):
    """Raised after ``Connection.revoke``: stop handling the message."""


class Connection:
    """The parts every socket shares; subclasses speak for a role."""

    def __init__(self, ws: Any, app: Flask, state: SocketServices) -> None:
        self.ws = ws
        self.app = app
        self.state = state
        self.id = secrets.token_urlsafe(9)
        self.outbox: queue.Queue[Any] = queue.Queue(maxsize=OUTBOX_LIMIT)
        self.bucket = TokenBucket(state.settings.ws_messages_per_second, state.settings.ws_burst)
        self.strikes = 0
        self.closing = threading.Event()
        self.topics: list[str] = []
        self.greeted = False
        self.last_touch = 0.0
        self.last_pass_check = time.monotonic()
        self.claims: tuple[Claim, ...] = ()
        self.revoked: Revocation | None = None
        self.opened = state.clock.now().timestamp()

    # --- lifecycle ------------------------------------------------------------------------------------
    def run(self) -> None:
        # Known to revocations before a single message is read: none can slip between.
        self.state.connections.add(self)
        reader = threading.Thread(target=self._read_loop, name=f"vc-socket-{self.id}", daemon=True)
        reader.start()
        try:
            while True:
                item = self.outbox.get()
                if isinstance(item, tuple) and item and item[0] is CLOSE:
                    self._close_socket(item[1], item[2])
                    break
                self.ws.send(item)
        except ConnectionClosed:
            pass
        finally:
            self.closing.set()
            self.state.connections.discard(self)
            self._unsubscribe_all()
            reader.join(timeout=5)

    def send(self, text: str) -> None:
        if self.closing.is_set():
            return
        try:
            self.outbox.put_nowait(text)
        except queue.Full:
            self.close(1008, "too slow", flush=False)

    def send_json(self, body: dict[str, Any]) -> None:
        self.send(encode(body))

    def revoke(self, revocation: Revocation) -> None:
        """The final word: say why, then close; nothing is read or forwarded from now on."""
        if self.closing.is_set() or self.revoked is not None:
            return
        self.revoked = revocation
        self.send_json(revocation.final_message())
        self.close(REVOKED_CLOSE_CODE, "revoked")

    def refuse_if_revoked(self) -> None:
        """A revocation that came before this socket could hear it (between handshake and hello)."""
        reason = self.state.waiting_room.revoked_reason(self.claims)
        if reason is not None:
            self.revoke(Revocation((), self.state.clock.now().timestamp(), Reason(reason)))
            raise Revoked

    def close(self, code: int = 1000, reason: str = "", *, flush: bool = True) -> None:
        """Close after what is queued has been sent; ``flush=False`` closes at once."""
        if self.closing.is_set():
            return
        self.closing.set()
        if flush:
            try:
                self.outbox.put((CLOSE, code, reason), timeout=2)
                return
            except queue.Full:
                pass
        self._close_socket(code, reason)
        with contextlib.suppress(queue.Full):
            self.outbox.put_nowait((CLOSE, code, reason))

    def _close_socket(self, code: int, reason: str) -> None:
        try:
            self.ws.close(reason=code, message=reason)
        except Exception:  # noqa: BLE001 - the socket may already be gone
            log.debug("closing an already closed socket")

    def subscribe(self, topic: str) -> None:
        self.state.bus.subscribe(topic, self._from_bus)
        self.topics.append(topic)

    def _unsubscribe_all(self) -> None:
        for topic in self.topics:
            self.state.bus.unsubscribe(topic, self._from_bus)
        self.topics.clear()

    def _from_bus(self, message: str) -> None:
        if self.revoked is not None:
            return
        if message[:1] == "R":
            self.send(message[1:])
            return
        body = json.loads(message[1:])
        self.on_event(body)

    def _read_loop(self) -> None:
        with self.app.app_context():
            try:
                while not self.closing.is_set():
                    raw = self.ws.receive(timeout=IDLE_SECONDS)
                    if raw is None:
                        self._guarded(self.on_idle)
                        continue
                    self._handle(raw)
            except ConnectionClosed:
                pass
            finally:
                self._guarded(self.on_close)
                self.close(flush=False)

    def _handle(self, raw: str | bytes) -> None:
        if self.revoked is not None:
            return  # read before the revocation arrived: dropped, never acted on
        if not self.bucket.take():
            self.strikes += 1
            self.send(ProtocolError("rate_limited", "too many messages; slow down").as_message())
            if self.strikes >= STRIKES_BEFORE_CLOSE * self.state.settings.ws_burst:
                self.close(1008, "flooding")
            return
        try:
            message = parse(raw, self.state.settings.ws_max_message_bytes)
            if not self.greeted and not isinstance(message, Hello | Ping):
                raise ProtocolError("hello_first", "send hello first")
            self.on_message(message)
        except Revoked:
            pass  # the final message is on its way
        except ProtocolError as error:
            self.send(error.as_message())
            if error.close:
                self.close(1008, error.code)
        except Exception:
            log.exception("socket message handling failed")  # no message content is logged
            self.send(ProtocolError("internal", "the server could not handle this message").as_message())
        finally:
            self.state.db.session.remove()

    def _guarded(self, action: Any) -> None:
        try:
            action()
        except Exception:
            log.exception("socket housekeeping failed")
        finally:
            self.state.db.session.remove()

    # --- for subclasses -------------------------------------------------------------------------------
    def on_message(self, message: Incoming) -> None:
        raise NotImplementedError

    def on_event(self, body: dict[str, Any]) -> None:
        self.send_json(body)

    def on_idle(self) -> None:
        pass

    def on_close(self) -> None:
        pass

    def reannounce(self) -> None:
        """Presence was lost (Redis restarted): write this connection's part of it again."""

    def _in_app(self, action: Any) -> None:
        with self.app.app_context():
            self._guarded(action)


# --- the room: patients, the practitioner, probes ---------------------------------------------------


@dataclass(frozen=True)
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


class RoomConnection(Connection):
    def __init__(
        self,
        ws: Any,
        app: Flask,
        state: SocketServices,
        identity: RoomIdentity,
        appointment: Appointment | None,
        *,
        room: Room | None = None,
    ) -> None:
        super().__init__(ws, app, state)
        self.identity = identity
        self.room: Room | None = None
        self.member: Member | None = None
        self.member_state = MemberState.WAITING
        self.peers: set[str] = set()
        self.left = False
        self.replaced = False
        self.relay_consented = False
        self.room = state.waiting_room.room_for(appointment) if appointment is not None else room
        self.claims = room_claims(identity, self.room, self.opened)

    @property
    def waiting_room(self) -> Any:
        return self.state.waiting_room

    def on_message(self, message: Incoming) -> None:
        if isinstance(message, Hello):
            self._hello(message)
        elif isinstance(message, Ping):
            self.send_json({"type": "pong", "t": message.t})
            self.on_idle()  # a client that pings often is never idle: keep presence and the pass check going
        elif isinstance(message, Leave):
            self.left = True
            assert self.room is not None
            self.waiting_room.leave(self.room, self.identity.member_id)
            self.send_json({"type": "left"})
            self.close(1000, "left")
        elif message.type in RELAYED:
            self._relay(message)
        elif isinstance(message, RelayRequest):
            self._relay_request(message)
        elif isinstance(message, Admit | Decline | Notice | End | Handover):
            self._command(message)

    def _hello(self, message: Hello) -> None:
        if self.greeted:
            raise ProtocolError("already_joined", "hello was already sent")
        if self.room is None:
            raise ProtocolError("unknown_room", "this consultation is not open", close=True)
        self._refuse_stale_identity()
        identity = self.identity
        if self.waiting_room.was_declined(self.room.appointment, identity.member_id):
            self.left = True  # sent away earlier: the page shows so again, the queue is not told
            self.send_json({"type": "declined"})
            self.close(1000, "declined")
            return
        state = (
            MemberState.ADMITTED
            if identity.role in {MemberRole.PRACTITIONER, MemberRole.PROBE}
            else MemberState.WAITING
        )
        template = Member(
            id=identity.member_id,
            role=identity.role,
            name=identity.name,
            state=state,
            since=0.0,
            invitation=identity.participant_pass.invitation if identity.participant_pass else None,
            kind=identity.kind,
        )
        for topic in (
            member_topic(self.room.appointment, identity.member_id),
            room_topic(self.room.appointment),
            connection_topic(self.id),
        ):
            self.subscribe(topic)
        member, resume = self.waiting_room.arrive(self.room, template, message.resume, self.id)
        if self.waiting_room.revoked_reason(self.claims) is not None:
            # Revoked while arriving: take the entry back out, then the final word.
            self.waiting_room.presence.remove(self.room.appointment, member.id)
            self._refuse_stale_identity()
        if identity.role is MemberRole.PRACTITIONER and member.state != MemberState.ADMITTED:
            member = (
                self.waiting_room.presence.update(self.room.appointment, member.id, state=MemberState.ADMITTED)
                or member
            )
        self.member = member
        self.member_state = member.state
        self.greeted = True
        peers = (
            self.waiting_room.admitted_peers(self.room.appointment, member.id)
            if member.state == MemberState.ADMITTED
            else []
        )
        self.peers = {p.id for p in peers}
        room = self.waiting_room.room(self.room.appointment) or self.room
        self.send_json(
            {
                "type": "welcome",
                "you": {"id": member.id, "role": member.role, "name": member.name, "kind": member.kind},
                "appointment": {
                    "id": room.appointment,
                    "starts_at": room.starts_at,
                    "ends_at": room.ends_at,
                    "practitioner_name": self._practitioner_name(room),
                    "relay_only": room.relay_only,
                    "kind": room.kind,
                },
                "state": member.state,
                "position": self._position(member),
                "peers": [p.public() for p in peers],
                "resume": resume,
                "notice": room.notice,
                "iceServers": self._ice_servers(initial=True),
                "iceTransportPolicy": "relay" if room.relay_only else "all",
                "relayAvailable": relay_available(self.state.settings),
                "maxMessageBytes": self.state.settings.ws_max_message_bytes,
                "fileMaxBytes": self.state.settings.file_transfer_max_bytes,
            }
        )

    def _refuse_stale_identity(self) -> None:
        """Ask again what the handshake asked: is this still this person's access to this room?"""
        assert self.room is not None
        appointment = self.room.appointment
        try:
            self.refuse_if_revoked()
        except Revoked:
            if self.waiting_room.revoked_reason((Claim(appointment_scope(appointment)),)) is not None:
                self.waiting_room.presence.close_room(appointment)  # this socket's handshake reopened it
            raise
        pass_ = self.identity.participant_pass
        if pass_ is not None and self.state.check_in.name_of(pass_) is None:
            raise ProtocolError("expired", "this invitation is no longer valid", close=True)
        if self.identity.role is MemberRole.PRACTITIONER:
            current = self.waiting_room.room(appointment)
            if current is not None and current.practitioner != self.identity.member_id:
                raise ProtocolError("not_allowed", "this appointment was handed over to a colleague", close=True)

    def _practitioner_name(self, room: Room) -> str:
        person = self.state.directory.by_public_id(room.practitioner)
        return person.display_name if person else ""

    def _position(self, member: Member) -> int:
        if member.state != MemberState.WAITING or self.room is None:
            return 0
        waiting = [
            m
            for m in self.waiting_room.presence.members(self.room.appointment, self.waiting_room.now())
            if m.state == MemberState.WAITING
        ]
        return 1 + sum(1 for m in waiting if m.since < member.since)

    def _ice_servers(self, *, initial: bool) -> list[dict[str, Any]]:
        servers = [s.as_json() for s in stun_servers(self.state.settings)]
        room = self.room
        relay_now = not initial or (room is not None and room.relay_only)
        if relay_now and relay_available(self.state.settings) and room is not None:
            from datetime import UTC, datetime, timedelta

            not_after = datetime.fromtimestamp(room.ends_at, UTC) + timedelta(
                minutes=self.state.settings.join_grace_minutes
            )
            servers.append(turn_credentials(self.state.settings, self.state.clock.now(), not_after).as_json())
        return servers

    def _relay(self, message: Incoming) -> None:
        if self.member_state != MemberState.ADMITTED:
            raise ProtocolError("not_admitted", "wait until you are admitted", ref=message.type)
        target = message.to  # type: ignore[attr-defined]
        assert self.room is not None
        if target not in self.peers:
            # The news of a new peer may still be on its way through the bus: ask presence itself.
            peer = self.waiting_room.presence.get(self.room.appointment, target)
            if peer is None or peer.state != MemberState.ADMITTED or target == self.identity.member_id:
                raise ProtocolError("unknown_peer", "no such participant in this consultation", ref=message.type)
            self.peers.add(target)
        body = relayed(message.type, self.identity.member_id, message)
        if not self.waiting_room.relay(self.room.appointment, target, body, self.claims):
            self.peers.discard(target)  # the receiver, or this socket, was revoked a moment ago
            raise ProtocolError("unknown_peer", "no such participant in this consultation", ref=message.type)
        self._touch()

    def _relay_request(self, message: RelayRequest) -> None:
        if not message.consent:
            raise ProtocolError("relay_consent_required", "a relay is used only with your consent")
        if not relay_available(self.state.settings):
            raise ProtocolError("relay_unavailable", "no relay server is configured")
        if self.member_state != MemberState.ADMITTED:
            raise ProtocolError("not_admitted", "wait until you are admitted")
        self.refuse_if_revoked()
        if not self.relay_consented and self.identity.participant_pass is not None:
            pass_ = self.identity.participant_pass
            self.state.check_in.record_relay_consent(pass_.invitation, pass_.language)
        self.relay_consented = True
        self.send_json({"type": "relay", "iceServers": self._ice_servers(initial=False)})

    def _command(self, message: Admit | Decline | Notice | End | Handover) -> None:
        staffer = self.identity.staffer
        if staffer is None:
            raise ProtocolError("not_allowed", "only the practitioner may do this", ref=message.type)
        assert self.room is not None
        if message.appointment != self.room.appointment:
            raise ProtocolError("unknown_room", "use the dashboard for other appointments", ref=message.type)
        run_command(self.waiting_room, staffer, message)

    def _touch(self) -> None:
        now = time.monotonic()
        if now - self.last_touch > IDLE_SECONDS and self.room is not None:
            self.last_touch = now
            self.waiting_room.touch(self.room, self.identity.member_id)

    def on_idle(self) -> None:
        if not self.greeted or self.room is None:
            return
        self._touch()
        pass_ = self.identity.participant_pass
        if pass_ is None:
            return
        # The pass's own expiry costs nothing to check; whether the appointment was cancelled or
        # deleted needs the database, which thousands of idle sockets must not ask every few seconds.
        now = time.monotonic()
        expired = pass_.expires_at <= self.state.clock.now().timestamp()
        if not expired and now - self.last_pass_check < PASS_CHECK_SECONDS:
            return
        self.last_pass_check = now
        if expired or not self.state.check_in.pass_is_valid(pass_):
            self.send(ProtocolError("expired", "this invitation is no longer valid").as_message())
            self.close(1008, "expired")

    def on_event(self, body: dict[str, Any]) -> None:
        kind = body.get("type")
        me = self.identity.member_id
        if kind == "admitted":
            self.member_state = MemberState.ADMITTED
            self.peers = {p["id"] for p in body.get("peers", [])}
        elif kind in {"peer-joined", "peer-left", "peer-offline"}:
            peer = body["peer"]["id"] if kind == "peer-joined" else body["peer"]
            if peer == me or self.member_state != MemberState.ADMITTED:
                return  # people in the waiting room do not learn who else is there
            if kind == "peer-joined":
                self.peers.add(peer)
            elif kind == "peer-left":
                self.peers.discard(peer)
        elif kind == "replaced":
            self.replaced = True
            self.send(ProtocolError("replaced", "you joined from another window", close=True).as_message())
            self.close(1000, "replaced")
            return
        self.send_json(body)
        if kind in {"ended", "declined"}:
            self.left = True  # nothing to announce: the room is closed, or the person was sent away
            self.close(1000, kind)

    def on_close(self) -> None:
        # A revocation removed the member already, except a signed-out practitioner, who may come back;
        # removing again catches an arrival that raced the revocation.
        removed = self.revoked is not None and self.revoked.reason is not Reason.SIGNED_OUT
        if removed and self.greeted and self.room is not None:
            self.waiting_room.presence.remove(self.room.appointment, self.identity.member_id)
        elif self.greeted and not self.left and not self.replaced and self.room is not None:
            self.waiting_room.went_offline(self.room, self.identity.member_id, self.id)

    def reannounce(self) -> None:
        if not self.greeted or self.closing.is_set() or self.room is None or self.member is None:
            return
        room, member = self.room, self.member

        def write_again() -> None:
            current = self.waiting_room.presence.get(room.appointment, member.id)
            if current is None:
                self.waiting_room.presence.open_room(room)
                self.waiting_room.restore(room, replace_member(member, self.member_state))
            if self.identity.check_in is not None:
                self.state.check_in.hold_again(self.identity.check_in)

        self._in_app(write_again)


# --- the dashboard: practitioners and staff -----------------------------------------------------------


class PracticeConnection(Connection):
    def __init__(self, ws: Any, app: Flask, state: SocketServices, staffer: Staffer) -> None:
        super().__init__(ws, app, state)
        self.staffer = staffer
        self.claims = staffer_claims(staffer, self.opened)

    def reannounce(self) -> None:
        if self.greeted and not self.closing.is_set():
            self._in_app(
                lambda: self.send_json({"type": "queue", "rooms": self.state.waiting_room.queue_for(self.staffer)})
            )

    def on_message(self, message: Incoming) -> None:
        if isinstance(message, Hello):
            if self.greeted:
                raise ProtocolError("already_joined", "hello was already sent")
            self.refuse_if_revoked()
            self.greeted = True
            if self.staffer.role is Role.PRACTITIONER:
                self.subscribe(practitioner_topic(self.staffer.public_id))
            else:
                self.subscribe(organisation_topic(self.staffer.organisation_id))
            self.send_json({"type": "queue", "rooms": self.state.waiting_room.queue_for(self.staffer)})
        elif isinstance(message, Ping):
            self.send_json({"type": "pong", "t": message.t})
        elif isinstance(message, Admit | Decline | Notice | End | Handover):
            run_command(self.state.waiting_room, self.staffer, message)
        else:
            raise ProtocolError("not_allowed", "the dashboard does not relay media signalling", ref=message.type)


def staffer_claims(staffer: Staffer, opened: float) -> tuple[Claim, ...]:
    """A person who signs in: ``opened`` is when the socket opened (an organisation may start again later)."""
    claims = [Claim(practitioner_scope(staffer.public_id)), Claim(organisation_scope(staffer.organisation_id), opened)]
    if staffer.signed_in_at is not None:
        claims.append(Claim(sessions_scope(staffer.public_id), since=staffer.signed_in_at))
    return tuple(claims)


def room_claims(identity: RoomIdentity, room: Room | None, opened: float) -> tuple[Claim, ...]:
    """What a room socket depends on; probes (no appointment) depend on nothing revocable."""
    if identity.role is MemberRole.PROBE or room is None:
        return ()
    claims = [Claim(appointment_scope(room.appointment)), Claim(organisation_scope(room.organisation), opened)]
    if identity.participant_pass is not None:
        invitation = identity.participant_pass.invitation
        claims += [Claim(invitation_scope(invitation)), Claim(member_scope(identity.member_id))]
    if identity.staffer is not None:
        claims += staffer_claims(identity.staffer, opened)
    return tuple(dict.fromkeys(claims))


def replace_member(member: Member, state: str) -> Member:
    from dataclasses import replace

    return replace(member, state=state)


def run_command(waiting_room: Any, staffer: Staffer, message: Admit | Decline | Notice | End | Handover) -> None:
    if isinstance(message, Admit):
        waiting_room.admit(staffer, message.appointment, message.participant)
    elif isinstance(message, Decline):
        waiting_room.decline(staffer, message.appointment, message.participant)
    elif isinstance(message, Notice):
        waiting_room.notice(staffer, message.appointment, message.text)
    elif isinstance(message, End):
        waiting_room.end(staffer, message.appointment)
    else:
        waiting_room.handover(staffer, message.appointment, message.practitioner)
