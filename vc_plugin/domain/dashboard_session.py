"""A practitioner's or staff member's dashboard socket, as a state machine without I/O.

It hears the queue of the practitioner's rooms (staff: the organisation's) and sends the
waiting-room commands; it never relays media signalling. Queue events are forwarded as the bus
brought them, without being read.
"""

from __future__ import annotations

from datetime import datetime

from ..core.config import Settings
from ..core.models import Role
from .room_session import staffer_claims
from .server_messages import Pong, Queue, RoomView
from .signaling import (
    Admit,
    Decline,
    End,
    Handover,
    Hello,
    Incoming,
    Notice,
    Ping,
    ProtocolError,
    RunningLate,
    SendBack,
)
from .socket_actions import Action, Command, EnsureNotRevoked, LoadQueue, Send, Subscribe
from .socket_session import SocketSession
from .topics import organisation_topic, practitioner_topic
from .waiting_room import Staffer


class DashboardSession(SocketSession):
    __slots__ = ("_greeted", "staffer")

    def __init__(self, settings: Settings, staffer: Staffer, *, opened: float, now: float) -> None:
        super().__init__(settings, staffer_claims(staffer, opened), now)
        self.staffer = staffer
        self._greeted = False

    @property
    def greeted(self) -> bool:
        return self._greeted

    def on_message(self, message: Incoming, now: float, at: datetime) -> list[Action]:
        if isinstance(message, Hello):
            if self._greeted:
                raise ProtocolError("already_joined", "hello was already sent")
            self._greeted = True
            staffer = self.staffer
            if staffer.role is Role.PRACTITIONER:
                topic = practitioner_topic(staffer.public_id)
            else:
                topic = organisation_topic(staffer.organisation_id)
            return [EnsureNotRevoked(), Subscribe((topic,)), LoadQueue()]
        if isinstance(message, Ping):
            return [self.say(Pong(t=message.t))]
        if isinstance(message, Admit | Decline | SendBack | Notice | End | Handover | RunningLate):
            return [Command(self.staffer, message)]
        raise ProtocolError("not_allowed", "the dashboard does not relay media signalling", ref=message.type)

    def queue_loaded(self, rooms: list[RoomView], running_late: int | None = None) -> list[Action]:
        if self.closed:
            return []
        return [self.say(Queue(rooms=rooms) if running_late is None else Queue(rooms=rooms, running_late=running_late))]

    def event(self, text: str) -> list[Action]:
        """Queue events are forwarded as they are; dashboards receive no relayed signalling."""
        if self.closed or text[:1] != "E":
            return []
        return [Send(text[1:])]

    def socket_closed(self) -> list[Action]:
        return []
