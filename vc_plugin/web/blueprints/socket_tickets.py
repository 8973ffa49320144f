"""``POST <prefix>/socket-ticket``: a page's ticket for the signalling socket it is about to open.

The checks a handshake would make run here, in an ordinary request (the host's own rules, CSRF,
the join limit, the session cookie or participant pass, one database query), and their outcome
goes into a sealed ticket (:mod:`vc_plugin.domain.socket_ticket`). The socket's handshake then
only takes the ticket, which the signalling server does without Flask or the database. It is not
below ``/ws/``: the reverse proxy sends that to the signalling server.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from ...domain.socket_ticket import TICKET_SECONDS, RoomGrant
from ...domain.waiting_room import Staffer
from ..csrf import csrf_token
from ..identity import current_practitioner
from ..ratelimits import join_allowed
from ..state import vc_state
from .ws import room_identity, staffer_of, ticket_socket

bp = Blueprint("socket_tickets", __name__)
#: Longer than any socket path of ours; a longer one is refused before it is parsed.
MAX_PATH = 300


def ticket_config() -> dict[str, str]:
    """What a page's signalling client needs to ask for its tickets (``signal.js``)."""
    return {"socketTicket": url_for("vc.socket_tickets.socket_ticket"), "csrf": csrf_token()}


def _requested_socket() -> tuple[str, dict[str, Any]]:
    """The socket endpoint the page names (``{"socket": "<its path>"}``), as the app's routes read it."""
    body = request.get_json(silent=True)
    path = body.get("socket") if isinstance(body, dict) else None
    if not isinstance(path, str) or not path.startswith("/") or len(path) > MAX_PATH:
        abort(400, description='Send {"socket": "<the socket\'s path>"}.')
    adapter = current_app.url_map.bind_to_environ(request.environ)
    try:
        endpoint, values = adapter.match(path.removeprefix(request.script_root), method="GET", websocket=True)
    except HTTPException:
        abort(404, description="No such socket.")
    return str(endpoint), values


@bp.post("/socket-ticket")
def socket_ticket() -> ResponseReturnValue:
    endpoint, values = _requested_socket()
    socket = ticket_socket(endpoint, values)
    if socket is None:
        abort(404, description="No such socket.")
    if not join_allowed():
        abort(429, description="Too many connection attempts; try again in a minute.")
    state = vc_state()
    if endpoint == "vc.ws.practice_socket":
        person = current_practitioner()
        if person is None:
            abort(401, description="Sign in first.")
        grant: RoomGrant | Staffer = staffer_of(person)
    else:
        identity, appointment = room_identity(str(values["appointment_id"]))
        grant = RoomGrant(identity, state.waiting_room.room_for(appointment))
    ticket = state.socket_tickets.issue(socket, grant, state.clock.now().timestamp())
    response = jsonify(ticket=ticket, expiresIn=TICKET_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response
