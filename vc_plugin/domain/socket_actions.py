"""What a signalling session asks its transport to do: the "actions out" of the sans-IO core.

A session (:mod:`.room_session`, :mod:`.dashboard_session`) never does I/O. It answers each event
with a list of these actions; the transport performs them in order and reports what came of the
ones that ask something (``Join``, ``Relay``, ``GrantRelay``, ``CheckPass``, ``EnsureNotRevoked``,
``LoadQueue``) by calling the session back. Once a session is closed, a transport performs only
``Send`` and ``Close`` (the final words), and the rest of the list is dropped.
"""

from __future__ import annotations

import enum

import msgspec

from ..adapters.presence import Member
from .signaling import StaffCommand
from .waiting_room import Staffer


class _Action(msgspec.Struct, frozen=True):
    """Immutable, compared by value, and built in C: a relayed message makes two of them."""


class Send(_Action):
    """Write one text frame (already encoded JSON)."""

    text: str


class Close(_Action):
    """Close the socket; with ``flush``, after what is queued has been written."""

    code: int
    reason: str
    flush: bool = True


class Subscribe(_Action):
    """Hear these bus topics from now on (until the socket closes)."""

    topics: tuple[str, ...]


class Join(_Action):
    """Enter the waiting room as ``member`` (:class:`~.entrance.Entrance`); report with ``joined``."""

    member: Member
    resume: str | None


class Relay(_Action):
    """Forward ``text`` to one peer; ``verify`` asks presence first (news of the peer may be on its way).

    Report with ``relay_result``."""

    to: str
    kind: str
    text: str
    verify: bool


class GrantRelay(_Action):
    """Ask whether this socket was revoked, record the consent if asked, then ``relay_granted``."""

    record_consent: bool


class Leave(_Action):
    """The member leaves for good: out of presence, the others are told."""


class Command(_Action):
    """A practitioner's or staff member's command for the waiting room; errors come back as ``failed``."""

    staffer: Staffer
    message: StaffCommand


class Touch(_Action):
    """Presence hears that this member is still there."""


class CheckPass(_Action):
    """Ask whether the participant's appointment and invitation still stand; report with ``pass_checked``."""


class EnsureNotRevoked(_Action):
    """Ask whether a revocation came before this socket could hear it; if so, call ``revoke``."""


class LoadQueue(_Action):
    """Read the dashboard's queue; report with ``queue_loaded``."""


class Goodbye(enum.Enum):
    """What a closed room socket leaves behind."""

    REMOVE = "remove"  # revoked: out of presence, the others are told
    OFFLINE = "offline"  # gone without leaving: the place is kept for a while


class Forget(_Action):
    """After the socket closed: take the member out of presence, or mark them offline."""

    goodbye: Goodbye


Action = (
    Send
    | Close
    | Subscribe
    | Join
    | Relay
    | GrantRelay
    | Leave
    | Command
    | Touch
    | CheckPass
    | EnsureNotRevoked
    | LoadQueue
    | Forget
)
