"""What a signalling session's actions ask of the app's services, done the same way by both transports.

Transports write and close sockets and subscribe to the bus themselves (``Send``, ``Close``,
``Subscribe``); every other action reaches the database, presence or the bus and is performed
here, blocking, inside the app's context. What comes of it is handed back as the session call
that reports it (for example ``joined``), which the transport makes under its own rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from ..adapters.steps import Steps, drive
from ..domain.dashboard_session import DashboardSession
from ..domain.entrance import JoinRequest
from ..domain.revocation import Reason, Revocation
from ..domain.room_session import RoomSession
from ..domain.socket_actions import (
    Action,
    CheckPass,
    Command,
    EnsureNotRevoked,
    Forget,
    Goodbye,
    GrantRelay,
    Join,
    Leave,
    LoadQueue,
    Relay,
    Touch,
)

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from ..adapters.bus import Bus
    from ..core.clock import Clock
    from ..core.config import Settings
    from ..domain.check_in import CheckIn
    from ..domain.entrance import Entrance
    from ..domain.waiting_room import WaitingRoom

Session = RoomSession | DashboardSession
#: The session call that reports an action's outcome; None when there is nothing to report.
Report = Callable[[Session], list[Action]] | None


class SocketServices(Protocol):
    """What sockets need of the app's services (the app's ``VCState`` provides them)."""

    settings: Settings
    clock: Clock
    bus: Bus
    db: SQLAlchemy
    check_in: CheckIn
    waiting_room: WaitingRoom

    @property
    def entrance(self) -> Entrance: ...


class Performer:
    def __init__(self, services: SocketServices, monotonic: Callable[[], float]) -> None:
        self._services = services
        self._monotonic = monotonic

    def perform(self, action: Action, session: Session, connection: str) -> Report:
        """Raises :class:`~vc_plugin.domain.signaling.ProtocolError` for a refused command."""
        services = self._services
        if isinstance(action, Command):
            services.waiting_room.command(action.staffer, action.message)
            return None
        if isinstance(action, EnsureNotRevoked):
            return self._revoked(session)
        if isinstance(action, LoadQueue):
            assert isinstance(session, DashboardSession)
            staffer = session.staffer
            rooms = services.waiting_room.queue_for(staffer)
            late = services.waiting_room.announced_delay(staffer)
            return lambda s: s.queue_loaded(rooms, late)  # type: ignore[union-attr]
        assert isinstance(session, RoomSession)
        return self._in_room(action, session, connection)

    def _in_room(self, action: Action, session: RoomSession, connection: str) -> Report:
        services, room, me = self._services, session.room, session.identity.member_id
        assert room is not None
        if isinstance(action, Join):
            return drive(self.joining(action, session, connection))
        if isinstance(action, Relay):
            delivered = self.relay(action, session)
            now = self._monotonic()
            return lambda s: s.relay_result(action, delivered, now)  # type: ignore[union-attr]
        if isinstance(action, GrantRelay):
            revoked = self._revoked(session)
            if revoked is not None:
                return revoked
            pass_ = session.identity.participant_pass
            if action.record_consent and pass_ is not None:
                services.check_in.record_relay_consent(pass_.invitation, pass_.language)
            at = services.clock.now()
            return lambda s: s.relay_granted(at)  # type: ignore[union-attr]
        if isinstance(action, CheckPass):
            pass_ = session.identity.participant_pass
            valid = pass_ is not None and services.check_in.pass_is_valid(pass_)
            return lambda s: s.pass_checked(valid)  # type: ignore[union-attr]
        if isinstance(action, Leave):
            services.waiting_room.leave(room, me)
        elif isinstance(action, Touch):
            services.waiting_room.touch(room, me)
        elif isinstance(action, Forget):
            if action.goodbye is Goodbye.REMOVE:
                services.waiting_room.presence.remove(room.appointment, me)
            else:
                services.waiting_room.went_offline(room, me, connection)
        return None

    def joining(self, action: Join, session: RoomSession, connection: str) -> Steps[Report]:
        """``hello``'s arrival as steps (:mod:`vc_plugin.adapters.steps`): the signalling server's loop
        takes them without a thread."""
        room, pass_ = session.room, session.identity.participant_pass
        assert room is not None
        request = JoinRequest(room, action.member, action.resume, connection, session.claims, pass_)
        outcome = yield from self._services.entrance.joining(request)
        at = self._services.clock.now()
        return lambda s: s.joined(outcome, at)  # type: ignore[union-attr]

    def write_again(self, session: RoomSession) -> None:
        """After Redis lost presence: this member (and its room) as the session knows them, and its check-in."""
        restorable = session.restorable()
        if restorable is None:
            return
        room, member = restorable
        waiting_room = self._services.waiting_room
        if waiting_room.presence.get(room.appointment, member.id) is None:
            waiting_room.presence.open_room(room)
            waiting_room.restore(room, member)
        if session.identity.check_in is not None:  # named as the member was (a ticket's check-in has no name)
            self._services.check_in.hold_again(replace(session.identity.check_in, name=member.name))

    def relay(self, action: Relay, session: RoomSession) -> bool:
        """Over the bus, unless the sender or the receiver was revoked (checked in the same step)."""
        waiting_room, room = self._services.waiting_room, session.room
        assert room is not None
        if action.verify and not waiting_room.is_admitted(room.appointment, action.to):
            return False
        return waiting_room.relay(room.appointment, action.to, action.text, session.claims)

    def _revoked(self, session: Session) -> Report:
        """A revocation that came before this socket could hear it (between handshake and hello)."""
        reason = self._services.waiting_room.revoked_reason(session.claims)
        if reason is None:
            return None
        revocation = Revocation((), self._services.clock.now().timestamp(), Reason(reason))
        return lambda s: s.revoke(revocation)
