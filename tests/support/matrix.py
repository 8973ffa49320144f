"""Roles and a world for requests that must start from the same state, one role at a time.

``build_world`` plans appointments A and B (both Dr. Berg's), checks a patient in for each,
signs everybody in and takes a snapshot of the SQLite file; ``World.restore`` puts the
snapshot back, so a request that deletes or renames cannot change what the next one sees.
``call`` sends one request of one role, as that role's browser or script would.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.hosts import HostApp, make_host_app
from tests.support.people import People, make_people
from tests.support.web import csrf_from, sign_in_as
from vc_plugin.core.clock import FrozenClock
from vc_plugin.core.models import Base
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import AppointmentIn, ParticipantIn

ROLES = (
    "anonymous",
    "patient_a",
    "patient_b",
    "staff",
    "practitioner",
    "colleague",
    "other_org",
    "admin",
    "token_other",
    "token_own",
)
SIGNED_IN = ("staff", "practitioner", "colleague", "other_org", "admin")
WITH_COOKIE = tuple(role for role in ROLES if not role.startswith("token"))
LABEL_A = "Vertraulich-A-7f3q"
EMAIL_A = "a.patient@example.org"
#: URL arguments that ``path_of`` knows a value for.
PATH_VALUES = frozenset({"appointment_id", "invitation_id", "token_id", "practitioner_id", "room", "filename"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Route:
    endpoint: str
    method: str
    rule: str
    arguments: frozenset[str]
    websocket: bool

    @property
    def changes_state(self) -> bool:
        return self.method not in SAFE_METHODS


def our_routes(app: Any) -> list[Route]:
    """Every (endpoint, method) that vc_plugin serves, straight from the URL map."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("vc."):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append(
                Route(
                    rule.endpoint,
                    method,
                    rule.rule,
                    frozenset(rule.arguments),
                    bool(getattr(rule, "websocket", False)),
                )
            )
    return routes


@dataclass
class World:
    host: HostApp
    database: Path
    snapshot: Path
    people: People
    appointment_a: str
    invitation_a: str
    code_a: str
    token_id: int
    colleague_id: str
    tokens: dict[str, str]
    #: role → (session cookie value or None, CSRF token or None)
    sessions: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    #: The patients' check-ins as presence holds them after signing in (restored with the database).
    check_ins: list[Any] = field(default_factory=list)

    def quiesce(self) -> None:
        """No job running and no connection open, so the database file may be replaced."""
        self.host.state.jobs.wait_idle()  # type: ignore[attr-defined]
        with self.host.app.app_context():
            self.host.db.session.remove()
            self.host.db.engine.dispose()

    def restore(self) -> None:
        """Back to the snapshot: what one request changed, the next one does not see."""
        self.quiesce()
        shutil.copyfile(self.snapshot, self.database)
        for check_in in self.check_ins:  # presence is part of the snapshot (a new code drops them)
            self.host.state.presence.hold_check_in(check_in)

    def close(self) -> None:
        self.host.close()


def build_world(directory: Path, *, hostile: str | None = None, **config: Any) -> World:
    """Two organisations, appointments A and B, every role signed in or checked in.

    With ``hostile``, that text is every name a page can show: practitioners, the organisation,
    the appointment's label, the API token's name and the checked-in patients.
    """
    database = directory / "vc.sqlite"
    clock = FrozenClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    host = make_host_app(f"sqlite:///{database}", clock=clock, **config)
    app = host.app
    with app.app_context():
        Base.metadata.create_all(host.db.engine)
        people = make_people(host.state)
        if hostile:
            for person in (people.doc, people.colleague, people.desk, people.boss, people.south):
                person.display_name = f"{hostile} {person.display_name}"
            people.doc.organisation.name = hostile
            host.state.db.session.commit()
        start = clock.now() + timedelta(minutes=10)

        def plan(**extra: Any) -> Any:
            return host.state.appointments.plan(
                Principal.of(people.doc),
                AppointmentIn(starts_at=start, ends_at=start + timedelta(minutes=30), **extra),
            )

        planned_a = plan(
            label=hostile or LABEL_A,
            participants=[ParticipantIn(email=EMAIL_A, store_contact=True)],
        )
        planned_b = plan()
        row_own, own = host.state.api_tokens.create("praxis-nord", hostile or "case tool")
        _, other = host.state.api_tokens.create("praxis-sued", "other tool")
        world = World(
            host=host,
            database=database,
            snapshot=directory / "snapshot.sqlite",
            people=people,
            appointment_a=planned_a.appointment.public_id,
            invitation_a=planned_a.invitations[0].invitation.public_id,
            code_a=planned_a.invitations[0].code,
            token_id=row_own.id,
            colleague_id=people.colleague.public_id,
            tokens={"token_own": own, "token_other": other},
        )
        persons = {
            "staff": people.desk,
            "practitioner": people.doc,
            "colleague": people.colleague,
            "other_org": people.south,
            "admin": people.boss,
        }
        passes = {
            role: (issued.invitation.public_id, issued.code)
            for role, issued in (("patient_a", planned_a.invitations[0]), ("patient_b", planned_b.invitations[0]))
        }
        for person in persons.values():
            _ = (person.public_id, person.role, person.display_name)  # loaded while the session is open
    for role in ROLES:
        if role not in WITH_COOKIE:
            world.sessions[role] = (None, None)
            continue
        client = app.test_client()
        if role in persons:
            sign_in_as(client, persons[role], clock.now().timestamp())
        if role in passes:
            invitation, code = passes[role]
            link = f"/vc/join/{invitation}"
            token = csrf_from(client.get(link).get_data(as_text=True))
            form = {"csrf_token": token, "code": code, "name": hostile or "Frau Test", "consent": "yes"}
            checked = client.post(link, data=form)
            assert checked.status_code == 302, checked.get_data(as_text=True)
        page = "/vc/practice/" if role in persons else "/vc/auth/sign-in"
        token = csrf_from(client.get(page).get_data(as_text=True))
        cookie = client.get_cookie("vc_session", path="/vc")
        assert cookie is not None
        world.sessions[role] = (cookie.value, token)
    world.quiesce()
    shutil.copyfile(database, world.snapshot)
    world.check_ins = [c for c in (host.state.presence.check_in(i) for i, _ in passes.values()) if c is not None]
    return world


# --- one request ---------------------------------------------------------------------------------------


def path_of(world: World, route: Route) -> str:
    values = {
        "appointment_id": world.appointment_a,
        "invitation_id": world.invitation_a,
        "token_id": str(world.token_id),
        "practitioner_id": world.colleague_id,
        "room": "probe-nothing",
        "filename": "vc.css",
    }
    path = route.rule
    while "<" in path:
        start = path.index("<")
        end = path.index(">", start)
        name = path[start + 1 : end].split(":")[-1]
        assert name in values, f"{route.rule}: no test value for <{name}>; add one to path_of()"
        path = path[:start] + values[name] + path[end + 1 :]
    return path


def form_for(world: World, endpoint: str, role: str) -> dict[str, str]:
    clock = world.host.state.clock
    tomorrow = (clock.now() + timedelta(days=1)).astimezone(world.host.state.settings.zone)
    forms: dict[str, dict[str, str]] = {
        "vc.public.choose_language": {"language": "en", "next": "/vc/"},
        "vc.auth.start_oidc": {"next": "/vc/"},
        "vc.auth.dev_sign_in": {"persona": "admin"},
        "vc.practice.plan": {
            "practitioner": world.people.doc.public_id,
            "date": tomorrow.strftime("%Y-%m-%d"),
            "time": "10:00",
            "duration": "30",
            "kind": "single",
            "p0-kind": "patient",
            "p0-language": "de",
        },
        "vc.practice.reschedule": {"date": tomorrow.strftime("%Y-%m-%d"), "time": "11:00", "duration": "30"},
        "vc.practice.add_participant": {"p0-kind": "interpreter", "p0-language": "en"},
        "vc.practice.resend": {"email": "b@example.org"},
        "vc.admin.rename": {"name": "Praxis Neu"},
        "vc.admin.create_token": {"name": "Neues Werkzeug"},
        "vc.join.check_in": {
            "code": world.code_a if role == "patient_a" else "AAAAA-AAAAA",
            "name": "Frau Test",
            "consent": "yes",
        },
    }
    return forms.get(endpoint, {})


def json_body_for(world: World, endpoint: str) -> dict[str, Any] | None:
    start = world.host.state.clock.now() + timedelta(days=2)
    times = {"starts_at": start.isoformat(), "ends_at": (start + timedelta(minutes=30)).isoformat()}
    return {
        "vc.api.create_appointment": {"practitioner": world.people.doc.public_id, **times},
        "vc.api.reschedule_appointment": times,
        "vc.api.add_participant": {"kind": "interpreter"},
        "vc.api.send_invitation": {"email": "p@example.org"},
        "vc.api.probe": {},
        # A ticket for the socket of appointment A's room: granted to whom that socket would take.
        "vc.socket_tickets.socket_ticket": {"socket": f"/vc/ws/room/{world.appointment_a}"},
    }.get(endpoint)


def call(
    world: World,
    route: Route,
    role: str,
    *,
    with_csrf: bool = True,
    csrf_of: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    """One request of ``role`` to ``route``; ``csrf_of`` sends another role's CSRF token instead."""
    client = world.host.app.test_client()
    # Each role comes from its own address, so that per-client rate limits keep them apart.
    client.environ_base["REMOTE_ADDR"] = f"10.0.0.{ROLES.index(role) + 1}"
    cookie, token = world.sessions[role]
    if csrf_of is not None:
        token = world.sessions[csrf_of][1]
    if cookie is not None:
        client.set_cookie("vc_session", cookie, path="/vc")
    sent: dict[str, str] = {"Accept-Language": "en", **(headers or {})}
    if role in world.tokens:
        sent["Authorization"] = f"Bearer {world.tokens[role]}"
    kwargs: dict[str, Any] = {"headers": sent}
    if route.changes_state:
        body = json_body_for(world, route.endpoint)
        if route.endpoint.startswith("vc.api.") or route.endpoint == "vc.socket_tickets.socket_ticket":
            if body is not None:
                kwargs["json"] = body
            if token and with_csrf:
                sent["X-CSRFToken"] = token
        else:
            form = form_for(world, route.endpoint, role)
            if token and with_csrf:
                form = {**form, "csrf_token": token}
            kwargs["data"] = form
    return client.open(path_of(world, route), method=route.method, **kwargs)


def outcome(response: Any) -> str:
    """``"200"``, or ``"302 <Location>"`` for redirects."""
    status = response.status_code
    if 300 <= status < 400:
        return f"{status} {response.headers.get('Location', '')}"
    return str(status)


def matches(expected: str, actual: str) -> bool:
    if expected.startswith("302 "):
        return actual.startswith(expected)
    return actual == expected


def is_success(expected: str) -> bool:
    """A cell where the role gets what it asked for (not a refusal, not the way to the sign-in page)."""
    return expected[0] in "23" and "/vc/auth/sign-in" not in expected
