"""Who may call what: every route of the URL map and every socket message type, for every role.

The rows are read from the running app (``app.url_map``) and from the protocol's list of
message types, so a new route or message type without a rule here fails the first test with
its name. Each HTTP cell starts from the same database (a SQLite snapshot), so a cell that
deletes or signs out cannot change the next one; the socket cells run against a real server
on PostgreSQL and Redis.

Roles (columns):

* ``anonymous`` – a browser without sign-in or pass
* ``patient_a`` / ``patient_b`` – checked in for appointment A / B (both Dr. Berg's)
* ``staff``, ``practitioner`` (Dr. Berg, who holds A), ``colleague`` (same organisation),
  ``admin`` – signed in at organisation praxis-nord
* ``other_org`` – a practitioner of praxis-sued
* ``token_other`` / ``token_own`` – API tokens of praxis-sued / praxis-nord, without a cookie
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.hosts import HostApp, make_host_app
from tests.support.live import LiveServer
from tests.support.matrix import (
    EMAIL_A,
    LABEL_A,
    PATH_VALUES,
    ROLES,
    World,
    build_world,
    call,
    matches,
    our_routes,
    outcome,
)
from tests.support.people import make_people
from tests.support.signal_client import SignalClient, check_in, practitioner_cookie
from vc_plugin.adapters.presence import Member, MemberRole, MemberState
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import AppointmentIn, ParticipantIn
from vc_plugin.domain.signaling import KNOWN_TYPES

#: Roles that must never read appointment A's details (its label, the patient's address).
NOT_ENTITLED_TO_A = ("anonymous", "patient_a", "patient_b", "colleague", "other_org", "token_other")
SIGN_IN = "302 /vc/auth/sign-in"
HOME = "302 /vc/"
OPEN = "open"  # a socket handshake that succeeds


def row(*cells: int | str) -> dict[str, str]:
    """One line of the matrix, in the order of ``ROLES``."""
    assert len(cells) == len(ROLES), f"a row needs {len(ROLES)} cells, got {len(cells)}"
    return {role: str(cell) for role, cell in zip(ROLES, cells, strict=True)}


# fmt: off
#: endpoint → expected answer per role: a status, or "302 <start of Location>", or "open".
RULES: dict[str, dict[str, str]] = {
    # columns: anonymous, patient_a, patient_b, staff, practitioner, colleague, other_org, admin, token_other, token_own
    "vc.public.home":                row(SIGN_IN, SIGN_IN, SIGN_IN, "302 /vc/practice/", "302 /vc/practice/", "302 /vc/practice/", "302 /vc/practice/", "302 /vc/practice/", SIGN_IN, SIGN_IN),  # noqa: E501
    "vc.public.health":              row(200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "vc.public.privacy_notice":      row(200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "vc.public.choose_language":     row(HOME, HOME, HOME, HOME, HOME, HOME, HOME, HOME, 400, 400),
    "vc.static":                     row(200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "vc.auth.sign_in_page":          row(200, 200, 200, HOME, HOME, HOME, HOME, HOME, 200, 200),
    # No OpenID provider in this host: tests/test_oidc.py drives the flow against a real one.
    "vc.auth.start_oidc":            row(404, 404, 404, 404, 404, 404, 404, 404, 400, 400),
    "vc.auth.callback":              row(404, 404, 404, 404, 404, 404, 404, 404, 404, 404),
    # Development sign-in: only in debug mode on loopback, never here.
    "vc.auth.dev_sign_in":           row(404, 404, 404, 404, 404, 404, 404, 404, 400, 400),
    "vc.auth.sign_out_view":         row(*["302 /vc/auth/signed-out"] * 8, 400, 400),
    "vc.auth.signed_out":            row(200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "vc.practice.dashboard":         row(SIGN_IN, SIGN_IN, SIGN_IN, 200, 200, 200, 200, 200, SIGN_IN, SIGN_IN),
    "vc.practice.appointments":      row(SIGN_IN, SIGN_IN, SIGN_IN, 200, 200, 200, 200, 200, SIGN_IN, SIGN_IN),
    "vc.practice.plan_page":         row(SIGN_IN, SIGN_IN, SIGN_IN, 200, 200, 200, 200, 200, SIGN_IN, SIGN_IN),
    # Planning for Dr. Berg: her colleague and another organisation may not.
    "vc.practice.plan":              row(SIGN_IN, SIGN_IN, SIGN_IN, 200, 200, 422, 422, 200, 400, 400),
    "vc.practice.appointment":       row(SIGN_IN, SIGN_IN, SIGN_IN, 200, 200, 404, 404, 200, SIGN_IN, SIGN_IN),
    # Only the appointment's own practitioner holds the call; staff never do.
    "vc.practice.call":              row(SIGN_IN, SIGN_IN, SIGN_IN, 403, 200, 404, 404, 403, SIGN_IN, SIGN_IN),
    # Confirming the introductions (Anlage 31b) follows the call page's rule; tokens have no CSRF token.
    "vc.practice.confirm_introductions": row(SIGN_IN, SIGN_IN, SIGN_IN, 403, "302 /vc/practice/appointments/", 404, 404, 403, 400, 400),  # noqa: E501
    "vc.practice.cancel":            row(SIGN_IN, SIGN_IN, SIGN_IN, "302 /vc/practice/appointments/", "302 /vc/practice/appointments/", 404, 404, "302 /vc/practice/appointments/", 400, 400),  # noqa: E501
    # Reopening an ended consultation follows ending's rule: the appointment's own practitioner (A is planned: a no-op).
    "vc.practice.reopen":            row(SIGN_IN, SIGN_IN, SIGN_IN, 403, "302 /vc/practice/appointments/", 404, 404, 403, 400, 400),  # noqa: E501
    "vc.practice.delete":            row(SIGN_IN, SIGN_IN, SIGN_IN, "302 /vc/practice/appointments?deleted", "302 /vc/practice/appointments?deleted", 404, 404, "302 /vc/practice/appointments?deleted", 400, 400),  # noqa: E501
    "vc.practice.add_participant":   row(SIGN_IN, SIGN_IN, SIGN_IN, 200, 200, 404, 404, 200, 400, 400),
    "vc.practice.reschedule":        row(SIGN_IN, SIGN_IN, SIGN_IN, "302 /vc/practice/appointments/", "302 /vc/practice/appointments/", 404, 404, "302 /vc/practice/appointments/", 400, 400),  # noqa: E501
    "vc.practice.resend":            row(SIGN_IN, SIGN_IN, SIGN_IN, 200, 200, 404, 404, 200, 400, 400),
    "vc.practice.export":            row(SIGN_IN, SIGN_IN, SIGN_IN, 200, 200, 404, 404, 200, SIGN_IN, SIGN_IN),
    "vc.practice.export_participant": row(SIGN_IN, SIGN_IN, SIGN_IN, 200, 200, 404, 404, 200, SIGN_IN, SIGN_IN),
    "vc.practice.delete_participant": row(SIGN_IN, SIGN_IN, SIGN_IN, "302 /vc/practice/appointments/", "302 /vc/practice/appointments/", 404, 404, "302 /vc/practice/appointments/", 400, 400),  # noqa: E501
    "vc.admin.organisation":         row(SIGN_IN, SIGN_IN, SIGN_IN, 403, 403, 403, 403, 200, SIGN_IN, SIGN_IN),
    "vc.admin.rename":               row(SIGN_IN, SIGN_IN, SIGN_IN, 403, 403, 403, 403, "302 /vc/admin/", 400, 400),
    "vc.admin.create_token":         row(SIGN_IN, SIGN_IN, SIGN_IN, 403, 403, 403, 403, 200, 400, 400),
    "vc.admin.revoke_token":         row(SIGN_IN, SIGN_IN, SIGN_IN, 403, 403, 403, 403, "302 /vc/admin/", 400, 400),
    # The colleague leaves praxis-nord: only its admin may erase them.
    "vc.admin.delete_person":        row(SIGN_IN, SIGN_IN, SIGN_IN, 403, 403, 403, 403, "302 /vc/admin/", 400, 400),
    # The link itself is public (the code is the secret); patient A is sent on to the room.
    "vc.join.link":                  row(200, "302 /vc/join/", 200, 200, 200, 200, 200, 200, 200, 200),
    # Everyone sends the code they know: only patient A knows A's.
    "vc.join.check_in":              row(403, "302 /vc/join/", 403, 403, 403, 403, 403, 403, 400, 400),
    # The privacy receipt is patient A's alone.
    "vc.join.receipt":               row("302 /vc/join/", 200, *["302 /vc/join/"] * 8),
    "vc.join.leave":                 row(*["302 /vc/join/"] * 8, 400, 400),
    "vc.join.left":                  row(200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "vc.join.room":                  row("302 /vc/join/", 200, *["302 /vc/join/"] * 8),
    "vc.api.openapi":                row(200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    "vc.api.list_appointments":      row(401, 401, 401, 200, 200, 200, 200, 200, 200, 200),
    "vc.api.create_appointment":     row(401, 401, 401, 201, 201, 422, 422, 201, 422, 201),
    "vc.api.get_appointment":        row(401, 401, 401, 200, 200, 404, 404, 200, 404, 200),
    "vc.api.reschedule_appointment": row(401, 401, 401, 200, 200, 404, 404, 200, 404, 200),
    "vc.api.delete_appointment":     row(401, 401, 401, 204, 204, 404, 404, 204, 404, 204),
    "vc.api.cancel_appointment":     row(401, 401, 401, 200, 200, 404, 404, 200, 404, 200),
    "vc.api.add_participant":        row(401, 401, 401, 201, 201, 404, 404, 201, 404, 201),
    "vc.api.send_invitation":        row(401, 401, 401, 200, 200, 404, 404, 200, 404, 200),
    "vc.api.export_appointment":     row(401, 401, 401, 200, 200, 404, 404, 200, 404, 200),
    "vc.api.export_participant":     row(401, 401, 401, 200, 200, 404, 404, 200, 404, 200),
    "vc.api.delete_participant":     row(401, 401, 401, 204, 204, 404, 404, 204, 404, 204),
    "vc.api.list_practitioners":     row(401, 401, 401, 200, 200, 200, 200, 200, 200, 200),
    # Only the operator token (VC_OPERATOR_TOKEN_HASH) opens a probe: tests/test_probe.py.
    "vc.api.probe":                  row(401, 401, 401, 401, 401, 401, 401, 401, 401, 401),
    # A socket ticket for room A follows the room socket's rule (tokens have no CSRF token).
    "vc.socket_tickets.socket_ticket": row(401, 200, 401, 403, 200, 404, 404, 404, 400, 400),
    # WebSocket handshakes (socket cells below): refused with a plain HTTP status before the upgrade.
    "vc.ws.room_socket":             row(401, OPEN, 401, 403, OPEN, 404, 404, 404, 401, 401),
    "vc.ws.practice_socket":         row(401, 401, 401, OPEN, OPEN, OPEN, OPEN, OPEN, 401, 401),
    "vc.ws.probe_socket":            row(401, 401, 401, 401, 401, 401, 401, 401, 401, 401),
}
# fmt: on

#: URL arguments that _path() knows a value for.


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world = build_world(tmp_path_factory.mktemp("matrix"))
    yield world
    world.close()


# --- the tests ---------------------------------------------------------------------------------------


def test_every_route_and_message_type_has_a_rule(world: World) -> None:
    routes = our_routes(world.host.app)
    served = {r.endpoint for r in routes}
    missing = sorted(f"{r.method} {r.rule} (endpoint {r.endpoint})" for r in routes if r.endpoint not in RULES)
    assert not missing, (
        "Routes without an authorization rule: "
        + "; ".join(missing)
        + ". Add a row to RULES in tests/test_authorization_matrix.py that says what every role gets."
    )
    stale = sorted(set(RULES) - served)
    assert not stale, f"RULES names endpoints the app no longer serves: {stale}"
    several = sorted({r.endpoint for r in routes if sum(s.endpoint == r.endpoint for s in routes) > 1})
    assert not several, f"{several} answer several methods; give each method its own rule"
    unknown_arguments = sorted({a for r in routes for a in r.arguments} - PATH_VALUES)
    assert not unknown_arguments, (
        f"no test value for the URL arguments {unknown_arguments}; add them to tests/support/matrix.py:path_of()"
    )
    assert set(SOCKET_RULES) == set(KNOWN_TYPES), (
        f"socket message types without a rule: {sorted(set(KNOWN_TYPES) - set(SOCKET_RULES))}; "
        f"rules for types that no longer exist: {sorted(set(SOCKET_RULES) - set(KNOWN_TYPES))}"
    )
    socket_endpoints = {r.endpoint for r in routes if r.websocket}
    assert socket_endpoints == {"vc.ws.room_socket", "vc.ws.practice_socket", "vc.ws.probe_socket"}, (
        f"new socket endpoints need cells in test_socket_matrix: {sorted(socket_endpoints)}"
    )


def test_http_matrix(world: World) -> None:
    wrong: list[str] = []
    leaks: list[str] = []
    cells = 0
    for route in our_routes(world.host.app):
        if route.websocket or route.endpoint not in RULES:
            continue  # sockets: test_socket_matrix; missing rules: the test above names them
        for role in ROLES:
            world.restore()
            response = call(world, route, role)
            cells += 1
            actual = outcome(response)
            expected = RULES[route.endpoint][role]
            if not matches(expected, actual):
                wrong.append(f"{route.method} {route.rule} as {role}: expected {expected}, got {actual}")
            body = response.get_data(as_text=True)
            if role in NOT_ENTITLED_TO_A and (LABEL_A in body or EMAIL_A in body):
                leaks.append(f"{route.method} {route.rule} as {role} shows appointment A's label or address")
            assert "Traceback" not in body
    world.restore()
    assert cells >= 40 * len(ROLES)
    assert not wrong, f"{len(wrong)} of {cells} cells differ:\n" + "\n".join(wrong)
    assert not leaks, "\n".join(leaks)


def test_the_matrix_sees_what_it_claims(world: World) -> None:
    """The allowed cells really act (so a 200 in the matrix is not an error page in disguise)."""
    routes = {r.endpoint: r for r in our_routes(world.host.app)}
    world.restore()
    response = call(world, routes["vc.api.get_appointment"], "token_own")
    assert response.json["id"] == world.appointment_a
    response = call(world, routes["vc.practice.appointment"], "staff")
    assert LABEL_A in response.get_data(as_text=True)
    response = call(world, routes["vc.join.room"], "patient_a")
    assert world.appointment_a in response.get_data(as_text=True)
    ticket = call(world, routes["vc.socket_tickets.socket_ticket"], "patient_a").json["ticket"]
    taken = world.host.state.socket_tickets.take(
        ticket, f"room:{world.appointment_a}", world.host.state.clock.now().timestamp()
    )
    assert taken.room is not None and taken.room.identity.appointment == world.appointment_a
    response = call(world, routes["vc.api.delete_appointment"], "practitioner")
    assert response.status_code == 204
    gone = call(world, routes["vc.api.get_appointment"], "practitioner")
    assert gone.status_code == 404
    world.restore()
    assert call(world, routes["vc.api.get_appointment"], "practitioner").status_code == 200


# --- sockets -----------------------------------------------------------------------------------------

#: Who speaks on a socket: patients in their rooms, Dr. Berg in room A, and five dashboards.
SOCKET_ROLES = (
    "patient_a",  # waiting in A
    "patient_a_admitted",  # a second participant of A, let in
    "patient_b",  # admitted in B, addressing A
    "practitioner_room",  # Dr. Berg in room A
    "staff",
    "practitioner",
    "colleague",
    "other_org",
    "admin",
)
NA = "error:not_allowed"
NADM = "error:not_admitted"


def srow(*cells: str) -> dict[str, str]:
    assert len(cells) == len(SOCKET_ROLES)
    return dict(zip(SOCKET_ROLES, cells, strict=True))


# fmt: off
#: message type → outcome per socket role: "ok" (accepted, effect checked) or "error:<code>".
#: Commands name appointment A (or, from dashboards, a fresh appointment of Dr. Berg per cell).
SOCKET_RULES: dict[str, dict[str, str]] = {
    # patient_a, patient_a_admitted, patient_b, practitioner_room, staff, practitioner, colleague, other_org, admin
    "hello":          srow(*["error:already_joined"] * 9),
    "ping":           srow(*["ok"] * 9),
    "offer":          srow(NADM, "ok", "error:unknown_peer", "ok", NA, NA, NA, NA, NA),
    "answer":         srow(NADM, "ok", "error:unknown_peer", "ok", NA, NA, NA, NA, NA),
    "candidate":      srow(NADM, "ok", "error:unknown_peer", "ok", NA, NA, NA, NA, NA),
    "ice-restart":    srow(NADM, "ok", "error:unknown_peer", "ok", NA, NA, NA, NA, NA),
    # patient_b may have a relay for its own call in B; nobody waiting gets one.
    "relay-request":  srow(NADM, "ok", "ok", "ok", NA, NA, NA, NA, NA),
    "admit":          srow(NA, NA, NA, "ok", NA, "ok", NA, "error:unknown_room", NA),
    "decline":        srow(NA, NA, NA, "ok", NA, "ok", NA, "error:unknown_room", NA),
    # Back to the waiting room: whoever may admit, nobody else (issue 17).
    "send-back":      srow(NA, NA, NA, "ok", NA, "ok", NA, "error:unknown_room", NA),
    "notice":         srow(NA, NA, NA, "ok", "ok", "ok", NA, "error:unknown_room", "ok"),
    # While someone is in the call with Dr. Berg (patient_a_admitted) it cannot be handed over.
    "handover":       srow(NA, NA, NA, "error:in_call", "ok", "ok", NA, "error:unknown_room", "ok"),
    "end":            srow(NA, NA, NA, "ok", NA, "ok", NA, "error:unknown_room", NA),
    "leave":          srow("ok", "ok", "ok", "ok", NA, NA, NA, NA, NA),
    # Said about oneself, on the dashboard only; staff have no waiting rooms of their own.
    "running-late":   srow(NA, NA, NA, NA, NA, "ok", "ok", "ok", "ok"),
}
# fmt: on


@pytest.fixture(scope="module")
def arena(
    postgres_schema: str, tmp_path_factory: pytest.TempPathFactory, transport: str
) -> Iterator[tuple[LiveServer, HostApp]]:
    from redis import Redis

    from tests.conftest import REDIS_URL, _empty_postgres

    Redis.from_url(REDIS_URL).flushdb()
    _empty_postgres(postgres_schema)
    config = {
        "VC_REDIS_URL": REDIS_URL,
        "VC_TURN_URLS": ["turn:127.0.0.1:3478?transport=udp"],
        "VC_TURN_SECRET": "matrix-turn-secret",
        "VC_WS_MESSAGES_PER_SECOND": 1000,
        "VC_WS_BURST": 1000,
    }
    server = LiveServer(postgres_schema, config, tmp_path_factory.mktemp("socket-matrix"), signalling=transport).start()
    host = make_host_app(postgres_schema, VC_REDIS_URL=REDIS_URL, VC_PUBLIC_URL=server.url + "/")
    with host.app.app_context():
        yield server, host
    host.close()
    server.stop()


async def _ask(client: SignalClient, message: dict[str, Any]) -> str:
    """Send ``message``, then a ping: an error before the pong is the answer, else "ok".

    Other messages that arrive meanwhile (queue updates, a ``relay``) stay in the inbox.
    """
    marker = time.monotonic()
    await client.send(message)
    if message["type"] != "leave":
        await client.send({"type": "ping", "t": marker})
    kept: list[dict[str, Any]] = []
    answer = None
    try:
        while answer is None:
            reply = await client.receive(timeout=5)
            if reply.get("type") == "error":
                answer = f"error:{reply.get('code')}"
            elif (reply.get("type"), message["type"]) in {("left", "leave"), ("ended", "end")}:
                return "ok"  # the socket closes now
            elif reply.get("type") == "pong" and reply.get("t") == marker:
                return "ok"
            else:
                kept.append(reply)
        if message["type"] != "leave":
            await client.receive("pong", timeout=5)  # the ping's answer follows the error
        return answer
    finally:
        client.inbox[:0] = kept


class SocketMatrix:
    """The socket cells: one live server, Dr. Berg's rooms A and B, five dashboards."""

    ROOM_SOCKETS = ("patient_a", "patient_a_admitted", "patient_b", "practitioner_room")
    COMMANDS = ("admit", "decline", "send-back", "notice", "handover", "end")
    RELAYED = ("offer", "answer", "candidate", "ice-restart")

    def __init__(self, server: LiveServer, host: HostApp) -> None:
        self.server, self.state = server, host.state
        self.people = make_people(self.state)
        self.wrong: list[str] = []
        self.clients: dict[str, SignalClient] = {}
        self.planned_a, self.planned_b = self.plan(2), self.plan(1)
        self.a = self.planned_a.appointment.public_id
        self.b = self.planned_b.appointment.public_id
        people = self.people
        self.cookies = {
            "patient_a": self.check_in(self.planned_a, 0),
            "patient_a_admitted": self.check_in(self.planned_a, 1),
            "patient_b": self.check_in(self.planned_b, 0),
            "staff": practitioner_cookie(people.desk),
            "practitioner": practitioner_cookie(people.doc),
            "colleague": practitioner_cookie(people.colleague),
            "other_org": practitioner_cookie(people.south),
            "admin": practitioner_cookie(people.boss),
        }
        self.ids: dict[str, str] = {}

    def plan(self, patients: int) -> Any:
        start = self.state.clock.now() + timedelta(minutes=5)
        planned = self.state.appointments.plan(
            Principal.of(self.people.doc),
            AppointmentIn(
                starts_at=start,
                ends_at=start + timedelta(minutes=30),
                kind="group",
                participants=[ParticipantIn()] * patients,
            ),
        )
        self.state.db.session.commit()
        return planned

    def check_in(self, planned: Any, index: int) -> str:
        issued = planned.invitations[index]
        return check_in(self.server.url, issued.invitation.public_id, issued.code)

    def waiting_member(self, appointment: Any) -> str:
        """A person waiting in ``appointment`` (written to presence directly; no socket needed)."""
        room = self.state.waiting_room.room_for(appointment)
        member_id = f"w{time.monotonic_ns() % 10**12}"
        template = Member(id=member_id, role=MemberRole.PATIENT, name="Wartend", state=MemberState.WAITING, since=0.0)
        self.state.waiting_room.arrive(room, template, None, f"conn-{member_id}", None)
        return member_id

    def differs(self, what: str, expected: str, actual: str) -> None:
        if actual != expected:
            self.wrong.append(f"{what}: expected {expected}, got {actual}")

    async def handshakes(self) -> None:
        tokens = {role: f"Bearer {token}" for role, token in _tokens(self.state).items()}
        paths = {
            "vc.ws.room_socket": f"/vc/ws/room/{self.a}",
            "vc.ws.practice_socket": "/vc/ws/practice",
            "vc.ws.probe_socket": "/vc/ws/probe/probe-nothing",
        }
        for endpoint, path in paths.items():
            for role in ROLES:
                headers = {"Cookie": self.cookies[role]} if role in self.cookies else {}
                if role in tokens:
                    headers["Authorization"] = tokens[role]
                actual = await _handshake(self.server, path, headers)
                self.differs(f"handshake {path} as {role}", RULES[endpoint][role], actual)

    async def open(self, role: str, path: str, cookie: str) -> dict[str, Any]:
        self.clients[role] = await SignalClient.open(self.server.ws_url, path, cookie)
        return await self.clients[role].hello()

    async def connect_everybody(self) -> None:
        for role in ("staff", "practitioner", "colleague", "other_org", "admin"):
            assert (await self.open(role, "/vc/ws/practice", self.cookies[role]))["type"] == "queue"
        room_a, room_b = f"/vc/ws/room/{self.a}", f"/vc/ws/room/{self.b}"
        self.ids["doctor"] = (await self.open("practitioner_room", room_a, self.cookies["practitioner"]))["you"]["id"]
        welcome = await self.open("patient_a", room_a, self.cookies["patient_a"])
        assert welcome["state"] == "waiting"
        self.ids["patient_a"] = welcome["you"]["id"]
        for role, path, appointment in (("patient_a_admitted", room_a, self.a), ("patient_b", room_b, self.b)):
            member = (await self.open(role, path, self.cookies[role]))["you"]["id"]
            self.ids[role] = member
            await self.clients["practitioner"].send(
                {"type": "admit", "appointment": appointment, "participant": member}
            )
            await self.clients[role].receive("admitted")

    async def relays(self) -> None:
        """Non-commands: each room socket addresses Dr. Berg (she addresses the admitted patient)."""
        doctor, admitted = self.ids["doctor"], self.ids["patient_a_admitted"]
        receiver = {
            "patient_a_admitted": ("practitioner_room", admitted),
            "practitioner_room": ("patient_a_admitted", doctor),
        }
        for kind in [t for t in SOCKET_RULES if t not in {*self.COMMANDS, "leave", "running-late"}]:
            for role in SOCKET_ROLES:
                to = admitted if role == "practitioner_room" else doctor
                body: dict[str, Any] = {
                    "hello": {},
                    "ping": {"t": 1},
                    "offer": {"to": to, "sdp": f"v=0 {role}"},
                    "answer": {"to": to, "sdp": f"v=0 {role}"},
                    "candidate": {"to": to, "candidate": None},
                    "ice-restart": {"to": to},
                    "relay-request": {"consent": True},
                }[kind]
                actual = await _ask(self.clients[role], {"type": kind, **body})
                if actual == "ok" and kind in self.RELAYED:
                    target, sender = receiver[role]
                    got = await self.clients[target].receive(kind, timeout=5)
                    actual = "ok" if got.get("from") == sender else f"relayed from {got.get('from')}"
                if actual == "ok" and kind == "relay-request":
                    relay = await self.clients[role].receive("relay", timeout=5)
                    if not any("turn:" in str(server.get("urls")) for server in relay["iceServers"]):
                        actual = "relay without TURN credentials"
                self.differs(f"{kind} from {role}", SOCKET_RULES[kind][role], actual)

    async def commands(self) -> None:
        """Dashboards act on a fresh appointment per cell; room sockets on room A (its end comes last)."""
        for kind in self.COMMANDS:
            for role in SOCKET_ROLES:
                if kind == "end" and role == "practitioner_room":
                    continue
                if role in self.ROOM_SOCKETS:
                    appointment_id, appointment = self.a, self.planned_a.appointment
                else:
                    fresh = self.plan(1)
                    appointment_id, appointment = fresh.appointment.public_id, fresh.appointment
                member = self.waiting_member(appointment)
                if kind == "send-back":  # someone in the call (written to presence directly)
                    self.state.presence.update(appointment_id, member, state=MemberState.ADMITTED)
                text = f"Notiz von {role}"
                body = {
                    "admit": {"participant": member},
                    "decline": {"participant": member},
                    "send-back": {"participant": member},
                    "notice": {"text": text},
                    "handover": {"practitioner": self.people.colleague.public_id},
                    "end": {},
                }[kind]
                before = _room_state(self.state, appointment_id, member)
                actual = await _ask(self.clients[role], {"type": kind, "appointment": appointment_id, **body})
                after = _room_state(self.state, appointment_id, member)
                if actual == "ok" and not _effect(kind, before, after, self.people.colleague.public_id, text):
                    actual = f"accepted without effect ({before} → {after})"
                if actual != "ok" and before != after:
                    actual += f" but changed {before} → {after}"
                self.differs(f"{kind} from {role}", SOCKET_RULES[kind][role], actual)

    async def running_late(self) -> None:
        """Each dashboard of a practitioner sets its own delay (a different one per person); nobody else's changes."""
        people = self.people
        own = {
            "practitioner": people.doc,
            "colleague": people.colleague,
            "other_org": people.south,
            "admin": people.boss,
        }
        presence = self.state.presence
        for minutes, role in enumerate(SOCKET_ROLES, start=1):
            before = {name: presence.running_late(person.public_id) for name, person in own.items()}
            actual = await _ask(self.clients[role], {"type": "running-late", "minutes": minutes})
            after = {name: presence.running_late(person.public_id) for name, person in own.items()}
            expected = {**before, role: minutes} if actual == "ok" else before
            if after != expected:
                actual += f" but delays {before} → {after}"
            self.differs(f"running-late from {role}", SOCKET_RULES["running-late"][role], actual)

    async def leaving(self) -> None:
        """The room sockets leave for good, dashboards cannot; then Dr. Berg ends room A from the call."""
        for role in SOCKET_ROLES:
            if role != "practitioner_room":
                self.differs(
                    f"leave from {role}", SOCKET_RULES["leave"][role], await _ask(self.clients[role], {"type": "leave"})
                )
        before = _room_state(self.state, self.a, self.ids["patient_a"])
        actual = await _ask(self.clients["practitioner_room"], {"type": "end", "appointment": self.a})
        for _ in range(50):  # "ended" reaches the room before the record is marked
            after = _room_state(self.state, self.a, self.ids["patient_a"])
            if _effect("end", before, after, "", ""):
                break
            await asyncio.sleep(0.1)
        else:
            actual = f"{actual}, but {before} → {after}"
        self.differs("end from practitioner_room", SOCKET_RULES["end"]["practitioner_room"], actual)

    async def close(self) -> None:
        for client in self.clients.values():
            with contextlib.suppress(ConnectionClosed):
                await client.close()


def test_socket_matrix(arena: tuple[LiveServer, HostApp]) -> None:
    server, host = arena
    matrix = SocketMatrix(server, host)

    async def run() -> None:
        await matrix.handshakes()
        await matrix.connect_everybody()
        try:
            await matrix.relays()
            await matrix.commands()
            await matrix.running_late()
            await matrix.leaving()
        finally:
            await matrix.close()

    asyncio.run(run())
    assert not matrix.wrong, f"{len(matrix.wrong)} socket cells differ:\n" + "\n".join(matrix.wrong)
    log = server.output
    assert "Traceback" not in log, log[-3000:]


def _tokens(state: Any) -> dict[str, str]:
    _, own = state.api_tokens.create("praxis-nord", "socket tool")
    _, other = state.api_tokens.create("praxis-sued", "other socket tool")
    return {"token_own": own, "token_other": other}


async def _handshake(server: LiveServer, path: str, headers: dict[str, str]) -> str:
    from websockets.asyncio.client import connect

    try:
        socket = await connect(server.ws_url + path, additional_headers=headers, origin=server.url, open_timeout=10)
    except InvalidStatus as refused:
        return str(refused.response.status_code)
    await socket.close()
    return OPEN


def _room_state(state: Any, appointment: str, member: str | None) -> tuple[Any, ...]:
    from sqlalchemy import select

    from vc_plugin.core.models import Appointment

    room = state.presence.room(appointment)
    found = state.presence.get(appointment, member) if member else None
    state.db.session.expire_all()
    record = state.db.session.scalars(select(Appointment).where(Appointment.public_id == appointment)).one()
    state.db.session.rollback()
    return (
        room is not None,
        room.notice if room else None,
        room.practitioner if room else None,
        found.state if found else None,
        record.state.value,
        record.practitioner.public_id,
    )


def _effect(kind: str, before: tuple[Any, ...], after: tuple[Any, ...], colleague: str, text: str) -> bool:
    """Did the accepted command do what it says?"""
    checks: dict[str, Callable[[], bool]] = {
        "admit": lambda: before[3] == "waiting" and after[3] == "admitted",
        "decline": lambda: before[3] == "waiting" and after[3] is None,
        "send-back": lambda: before[3] == "admitted" and after[3] == "waiting",
        "notice": lambda: after[1] == text,
        "handover": lambda: after[5] == colleague and after[2] == colleague,
        "end": lambda: before[0] and not after[0] and after[4] == "ended",
    }
    return checks[kind]()
