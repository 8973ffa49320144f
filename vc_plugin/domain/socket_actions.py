"""What a signalling session asks its transport to do: the "actions out" of the sans-IO core.

A session (:mod:`.room_session`, :mod:`.dashboard_session`) never does I/O. It answers each event
with a list of these actions; the transport performs them in order and reports what came of the
ones that ask something (``Join``, ``Relay``, ``GrantRelay``, ``CheckPass``, ``EnsureNotRevoked``,
``LoadQueue``) by calling the session back. Once a session is closed, a transport performs only
``Send`` and ``Close`` (the final words), and the rest of the list is dropped.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..adapters.presence import Member
from .signaling import StaffCommand
from .waiting_room import Staffer


@dataclass(frozen=True, slots=True)
class Send:
    """Write one text frame (already encoded JSON)."""

    text: str


@dataclass(frozen=True, slots=True)
class Close:
    """Close the socket; with ``flush``, after what is queued has been written."""

    code: int
    reason: str
    flush: bool = True


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Hear these bus topics from now on (until the socket closes)."""

    topics: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Join:
    """Enter the waiting room as ``member`` (:class:`~.entrance.Entrance`); report with ``joined``."""

    member: Member
    resume: str | None


@dataclass(frozen=True, slots=True)
class Relay:
    """Forward ``text`` to one peer; ``verify`` asks presence first (news of the peer may be on its way).

    Report with ``relay_result``."""

    to: str
    kind: str
    text: str
    verify: bool


@dataclass(frozen=True, slots=True)
class GrantRelay:
    """Ask whether this socket was revoked, record the consent if asked, then ``relay_granted``."""

    record_consent: bool


@dataclass(frozen=True, slots=True)
class Leave:
    """The member leaves for good: out of presence, the others are told."""


@dataclass(frozen=True, slots=True)
class Command:
    """A practitioner's or staff member's command for the waiting room; errors come back as ``failed``."""

    staffer: Staffer
    message: StaffCommand


@dataclass(frozen=True, slots=True)
class Touch:
    """Presence hears that this member is still there."""


@dataclass(frozen=True, slots=True)
class CheckPass:
    """Ask whether the participant's appointment and invitation still stand; report with ``pass_checked``."""


@dataclass(frozen=True, slots=True)
class EnsureNotRevoked:
    """Ask whether a revocation came before this socket could hear it; if so, call ``revoke``."""


@dataclass(frozen=True, slots=True)
class LoadQueue:
    """Read the dashboard's queue; report with ``queue_loaded``."""


class Goodbye(enum.Enum):
    """What a closed room socket leaves behind."""

    REMOVE = "remove"  # revoked: out of presence, the others are told
    OFFLINE = "offline"  # gone without leaving: the place is kept for a while


@dataclass(frozen=True, slots=True)
class Forget:
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
