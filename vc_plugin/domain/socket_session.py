"""What every signalling socket shares, without I/O: rate limits, parsing, errors and revocation.

Sessions are fed events by a transport (``receive``, ``event``, ``idle``, ``revoke``, ``closed``
and the answers to the actions they asked for) and answer with actions (:mod:`.socket_actions`).
They hold no socket, thread, database or Redis handle, so the same rules run under flask-sock and
under the asyncio server, and tests drive them with plain calls.
"""

from __future__ import annotations

import enum
from datetime import datetime

from ..core.config import Settings
from .revocation import CLOSE_CODE as REVOKED_CLOSE_CODE
from .revocation import Claim, Revocation
from .server_messages import ServerMessage, encode
from .signaling import Hello, Incoming, Ping, ProtocolError, parse
from .socket_actions import Action, Close, Send

STRIKES_BEFORE_CLOSE = 3


class Ending(enum.Enum):
    """Why a session closed; decides what it leaves behind."""

    LEFT = "left"  # said "leave"
    DECLINED = "declined"  # sent away by the practitioner
    ENDED = "ended"  # the consultation ended for everyone
    HANDED_OVER = "handed-over"  # the practitioner handed the appointment to a colleague and left the room
    REPLACED = "replaced"  # the same member connected again elsewhere
    REVOKED = "revoked"  # see :mod:`.revocation`
    EXPIRED = "expired"  # the participant's pass no longer holds
    REFUSED = "refused"  # a protocol error that closes (too large, unknown room, …)
    FLOODING = "flooding"  # far over the rate limit
    GONE = "gone"  # the socket closed from the other side


class TokenBucket:
    """``rate`` messages per second on average, ``burst`` at once; time is handed in."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.capacity = rate, float(burst)
        self.tokens, self.stamp = float(burst), now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class SocketSession:
    """The protocol's shared rules; subclasses speak for a role.

    ``now`` arguments are monotonic seconds (rate limits, idle timers); wall time comes from the
    caller's clock where a message needs it.
    """

    #: Thousands of sessions live at once in the signalling server: no ``__dict__`` each.
    __slots__ = ("bucket", "claims", "ending", "revocation", "settings", "strikes")

    def __init__(self, settings: Settings, claims: tuple[Claim, ...], now: float) -> None:
        self.settings = settings
        self.claims = claims
        self.bucket = TokenBucket(settings.ws_messages_per_second, settings.ws_burst, now)
        self.strikes = 0
        self.ending: Ending | None = None
        self.revocation: Revocation | None = None

    @property
    def closed(self) -> bool:
        return self.ending is not None

    @property
    def greeted(self) -> bool:
        raise NotImplementedError

    # --- events --------------------------------------------------------------------------------------
    def receive(self, raw: str | bytes, now: float, at: datetime) -> list[Action]:
        """One frame from the client (``now`` monotonic seconds, ``at`` wall time)."""
        if self.closed:
            return []  # read before the close (or the revocation): dropped, never acted on
        if not self.bucket.take(now):
            self.strikes += 1
            actions: list[Action] = [self.say_error(ProtocolError("rate_limited", "too many messages; slow down"))]
            if self.strikes >= STRIKES_BEFORE_CLOSE * self.settings.ws_burst:
                actions += self.close(1008, "flooding", Ending.FLOODING)
            return actions
        try:
            message = parse(raw, self.settings.ws_max_message_bytes)
            if not self.greeted and not isinstance(message, Hello | Ping):
                raise ProtocolError("hello_first", "send hello first")
            return self.on_message(message, now, at)
        except ProtocolError as error:
            return self.failed(error)

    def failed(self, error: ProtocolError) -> list[Action]:
        """A message could not be acted on: tell the client why; some errors close the socket."""
        if self.closed:
            return []
        actions: list[Action] = [self.say_error(error)]
        if error.close:
            actions += self.close(1008, error.code, Ending.REFUSED)
        return actions

    def revoke(self, revocation: Revocation) -> list[Action]:
        """The final word: say why, then close; nothing is read or forwarded from now on."""
        if self.closed:
            return []
        self.revocation = revocation
        return [self.say(revocation.final_message()), *self.close(REVOKED_CLOSE_CODE, "revoked", Ending.REVOKED)]

    # --- for subclasses ------------------------------------------------------------------------------
    def on_message(self, message: Incoming, now: float, at: datetime) -> list[Action]:
        raise NotImplementedError

    def close(self, code: int, reason: str, ending: Ending, *, flush: bool = True) -> list[Action]:
        self.ending = ending
        return [Close(code, reason, flush)]

    @staticmethod
    def say(message: ServerMessage) -> Send:
        return Send(encode(message))

    @staticmethod
    def say_error(error: ProtocolError) -> Send:
        return Send(error.as_message())
