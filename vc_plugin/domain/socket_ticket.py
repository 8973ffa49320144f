"""Socket tickets: what the app's checks decided about a socket, sealed for the socket's handshake.

A page asks the app for a ticket right before it opens its signalling socket. That is an ordinary
request: the host's own before-request rules, the join limit, the session cookie or participant
pass and the database are asked there, once. The ticket carries the outcome (who joins which room,
or whose dashboard, but no patient's name), sealed with a key derived from the master key
(AES-GCM: nothing in it is readable or can be changed), names the one socket it opens, and
lives ``TICKET_SECONDS``. The signalling server opens it without Flask, the database or Redis,
which is what makes its connects cheap (docs/signaling.md, "Socket tickets").

What a ticket does not carry is a promise that nothing changed since: the socket's claims date from
the ticket (``issued_at``), so a revocation after it, published or left as a tombstone, still reaches
the socket, and ``hello`` asks the tombstones before anyone is let in (domain/revocation.py).
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

import msgspec

from ..adapters.presence import Room
from ..core.crypto import DecryptionError, MasterKeyring
from .room_session import RoomIdentity
from .waiting_room import Staffer

PURPOSE = "vc-socket-ticket"
#: Long enough for a slow network between the ticket and the handshake; short enough that a ticket
#: seen in a proxy's access log (it travels in the socket's query string) is worthless.
TICKET_SECONDS = 30.0
#: Tickets remembered as used, per process: a ticket opens one socket.
SPENT_LIMIT = 100_000


class TicketRefused(ValueError):
    """Forged, expired, already used, or for another socket: the handshake is answered 401."""


@dataclass(frozen=True, slots=True)
class RoomGrant:
    """A room socket: who joins, and the room as the app found (or opened) it."""

    identity: RoomIdentity
    room: Room | None


@dataclass(frozen=True, slots=True)
class SocketTicket:
    """What a ticket holds, sealed as it is: a room's grant or a dashboard's staffer."""

    #: The socket it opens: ``room:<appointment>`` or ``practice``.
    socket: str
    issued_at: float
    expires_at: float
    nonce: str
    room: RoomGrant | None = None
    staffer: Staffer | None = None


def socket_of_room(appointment: str) -> str:
    return f"room:{appointment}"


PRACTICE_SOCKET = "practice"


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(SocketTicket).decode


def _without_names(grant: RoomGrant) -> RoomGrant:
    """A ticket travels in a URL, and URLs end up in access logs: it holds no patient's name, sealed
    or not. Who else is present is asked at ``hello``; so is the participant's own name, from the
    check-in (``Entrance.join``), the one place names live."""
    identity, room = grant.identity, grant.room
    if identity.participant_pass is not None:
        check_in = replace(identity.check_in, name="") if identity.check_in is not None else None
        identity = replace(identity, name="", check_in=check_in)
    return RoomGrant(identity, replace(room, members=()) if room is not None else None)


class SocketTickets:
    """Issues tickets (the app) and takes them at a handshake (either transport)."""

    def __init__(self, keyring: MasterKeyring) -> None:
        self._keyring = keyring
        self._spent: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()  # the app's own server takes tickets in many threads

    def issue(self, socket: str, grant: RoomGrant | Staffer, now: float) -> str:
        room = _without_names(grant) if isinstance(grant, RoomGrant) else None
        sealed = SocketTicket(
            socket=socket,
            issued_at=now,
            expires_at=now + TICKET_SECONDS,
            nonce=secrets.token_urlsafe(12),
            room=room,
            staffer=grant if isinstance(grant, Staffer) else None,
        )
        return self._keyring.seal_for(PURPOSE, _encode(sealed))

    def take(self, token: str, socket: str, now: float) -> SocketTicket:
        """The ticket for ``socket``, spent; raises :class:`TicketRefused`."""
        try:
            ticket = _decode(self._keyring.open_for(PURPOSE, token))
        except (DecryptionError, KeyError, ValueError, msgspec.DecodeError):
            raise TicketRefused("This ticket is not one of ours.") from None
        if ticket.socket != socket or (ticket.room or ticket.staffer) is None:
            raise TicketRefused("This ticket is for another socket.")
        if not ticket.issued_at <= now < ticket.expires_at:
            raise TicketRefused("This ticket has expired.")
        if not self._spend(ticket.nonce, ticket.expires_at, now):
            raise TicketRefused("This ticket was used already.")
        return ticket

    def _spend(self, nonce: str, expires_at: float, now: float) -> bool:
        """True the first time this process sees ``nonce``; the oldest are forgotten once expired."""
        spent = self._spent
        with self._lock:
            while spent:
                _oldest, expiry = next(iter(spent.items()))
                if expiry > now and len(spent) < SPENT_LIMIT:
                    break
                spent.popitem(last=False)
            if nonce in spent:
                return False
            spent[nonce] = expires_at
            return True
