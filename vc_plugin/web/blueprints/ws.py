"""WebSocket endpoints (flask-sock). Origin and identity are checked before the upgrade.

A handshake from a foreign ``Origin``, without a valid session, or by staff for a call is
answered with a plain HTTP error and never becomes a socket. Our pages bring a socket ticket
(``?ticket=``, from :mod:`.socket_tickets`): then the checks ran when it was issued, and the
handshake only takes it (both servers alike); without one, the session cookie or pass decides here.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, request
from flask_sock import Sock

from ...adapters.presence import MemberRole, Room
from ...core.config import Settings
from ...core.models import Appointment, Practitioner
from ...domain.access import CallRefusal, call_refusal
from ...domain.dashboard_session import DashboardSession
from ...domain.probe_rooms import probe_member
from ...domain.room_session import RoomIdentity, RoomSession
from ...domain.socket_ticket import PRACTICE_SOCKET, SocketTicket, TicketRefused, socket_of_room
from ...domain.waiting_room import Staffer
from ..bearer import bearer_token
from ..identity import current_pass, current_practitioner, session_started_at
from ..ratelimits import join_allowed
from ..sockets import Connection
from ..state import vc_state

bp = Blueprint("ws", __name__, url_prefix="/ws")
sock = Sock()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins(settings: Settings, host_url: str) -> set[str]:
    """The public URL's origin (else the one the request came in on), and any others configured."""
    origins = {_origin(o) for o in settings.allowed_origins}
    origins.add(_origin(settings.public_url) if settings.public_url else _origin(host_url))
    return origins


def origin_allowed(origin: str | None, origins: set[str]) -> bool:
    """``origin`` (a handshake's ``Origin`` header) is one of ``allowed_origins``."""
    return origin is not None and _origin(origin) in origins


def ticket_socket(endpoint: str | None, view_args: dict[str, object] | None) -> str | None:
    """What a ticket for this socket endpoint names (None: probes, which bring their bearer token)."""
    if endpoint == "vc.ws.room_socket" and view_args is not None:
        return socket_of_room(str(view_args["appointment_id"]))
    if endpoint == "vc.ws.practice_socket":
        return PRACTICE_SOCKET
    return None


@bp.before_request
def take_ticket() -> None:
    """First, and without the database: a ticket decides the socket (a bad one is refused at once)."""
    token = request.args.get("ticket")
    if token is None:
        return
    socket = ticket_socket(request.endpoint, request.view_args)
    if socket is None:
        abort(401, description="This socket takes no ticket.")
    state = vc_state()
    try:
        g.vc_ticket = state.socket_tickets.take(token, socket, state.clock.now().timestamp())
    except TicketRefused as refused:
        abort(401, description=str(refused))


@bp.before_request
def limit_joins() -> None:
    """Handshakes per client are limited before anything else is looked at (a ticket was counted when issued)."""
    if "vc_ticket" not in g and not join_allowed():
        abort(429, description="Too many connection attempts; try again in a minute.")


@bp.before_request
def check_origin() -> None:
    if not origin_allowed(request.headers.get("Origin"), allowed_origins(vc_state().settings, request.host_url)):
        abort(403, description="WebSocket from a foreign origin.")


def staffer_of(person: Practitioner) -> Staffer:
    return Staffer.of(person, signed_in_at=session_started_at())


def room_identity(appointment_id: str) -> tuple[RoomIdentity, Appointment]:
    """One database query: the pass's invitation with its appointment, or the appointment alone."""
    state = vc_state()
    participant_pass = current_pass()
    if participant_pass is not None and participant_pass.appointment == appointment_id:
        invitation = state.appointments.invitation_by_public_id(participant_pass.invitation)
        record = state.check_in.valid_record(participant_pass, invitation) if invitation is not None else None
        if invitation is None or record is None or invitation.appointment.public_id != appointment_id:
            abort(410, description="This invitation is no longer valid.")
        appointment = invitation.appointment
        return RoomIdentity(
            appointment=appointment_id,
            member_id=participant_pass.participant,
            role=MemberRole.PATIENT,
            name=record.name,
            check_in=record,
            kind=participant_pass.kind,
            participant_pass=participant_pass,
            ended_at=_ended_at(appointment),
        ), appointment
    person = current_practitioner()
    if person is None:
        abort(401, description="Check in or sign in first.")
    appointment = state.appointments.find(appointment_id)
    refusal = call_refusal(person, appointment)
    if refusal is CallRefusal.STAFF:
        abort(403, description="Staff organise consultations but never join them.")
    if refusal is not None or appointment is None:
        abort(404, description="No such consultation.")  # a socket does not say whose it is, or that it ended
    return RoomIdentity(
        appointment=appointment_id,
        member_id=person.public_id,
        role=MemberRole.PRACTITIONER,
        name=person.display_name,
        kind="practitioner",
        staffer=staffer_of(person),
        ended_at=_ended_at(appointment),
    ), appointment


def _ended_at(appointment: Appointment) -> float | None:
    """When a reopened appointment was last ended: its sockets claim it since then (domain/revocation.py)."""
    return appointment.ended_at.timestamp() if appointment.ended_at is not None else None


@bp.before_request
def authenticate() -> None:
    if "vc_ticket" in g:
        return
    if request.endpoint == "vc.ws.room_socket":
        g.vc_room = room_identity(request.view_args["appointment_id"])  # type: ignore[index]
    elif request.endpoint == "vc.ws.probe_socket":
        room_id = request.view_args["room"]  # type: ignore[index]
        token = bearer_token()
        member = probe_member(str(current_app.secret_key), token, room_id) if token else None
        room = vc_state().presence.room(room_id) if member else None
        if member is None or room is None:
            abort(401, description="Invalid probe token.")
        g.vc_probe = (
            RoomIdentity(appointment=room_id, member_id=member, role=MemberRole.PROBE, name="probe", kind="probe"),
            room,
        )
    elif request.endpoint == "vc.ws.practice_socket":
        person = current_practitioner()
        if person is None:
            abort(401, description="Sign in first.")
        g.vc_staffer = staffer_of(person)


#: Builds a socket's session from its connection id, the wall time it opened and monotonic now.
SessionFactory = Callable[[str, float, float], RoomSession | DashboardSession]


def session_factory(*, swept: bool = False) -> SessionFactory | None:
    """The session for the socket this request's checks let through (None: not a socket endpoint).

    Both servers use it: the app's own routes below, and ``flask vc signalling-server``."""
    settings = vc_state().settings
    if "vc_ticket" in g:
        return ticket_session_factory(g.vc_ticket, settings, swept=swept)
    if request.endpoint == "vc.ws.room_socket":
        identity, appointment = g.vc_room
        room: Room | None = vc_state().waiting_room.room_for(appointment)
    elif request.endpoint == "vc.ws.probe_socket":
        identity, room = g.vc_probe
    elif request.endpoint == "vc.ws.practice_socket":
        staffer = g.vc_staffer
        return lambda cid, opened, now: DashboardSession(settings, staffer, opened=opened, now=now)
    else:
        return None
    return lambda cid, opened, now: RoomSession(
        settings, identity, room, connection=cid, opened=opened, now=now, swept=swept
    )


def ticket_session_factory(ticket: SocketTicket, settings: Settings, *, swept: bool = False) -> SessionFactory:
    """A ticket's socket. Its claims date from the ticket, when the checks ran: a revocation since
    then is this socket's too, even one that came before the handshake."""
    issued = ticket.issued_at
    staffer = ticket.staffer
    if staffer is not None:
        return lambda cid, _opened, now: DashboardSession(settings, staffer, opened=issued, now=now)
    grant = ticket.room
    assert grant is not None
    identity, room = grant.identity, grant.room
    return lambda cid, _opened, now: RoomSession(
        settings, identity, room, connection=cid, opened=issued, now=now, swept=swept
    )


def _serve(ws: object) -> None:
    state, factory = vc_state(), session_factory()
    assert factory is not None  # the routes below are socket endpoints
    connection_id = secrets.token_urlsafe(9)
    session = factory(connection_id, state.clock.now().timestamp(), time.monotonic())
    connection = Connection(ws, current_app._get_current_object(), state, session, connection_id)  # type: ignore[attr-defined]
    state.db.session.remove()  # hold no database connection for the socket's lifetime
    connection.run()
    _end_the_connection(ws)


def _end_the_connection(ws: object) -> None:
    """Werkzeug's development server (the demo, ``flask run``) writes an HTTP response after the
    handler returns, into the socket that was upgraded to a WebSocket: browsers then report
    "Invalid frame header" at every hang-up. Ending the TCP connection first sends that write
    nowhere (Werkzeug treats it as a dropped connection). Production servers write nothing."""
    if getattr(ws, "mode", None) != "werkzeug":
        return
    with contextlib.suppress(OSError, AttributeError):
        ws.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[attr-defined]


@sock.route("/room/<string(maxlength=40):appointment_id>", bp=bp)
def room_socket(ws: object, appointment_id: str) -> None:
    _serve(ws)


@sock.route("/probe/<string(maxlength=40):room>", bp=bp)
def probe_socket(ws: object, room: str) -> None:
    _serve(ws)


@sock.route("/practice", bp=bp)
def practice_socket(ws: object) -> None:
    _serve(ws)
