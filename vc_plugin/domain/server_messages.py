"""What the server says to clients: one typed message per ``type`` (``docs/signaling.md``).

Messages are msgspec structs tagged by their ``type``. They are encoded straight to JSON (no dict in
between) and room sockets decode bus events back into the same types, so every field name is spelt
in one place. Fields left ``UNSET`` are not sent at all; ``None`` is sent as ``null``.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from ..adapters.presence import Member, MemberRole, MemberState, Room


class ServerMessage(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", omit_defaults=True):
    """One JSON object with a ``type``, sent to a client or published for the sockets to forward."""


# --- people and rooms as clients see them ----------------------------------------------------------------


class Peer(msgspec.Struct, frozen=True):
    """Someone in the call, as the others see them."""

    id: str
    role: MemberRole
    name: str
    kind: str
    since: float

    @classmethod
    def of(cls, member: Member) -> Peer:
        return cls(member.id, member.role, member.name, member.kind, member.since)


class ListedMember(msgspec.Struct, frozen=True):
    """Someone in a waiting room, as dashboards list them: also the state and whether a socket speaks for them."""

    id: str
    role: MemberRole
    name: str
    kind: str
    since: float
    state: MemberState
    offline: bool
    camera: bool | None = None  # what the device check found; None: not told
    microphone: bool | None = None

    @classmethod
    def of(cls, member: Member) -> ListedMember:
        return cls(
            member.id,
            member.role,
            member.name,
            member.kind,
            member.since,
            member.state,
            not member.connection,
            member.camera,
            member.microphone,
        )


class RoomView(msgspec.Struct, frozen=True):
    """A waiting room on a dashboard."""

    appointment: str
    practitioner: str
    practitioner_name: str
    starts_at: float
    ends_at: float
    notice: str | None
    members: list[ListedMember]


class AppointmentView(msgspec.Struct, frozen=True):
    """The appointment as a room socket's ``welcome`` describes it."""

    id: str
    starts_at: float
    ends_at: float
    practitioner_name: str
    relay_only: bool
    kind: str

    @classmethod
    def of(cls, room: Room, practitioner_name: str) -> AppointmentView:
        return cls(room.appointment, room.starts_at, room.ends_at, practitioner_name, room.relay_only, room.kind)


class You(msgspec.Struct, frozen=True):
    id: str
    role: MemberRole
    name: str
    kind: str


# --- answers to one socket -------------------------------------------------------------------------------


class Welcome(ServerMessage, tag="welcome"):
    you: You
    appointment: AppointmentView
    state: MemberState
    position: int
    peers: list[Peer]
    resume: str
    notice: str | None
    ice_servers: list[dict[str, Any]] = msgspec.field(name="iceServers")
    ice_transport_policy: str = msgspec.field(name="iceTransportPolicy")
    relay_available: bool = msgspec.field(name="relayAvailable")
    max_message_bytes: int = msgspec.field(name="maxMessageBytes")
    file_max_bytes: int = msgspec.field(name="fileMaxBytes")
    #: Waiting only: seconds until the probable start (see ``waiting_time``), the announced delay.
    expected_in: int | UnsetType = UNSET
    late_minutes: int | UnsetType = UNSET
    #: Waiting again after ``sent-back``: the practitioner who asked (the page repeats it after a reload).
    asked_to_wait_by: str | UnsetType = UNSET


class Pong(ServerMessage, tag="pong"):
    t: float | None


class Left(ServerMessage, tag="left"):
    """The answer to ``leave``, just before the socket closes."""


class RelayServers(ServerMessage, tag="relay"):
    """The relay's credentials, only after the participant agreed to use it."""

    ice_servers: list[dict[str, Any]] = msgspec.field(name="iceServers")


class Error(ServerMessage, tag="error"):
    code: str
    message: str
    ref: str | UnsetType = UNSET


class Revoked(ServerMessage, tag="revoked"):
    """The final word before close code 4001 (``docs/security.md``)."""

    reason: str


class Queue(ServerMessage, tag="queue"):
    """A dashboard's whole queue: on ``hello`` and after the bus came back."""

    rooms: list[RoomView]
    running_late: int | UnsetType = UNSET  # a practitioner's own announced delay, in minutes


# --- events: published on the bus, forwarded by the sockets that hear them --------------------------------


class Admitted(ServerMessage, tag="admitted"):
    peers: list[Peer]


class PeerJoined(ServerMessage, tag="peer-joined"):
    peer: Peer


class PeerLeft(ServerMessage, tag="peer-left"):
    peer: str


class PeerOffline(ServerMessage, tag="peer-offline"):
    peer: str


class Replaced(ServerMessage, tag="replaced"):
    """The same member connected again elsewhere: the socket ``connection`` closes.

    Said on the member's channel, which the newer socket hears too; it is not the one meant.
    """

    connection: str = ""


class Ended(ServerMessage, tag="ended"):
    """The practitioner ended the consultation for everyone."""


class Declined(ServerMessage, tag="declined"):
    """The practitioner sent this person away."""


class SentBack(ServerMessage, tag="sent-back"):
    """The practitioner asked this person to wait in the waiting room again; their calls end."""

    practitioner_name: str
    position: int


class RoomNotice(ServerMessage, tag="notice"):
    text: str | None


class HandedOver(ServerMessage, tag="handed-over"):
    practitioner_name: str


class Schedule(ServerMessage, tag="schedule"):
    """A new estimate for those waiting: the practitioner announced a delay, or an earlier consultation ended."""

    expected_in: int
    late_minutes: int


class RunningLate(ServerMessage, tag="running-late"):
    """To the practitioner's dashboards: the delay now shown in the waiting rooms."""

    minutes: int


class QueueOp(enum.StrEnum):
    ARRIVED = "arrived"
    IN_CALL = "in-call"
    ADMITTED = "admitted"
    SENT_BACK = "sent-back"  # from the call back to the waiting room
    OFFLINE = "offline"
    LEFT = "left"
    NOTICE = "notice"
    ENDED = "ended"
    HANDOVER = "handover"


class QueueUpdate(ServerMessage, tag="queue-update"):
    """One change of a dashboard's queue; which fields come with it depends on ``op``."""

    op: QueueOp
    appointment: str
    member: ListedMember | UnsetType = UNSET
    member_id: str | UnsetType = UNSET
    room: RoomView | UnsetType = UNSET
    text: str | UnsetType | None = UNSET
    practitioner: str | UnsetType = UNSET
    practitioner_name: str | UnsetType = UNSET


#: What a room socket hears on the bus (dashboards forward their events without reading them).
RoomEvent = (
    Admitted
    | PeerJoined
    | PeerLeft
    | PeerOffline
    | Replaced
    | Ended
    | Declined
    | SentBack
    | RoomNotice
    | HandedOver
    | Schedule
)

_encoder = msgspec.json.Encoder()
_room_events = msgspec.json.Decoder(RoomEvent)


def encode(message: ServerMessage) -> str:
    return _encoder.encode(message).decode()


def decode_room_event(text: str) -> RoomEvent:
    """Raises ``msgspec.ValidationError`` (or ``DecodeError``) for anything that is not a room event."""
    return _room_events.decode(text)
