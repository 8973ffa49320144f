"""Web hardening: CSRF on every state-changing route, security headers on every page, rate limits
on code entry, joins and the API (Redis storage), and hostile names rendered as text everywhere.

Routes come from the app's URL map, so a new form or endpoint is checked without being listed.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import render_template
from redis import Redis

from tests.support.hosts import TEST_KEYS, make_host_app
from tests.support.matrix import (
    ROLES,
    SIGNED_IN,
    WITH_COOKIE,
    World,
    build_world,
    call,
    is_success,
    our_routes,
)
from tests.support.people import make_people
from tests.support.web import csrf, sign_in_as
from tests.test_authorization_matrix import RULES
from vc_plugin.core.config import Settings
from vc_plugin.core.models import Base
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import AppointmentIn
from vc_plugin.domain.invitation_message import compose_invitation
from vc_plugin.domain.invitations import InvitationPayload
from vc_plugin.web.ratelimits import PREFIX, RateLimits

HOSTILE = "\"'><img src=x onerror=alert(1) data-xss>"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world = build_world(tmp_path_factory.mktemp("hardening"))
    yield world
    world.close()


def stored(world: World) -> str:
    """Every row of every table, as one digest: did a request change anything?"""
    world.quiesce()
    connection = sqlite3.connect(world.database)
    try:
        digest = hashlib.sha256()
        for (table,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
            for row in connection.execute(f'SELECT * FROM "{table}" ORDER BY rowid'):
                digest.update(repr((table, row)).encode())
        return digest.hexdigest()
    finally:
        connection.close()


# --- CSRF ------------------------------------------------------------------------------------------------


def test_every_state_changing_route_refuses_requests_without_the_csrf_token(world: World) -> None:
    """Without a token, or with another session's token, nothing changes and the answer is 400."""
    problems: list[str] = []
    checked = 0
    for route in our_routes(world.host.app):
        if not route.changes_state or route.websocket:
            continue
        allowed = [role for role in WITH_COOKIE if is_success(RULES[route.endpoint][role])] or ["admin"]
        for role in WITH_COOKIE:
            attempts = {"without a token": {"with_csrf": False}}
            if role in allowed:
                other = next(r for r in WITH_COOKIE if r != role)
                attempts["with another session's token"] = {"csrf_of": other}
            for how, options in attempts.items():
                world.restore()
                before = stored(world)
                response = call(world, route, role, **options)
                checked += 1
                # 401: an API call from a cookie that signs nobody in has nothing a forger could use.
                refused = {400} if role in SIGNED_IN or not route.endpoint.startswith("vc.api.") else {400, 401}
                if response.status_code not in refused or stored(world) != before:
                    problems.append(f"{route.method} {route.rule} as {role} {how}: {response.status_code}")
    world.restore()
    assert checked >= 20 * len(WITH_COOKIE)
    assert not problems, "\n".join(problems)


def test_an_api_request_with_an_authorization_header_never_uses_the_session(world: World) -> None:
    """The CSRF check is skipped for a bearer token; then the cookie must not count either."""
    for route in our_routes(world.host.app):
        if not (route.changes_state and route.endpoint.startswith("vc.api.")):
            continue
        world.restore()
        before = stored(world)
        response = call(world, route, "practitioner", with_csrf=False, headers={"Authorization": "Bearer forged"})
        assert response.status_code == 401, (route.rule, response.status_code)
        assert stored(world) == before
    world.restore()


def test_csrf_also_guards_hosts_that_sign_people_in_themselves(tmp_path: Path) -> None:
    """With a ``practitioner_loader`` the host's cookie signs people in, not ``vc_user``: a cross-site
    POST that carries that cookie must still need our CSRF token, on pages and on the JSON API."""
    from flask import request

    from vc_plugin import HostUser

    host = make_host_app(f"sqlite:///{tmp_path / 'vc.sqlite'}")
    try:

        @host.vc.practitioner_loader
        def load() -> HostUser | None:
            if request.cookies.get("host_login") == "alice":
                return HostUser(subject="alice", display_name="Dr. Alice", role="practitioner", organisation="haus")
            return None

        with host.app.app_context():
            Base.metadata.create_all(host.db.engine)
        client = host.app.test_client()
        client.set_cookie("host_login", "alice")
        start = "2030-01-07T10:00:00+01:00"
        token = csrf(client, "/vc/practice/")
        planned = client.post(
            "/vc/api/v1/appointments",
            json={"starts_at": start, "ends_at": "2030-01-07T10:30:00+01:00"},
            headers={"X-CSRFToken": token},
        )
        assert planned.status_code == 201, planned.get_data(as_text=True)
        appointment = planned.json["id"]
        forged = host.app.test_client()  # the victim's browser on another site's form: cookie, no token
        forged.set_cookie("host_login", "alice")
        assert forged.post(f"/vc/api/v1/appointments/{appointment}/cancel").status_code == 400
        assert forged.post(f"/vc/practice/appointments/{appointment}/cancel").status_code == 400
        assert client.get(f"/vc/api/v1/appointments/{appointment}").json["state"] == "planned"
        cancelled = client.post(f"/vc/api/v1/appointments/{appointment}/cancel", headers={"X-CSRFToken": token})
        assert cancelled.status_code == 200 and cancelled.json["state"] == "cancelled"
    finally:
        host.close()


# --- headers and inline code ------------------------------------------------------------------------------


class InlineCode(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would block: inline scripts, handlers, styles."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._script: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"<{tag} {name}=…>")
            if name in {"href", "src", "action", "formaction"} and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}=javascript:…>")
        if tag == "script":
            self._script = "" if "src" not in values and values.get("type") != "application/json" else None
        if tag == "style":
            self.found.append("<style>")

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            if self._script.strip():
                self.found.append("inline <script>")
            self._script = None


def csp(response: Any) -> dict[str, list[str]]:
    policy = response.headers.get("Content-Security-Policy", "")
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def pages(world: World) -> Iterator[tuple[str, str, Any]]:
    """Every GET route, requested by the first role that may see it."""
    for route in our_routes(world.host.app):
        if route.method != "GET" or route.websocket:
            continue
        role = next((r for r in ROLES if is_success(RULES[route.endpoint][r])), "anonymous")
        yield route.rule, role, call(world, route, role)


def test_every_page_carries_the_security_headers_and_no_inline_code(world: World) -> None:
    world.restore()
    html_pages = 0
    for rule, role, response in pages(world):
        where = f"{rule} as {role}"
        headers = response.headers
        policy = csp(response)
        assert policy.get("script-src") == ["'self'"], where
        assert policy.get("style-src") == ["'self'"], where
        assert policy.get("object-src") == ["'none'"] and policy.get("base-uri") == ["'none'"], where
        assert policy.get("frame-ancestors") == ["'none'"], where
        assert headers.get("Referrer-Policy") == "no-referrer", where
        assert headers.get("X-Content-Type-Options") == "nosniff", where
        permissions = dict(p.strip().split("=", 1) for p in headers.get("Permissions-Policy", "").split(","))
        media = "(self)" if rule.endswith(("/room", "/call")) else "()"  # only the pages with a call use media
        for feature in ("camera", "microphone", "display-capture"):
            assert permissions.get(feature) == media, (where, feature)
        assert "Strict-Transport-Security" not in headers, where  # plain http here
        if response.mimetype == "text/html":
            html_pages += 1
            assert headers.get("Cache-Control") == "no-store", where
            parser = InlineCode()
            parser.feed(response.get_data(as_text=True))
            assert not parser.found, (where, parser.found)
    assert html_pages >= 15


def test_frame_ancestors_hsts_and_the_hosts_own_pages(tmp_path: Path) -> None:
    host = make_host_app(
        f"sqlite:///{tmp_path / 'vc.sqlite'}",
        VC_PUBLIC_URL="https://praxis.example/",
        VC_FRAME_ANCESTORS="https://intranet.example",
    )

    with host.app.app_context():
        Base.metadata.create_all(host.db.engine)

    @host.app.get("/host-page")
    def host_page() -> str:
        return "<p>the host's own page</p>"

    try:
        client = host.app.test_client()
        ours = client.get("/vc/auth/sign-in", base_url="https://praxis.example")
        assert csp(ours)["frame-ancestors"] == ["https://intranet.example"]
        max_age = re.search(r"max-age=(\d+)", ours.headers["Strict-Transport-Security"])
        assert max_age and int(max_age.group(1)) >= 365 * 24 * 3600
        api = client.get("/vc/api/openapi.json", base_url="https://praxis.example")
        assert "Strict-Transport-Security" in api.headers and api.headers["Referrer-Policy"] == "no-referrer"
        theirs = client.get("/host-page", base_url="https://praxis.example")
        for header in ("Content-Security-Policy", "Permissions-Policy", "Strict-Transport-Security", "Referrer-Policy"):
            assert header not in theirs.headers, header
        missing = client.get("/vc/join/no-such-invitation", base_url="https://praxis.example")
        assert missing.status_code == 404 and "Content-Security-Policy" in missing.headers
    finally:
        host.close()


def test_redirect_targets_stay_on_this_site(world: World) -> None:
    world.restore()
    client = world.host.app.test_client()
    token = csrf(client)
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"):
        response = client.post("/vc/language", data={"csrf_token": token, "language": "de", "next": target})
        assert response.status_code == 302 and response.headers["Location"] == "/vc/", target


# --- rate limits, stored in Redis -------------------------------------------------------------------------


@pytest.fixture
def limited(redis_url: str, tmp_path: Path) -> Iterator[tuple[Any, Any, Any]]:
    host = make_host_app(
        f"sqlite:///{tmp_path / 'vc.sqlite'}",
        VC_REDIS_URL=redis_url,
        VC_RATELIMIT_CODE_ENTRY="3/minute",
        VC_RATELIMIT_API="5/minute",
        VC_RATELIMIT_JOIN="7/minute",
    )
    with host.app.app_context():
        Base.metadata.create_all(host.db.engine)
        people = make_people(host.state)
        start = host.state.clock.now() + timedelta(minutes=10)
        planned = host.state.appointments.plan(
            Principal.of(people.doc), AppointmentIn(starts_at=start, ends_at=start + timedelta(minutes=30))
        )
        yield host, people, planned
    host.close()


def limiter_keys(redis_url: str) -> list[str]:
    client = Redis.from_url(redis_url)
    try:
        return [key.decode() for key in client.keys("*limiter*")]
    finally:
        client.close()


def test_code_entry_is_limited_per_client_in_redis(limited, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    host, _, planned = limited
    link = f"/vc/join/{planned.invitations[0].invitation.public_id}"
    client = host.app.test_client()
    client.environ_base["REMOTE_ADDR"] = "192.0.2.17"
    token = csrf(client, link)
    form = {"csrf_token": token, "code": "AAAAA-AAAAA", "name": "Frau Test", "consent": "yes"}
    statuses = [client.post(link, data=form, headers={"Accept-Language": "de"}).status_code for _ in range(4)]
    assert statuses == [403, 403, 403, 429]
    refused = client.post(link, data=form, headers={"Accept-Language": "de"})
    assert refused.headers.get("Retry-After") and "Zu viele Versuche" in refused.get_data(as_text=True)
    other = host.app.test_client()
    other.environ_base["REMOTE_ADDR"] = "198.51.100.4"
    assert other.post(link, data={**form, "csrf_token": csrf(other, link)}).status_code == 403
    keys = limiter_keys(redis_url)
    assert keys, "the limits live in Redis"
    assert not [k for k in keys if "192.0.2.17" in k or "198.51.100.4" in k]  # HMACs, not addresses


def test_the_api_is_limited_per_token_and_per_person(limited, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    host, people, _ = limited
    _, first = host.state.api_tokens.create("praxis-nord", "one")
    _, second = host.state.api_tokens.create("praxis-nord", "two")
    client = host.app.test_client()
    paths = ["/vc/api/v1/appointments", "/vc/api/v1/practitioners"]  # one budget for all endpoints
    answers = [client.get(paths[n % 2], headers={"Authorization": f"Bearer {first}"}).status_code for n in range(6)]
    assert answers == [200] * 5 + [429]
    refused = client.get(paths[0], headers={"Authorization": f"Bearer {first}"})
    assert refused.json["error"] == "too_many_requests" and refused.headers.get("Retry-After")
    assert client.get(paths[0], headers={"Authorization": f"Bearer {second}"}).status_code == 200
    browser = host.app.test_client()
    sign_in_as(browser, people.doc, host.state.clock.now().timestamp())
    assert browser.get(paths[1]).status_code == 200  # same address, another person: its own budget
    keys = limiter_keys(redis_url)
    assert not [k for k in keys if first in k or second in k or people.doc.public_id in k]


def test_joining_is_limited_per_client(limited) -> None:  # type: ignore[no-untyped-def]
    host, _, planned = limited
    count = 7  # VC_RATELIMIT_JOIN of the fixture
    client = host.app.test_client()
    client.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    path = f"/vc/ws/room/{planned.appointment.public_id}"
    origin = {"Origin": "http://127.0.0.1", "Upgrade": "websocket", "Connection": "Upgrade"}
    statuses = [client.get(path, headers=origin).status_code for _ in range(count + 1)]
    assert set(statuses[:count]) == {401} and statuses[count] == 429
    other = host.app.test_client()
    other.environ_base["REMOTE_ADDR"] = "203.0.113.10"
    assert other.get(path, headers=origin).status_code == 401


def test_a_handshake_counts_against_every_join_limit_and_an_outage_refuses_nobody(redis_url: str) -> None:
    """Handshakes are counted without reading the window back (one round trip per limit): each
    limit still counts each handshake, and either limit refuses once it is used up."""
    settings = Settings(encryption_keys=[TEST_KEYS[0]], redis_url=redis_url, ratelimit_join="3/minute;5/hour")
    limits = RateLimits(settings)
    assert [limits.allowed(limits.join, "join", "client-a") for _ in range(4)] == [True] * 3 + [False]
    hour = limits.window.get_window_stats(limits.join[1], PREFIX, "join", "client-a")
    assert hour.remaining == 1  # the refused handshake counted in the hour too: only the minute refused it
    assert limits.allowed(limits.join, "join", "client-b")
    away = RateLimits(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    assert away.allowed(away.join, "join", "client-a")  # logged; an outage must not lock people out


# --- hostile names --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world = build_world(tmp_path_factory.mktemp("hostile"), hostile=HOSTILE)
    yield world
    world.close()


def test_hostile_names_are_text_on_every_page(hostile_world: World) -> None:
    """Practitioners, organisation, label, token name and patient all carry markup; no page lets it through."""
    world = hostile_world
    shown = set()
    for route in our_routes(world.host.app):
        if route.method != "GET" or route.websocket:
            continue
        for role in ROLES:
            world.restore()
            response = call(world, route, role)
            body = response.get_data(as_text=True)
            if response.mimetype != "text/html":
                # Downloads and JSON: data, never rendered (and nosniff keeps browsers from guessing).
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                continue
            assert "<img src=x" not in body, f"{route.rule} as {role} lets markup through"
            if "&lt;img src=x" in body or "\\u003cimg src=x" in body:
                shown.add(route.endpoint)
    # The names do appear: on the check-in page, the room, the dashboard, the appointment, the admin page.
    assert {
        "vc.join.link",
        "vc.join.room",
        "vc.practice.dashboard",
        "vc.practice.appointment",
        "vc.practice.appointments",
        "vc.admin.organisation",
    } <= shown, shown
    world.restore()


def test_hostile_practitioner_name_in_the_invitation_mail(hostile_world: World) -> None:
    world = hostile_world
    app = world.host.app
    with app.test_request_context("/"):
        from vc_plugin.core.models import Invitation

        invitation = world.host.db.session.query(Invitation).filter_by(public_id=world.invitation_a).one()
        payload = InvitationPayload(
            key="k",
            code="AAAAA-AAAAA",
            link="https://praxis.example/vc/join/x#code=AAAAA-AAAAA",
            email="a@b.c",
            phone=None,
        )
        message: EmailMessage = compose_invitation(
            world.host.state.settings,
            invitation,
            invitation.appointment.practitioner,
            payload,
            sender_domain="praxis.example",
            render=render_template,
        )
    html = next(part for part in message.walk() if part.get_content_type() == "text/html").get_content()
    assert "<img src=x" not in html and "&lt;img src=x" in html
    calendar = next(part for part in message.walk() if part.get_content_type() == "text/calendar").get_content()
    calendar_text = calendar if isinstance(calendar, str) else calendar.decode()
    assert calendar_text.count("BEGIN:VEVENT") == 1 and "\nATTENDEE" not in calendar_text


# --- what the database cannot hold -----------------------------------------------------------------------


def test_nul_characters_and_far_off_years_are_refused_before_the_database(pg_url: str) -> None:
    """PostgreSQL refuses NUL in text, and year 9999 plus a retention period overflows: a clean 4xx each."""
    host = make_host_app(pg_url)
    try:
        boss = host.app.test_client()
        with host.app.app_context():
            people = make_people(host.state)
            sign_in_as(boss, people.boss, host.state.clock.now().timestamp())
            doc = people.doc.public_id
        token = csrf(boss, "/vc/admin/")
        tomorrow = (host.state.clock.now() + timedelta(days=1)).strftime("%Y-%m-%d")
        plan = {"csrf_token": token, "date": tomorrow, "time": "10:00", "duration": "30", "p0-kind": "patient"}
        requests = [
            (boss.get, "/vc/join/%00", {}, 400),
            (boss.get, "/vc/practice/appointments/a%00b", {}, 400),
            (boss.get, "/vc/api/v1/appointments?practitioner=%00", {}, 400),
            (boss.post, "/vc/admin/name", {"data": {"csrf_token": token, "name": "Praxis\x00"}}, 422),
            (boss.post, "/vc/admin/tokens", {"data": {"csrf_token": token, "name": "Werkzeug\x00"}}, 422),
            (boss.post, "/vc/practice/appointments/new", {"data": {**plan, "practitioner": "x\x00"}}, 400),
            (boss.post, "/vc/practice/appointments/new", {"data": {**plan, "date": "9500-01-01"}}, 400),
        ]
        for send, path, options, status in requests:
            response = send(path, **options)
            assert response.status_code == status, (path, options, response.status_code)
        api = boss.post(
            "/vc/api/v1/appointments",
            json={
                "practitioner": doc + "\x00",
                "starts_at": "2030-01-07T10:00:00+01:00",
                "ends_at": "2030-01-07T10:30:00+01:00",
            },
            headers={"X-CSRFToken": token},
        )
        assert api.status_code == 422 and api.json["fields"] == {"practitioner": "contains a NUL character"}
    finally:
        host.close()
