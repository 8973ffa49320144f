"""vc_plugin inside a real Flask-AppBuilder 5 application (``tests/hosts/fab/app.py``), served by gunicorn.

The whole journey through the host's own login: FAB's login form, our pages inside FAB's layout,
planning, the invitation mail over SMTP, the patient's check-in, the waiting room and a real aiortc
call, with FAB's session cookie as the practitioner's identity. Besides: FAB's session stays FAB's,
our headers win over Talisman's, our code-entry limit holds although FAB switches Flask-Limiter
off, FAB's language choice is honoured, FAB users without the role get our 403 page, anonymous
people land on FAB's login form, and the Bearer-token API works under Flask-WTF's CSRFProtect.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from requests.adapters import HTTPAdapter
from sqlalchemy import select

from tests.hosts.fab.app import appbuilder, create_app
from tests.support.databases import new_postgres_database
from tests.support.live import LiveServer
from tests.support.processes import wait_for
from tests.support.signal_client import check_in, consultation
from tests.support.smtp import SmtpServer
from tests.support.web import plan_form
from vc_plugin import VideoConsultation
from vc_plugin.core.models import Invitation
from vc_plugin.web.state import EXTENSION_KEY, VCState

pytestmark = pytest.mark.slow

DOCTOR = ("doc", "Maria", "Berg", "pw-doc-4711")
CLERK = ("clerk", "Karl", "Konto", "pw-clerk-4711")  # signed in with FAB, but not a practitioner
PATIENT = "patient.mueller@example.org"
CONFIG = {
    "VC_PUBLIC_URL": None,  # testing mode: links take the request's address
    "VC_RATELIMIT_CODE_ENTRY": "3/minute",
    "VC_MAIL_SENDER": "Praxis Intranet <praxis@example.net>",
    "VC_DISPLAY_TIMEZONE": "UTC",  # the plan form's times: no daylight-saving gap at any hour
}
#: Another loopback address: a second client for the per-client limits (Linux routes all of 127/8 to lo).
OTHER_CLIENT = "127.0.0.2"


@dataclass
class World:
    server: LiveServer
    app: Flask  # the same host app in this process: tables, FAB users, API tokens, lookups
    smtp: SmtpServer

    @property
    def state(self) -> VCState:
        return self.app.extensions[EXTENSION_KEY]


@pytest.fixture(scope="module")
def fab_database() -> Iterator[str]:
    """A database of its own: FAB's ``ab_*`` tables stay out of the one other tests share."""
    with new_postgres_database("vc_fab") as url:
        yield url


@pytest.fixture(scope="module")
def world(fab_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    smtp = SmtpServer().start()
    config = {**CONFIG, "VC_SMTP_URL": smtp.url}
    app = create_app(fab_database, config)  # FAB creates its tables and permissions here, before gunicorn starts
    VideoConsultation.create_tables(app)
    with app.app_context():
        sm = appbuilder.sm
        practitioners = sm.add_role("Practitioner")  # the role the host maps to ours
        accounting = sm.add_role("Accounting")
        for (username, first, last, password), role in ((DOCTOR, practitioners), (CLERK, accounting)):
            assert sm.add_user(username, first, last, f"{username}@praxis.example", role, password=password)
    server = LiveServer(
        fab_database, config, tmp_path_factory.mktemp("fab-host"), app="tests.hosts.fab.app:create_app()"
    )
    server.start()
    try:
        yield World(server, app, smtp)
    finally:
        server.stop()
        smtp.stop()
        app.extensions[EXTENSION_KEY].close()
        with app.app_context():
            app.extensions["sqlalchemy"].engine.dispose()


# --- helpers ---------------------------------------------------------------------------------

CSRF_INPUT = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def csrf_from(html: str) -> str:
    """Ours or FAB's (whose field carries ``type="hidden"`` between name and value)."""
    found = CSRF_INPUT.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


def fab_login(world: World, user: tuple[str, str, str, str], next_path: str | None = None) -> requests.Session:
    """Sign in through FAB's own login form, as a browser would; FAB then sends it to ``next_path``."""
    browser = requests.Session()
    username, *_, password = user
    login = f"{world.server.url}/login/" + (f"?next={requests.utils.quote(next_path, safe='')}" if next_path else "")
    form = browser.get(login, timeout=10)
    assert form.status_code == 200 and 'name="username"' in form.text
    done = browser.post(
        login,
        data={"csrf_token": csrf_from(form.text), "username": username, "password": password},
        allow_redirects=False,
        timeout=10,
    )
    assert done.status_code == 302, done.text[:300]
    assert urlsplit(done.headers["Location"]).path == (next_path or "/"), done.headers["Location"]
    assert "session" in browser.cookies, "FAB signs in with its own session cookie"
    return browser


def cookie_header(browser: requests.Session) -> str:
    """Every cookie the browser holds for our paths: FAB's ``session`` and our ``vc_session``."""
    return "; ".join(f"{c.name}={c.value}" for c in browser.cookies)


def signed_in_to_fab(world: World, browser: requests.Session, full_name: str) -> bool:
    """FAB's own index page shows the person as signed in (name and Logout in FAB's navbar)."""
    page = browser.get(f"{world.server.url}/", headers={"Accept-Language": "en"}, timeout=10)
    return page.status_code == 200 and full_name in page.text and "/logout/" in page.text


def inline_scripts(html: str) -> list[str]:
    """``<script>`` elements without ``src`` that a browser would run (JSON data blocks excluded)."""
    return [
        attributes + body.strip()[:80]
        for attributes, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
        if "src=" not in attributes and "application/json" not in attributes
    ]


def plan_by_form(world: World, browser: requests.Session, email: str) -> requests.Response:
    """Our plan form, as the practitioner fills it in: starts in five minutes, so check-in is open."""
    page = browser.get(f"{world.server.url}/vc/practice/appointments/new", timeout=10)
    assert page.status_code == 200, page.text[:300]
    start = world.state.clock.now() + timedelta(minutes=5)  # the host's clock, the one its server runs on
    return browser.post(
        f"{world.server.url}/vc/practice/appointments/new",
        data=plan_form(csrf_from(page.text), start, email, language="en"),
        headers={"Accept-Language": "en"},
        timeout=10,
    )


def api_token(world: World) -> dict[str, str]:
    with world.app.app_context():
        _, token = world.state.api_tokens.create(world.state.settings.default_organisation, "case tool")
    return {"Authorization": f"Bearer {token}"}


def plan_by_api(world: World, headers: dict[str, str]) -> dict[str, Any]:
    """An appointment planned by a host's back end with its token; the doctor is known from a sign-in."""
    people = requests.get(f"{world.server.url}/vc/api/v1/practitioners", headers=headers, timeout=10)
    assert people.status_code == 200, people.text
    [doctor] = [p for p in people.json()["practitioners"] if p["display_name"] == "Maria Berg"]
    start = world.state.clock.now() + timedelta(minutes=5)  # the host's clock, the one its server runs on
    created = requests.post(
        f"{world.server.url}/vc/api/v1/appointments",
        json={
            "practitioner": doctor["id"],
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(minutes=30)).isoformat(),
        },
        headers=headers,
        timeout=10,
    )
    assert created.status_code == 201, f"{created.status_code} {created.text[:300]}"
    return created.json()


def appointment_of(world: World, invitation_id: str) -> str:
    with world.app.app_context():
        session = world.state.db.session
        invitation = session.scalars(select(Invitation).where(Invitation.public_id == invitation_id)).one()
        appointment = invitation.appointment.public_id
        session.remove()
        return appointment


class FromAddress(HTTPAdapter):
    """Connect from another local address: the server sees another client."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


# --- the host's login, cookie and layout -----------------------------------------------------


def test_anonymous_people_land_on_fabs_login_form_and_come_back(world: World) -> None:
    anonymous = requests.Session()
    first = anonymous.get(f"{world.server.url}/vc/practice/", allow_redirects=False, timeout=10)
    assert first.status_code == 302, first.text[:300]
    target = urlsplit(first.headers["Location"])
    assert target.path == "/login/" and parse_qs(target.query)["next"] == ["/vc/practice/"]
    followed = anonymous.get(f"{world.server.url}/vc/practice/", timeout=10)
    assert len(followed.history) == 1, [r.headers.get("Location") for r in followed.history]  # no loop
    assert followed.status_code == 200 and urlsplit(followed.url).path == "/login/"
    assert 'name="username"' in followed.text and 'name="password"' in followed.text

    # Signing in on that form returns to where the person wanted to go.
    browser = fab_login(world, DOCTOR, next_path="/vc/practice/")
    assert browser.get(f"{world.server.url}/vc/practice/", allow_redirects=False, timeout=10).status_code == 200


def test_our_pages_render_in_fabs_layout_and_fab_keeps_its_session(world: World) -> None:
    assert world.app.session_interface.get_cookie_name(world.app) == "session"  # FAB's (Flask's) default
    browser = fab_login(world, DOCTOR)
    [fab_cookie] = [c for c in browser.cookies if c.name == "session"]
    assert fab_cookie.path == "/" and not fab_cookie.secure  # as FAB (Flask) sets it on plain http

    dashboard = browser.get(f"{world.server.url}/vc/practice/", headers={"Accept-Language": "en"}, timeout=10)
    assert dashboard.status_code == 200, dashboard.text[:500]
    html = dashboard.text
    # FAB's layout: its stylesheet, its navbar with the app's name and the signed-in user, its scripts.
    assert "/static/appbuilder/css/bootstrap.min.css" in html and 'class="navbar' in html
    assert "Praxis Intranet" in html and "Maria Berg" in html and "/logout/" in html
    assert "/static/appbuilder/js/bootstrap.min.js" in html
    # Ours inside it: stylesheet in the head, our content, our script at the end.
    head, body = html.split("</head>", 1)
    assert '<link rel="stylesheet" href="/vc/static/vc.css">' in head
    assert 'class="vc-hosted' in body and "Hello, Maria Berg" in body
    assert '<script type="module" src="/vc/static/js/pages/dashboard.js"></script>' in body
    # Our CSP forbids inline scripts: FAB's layout has none that would be blocked on our pages.
    assert inline_scripts(html) == []

    # Our headers, not Talisman's (which FAB's own pages carry, with a nonce).
    csp = dashboard.headers["Content-Security-Policy"]
    assert "media-src 'self' blob: mediastream:" in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'self';" in csp and "nonce-" not in csp
    assert dashboard.headers["Permissions-Policy"].startswith("camera=(), microphone=()")
    assert dashboard.headers["Cache-Control"] == "no-store"
    host_page = browser.get(f"{world.server.url}/", timeout=10)
    assert "nonce-" in host_page.headers["Content-Security-Policy"]
    assert "media-src" not in host_page.headers["Content-Security-Policy"]

    # Our cookie is our own, beside FAB's: a different name, only for our paths.
    names = {c.name: c.path for c in browser.cookies}
    assert names.get("session") == "/" and names.get("vc_session", "/vc") == "/vc"
    plan = browser.get(f"{world.server.url}/vc/practice/appointments/new", timeout=10)
    assert plan.status_code == 200 and {c.name: c.path for c in browser.cookies}["vc_session"] == "/vc"
    assert all("session=" not in v or v.startswith("vc_session=") for v in plan.raw.headers.getlist("Set-Cookie"))

    # After our pages, FAB still knows who is signed in.
    assert signed_in_to_fab(world, browser, "Maria Berg")


def test_a_fab_user_without_the_role_gets_our_403_page_and_stays_signed_in(world: World) -> None:
    browser = fab_login(world, CLERK)
    for path in ("/vc/practice/", "/vc/practice/appointments/new"):
        refused = browser.get(f"{world.server.url}{path}", headers={"Accept-Language": "en"}, timeout=10)
        assert refused.status_code == 403, (path, refused.status_code, refused.text[:300])
        assert "No access to video consultations" in refused.text
        assert 'class="navbar' in refused.text and "Karl Konto" in refused.text  # inside FAB's layout
        assert len(refused.history) == 0  # not sent to the login page (it would send them straight back)
    assert signed_in_to_fab(world, browser, "Karl Konto")


def test_the_language_chosen_in_fab_is_used_on_our_pages(world: World) -> None:
    browser = fab_login(world, DOCTOR)
    plan = f"{world.server.url}/vc/practice/appointments/new"
    assert browser.get(f"{world.server.url}/lang/de", timeout=10).status_code == 200  # FAB's language menu
    german = browser.get(plan, headers={"Accept-Language": "en"}, timeout=10)
    assert german.status_code == 200 and "<h1>Termin planen</h1>" in german.text
    assert browser.get(f"{world.server.url}/lang/en", timeout=10).status_code == 200
    english = browser.get(plan, headers={"Accept-Language": "de"}, timeout=10)
    assert english.status_code == 200 and "<h1>Plan appointment</h1>" in english.text


def test_fabs_layout_keeps_its_own_translations_on_our_pages(world: World) -> None:
    browser = fab_login(world, DOCTOR)
    assert browser.get(f"{world.server.url}/lang/de", timeout=10).status_code == 200
    assert "Abmelden" in browser.get(f"{world.server.url}/", timeout=10).text  # FAB's German "Logout"
    ours = browser.get(f"{world.server.url}/vc/practice/appointments/new", timeout=10)
    assert "<h1>Termin planen</h1>" in ours.text
    assert "Abmelden" in ours.text, "FAB's navbar on our page says " + ", ".join(
        re.findall(r'fa-fw fa-(?:user|sign-out)"></span>([^<]*)<', ours.text)
    )


# --- the journey -----------------------------------------------------------------------------


def test_plan_invite_check_in_wait_admit_and_call(world: World) -> None:
    browser = fab_login(world, DOCTOR)
    planned = plan_by_form(world, browser, PATIENT)
    assert planned.status_code == 200 and "Access codes" in planned.text, planned.text[:500]
    assert 'class="navbar' in planned.text  # still FAB's layout

    wait_for(lambda: any(PATIENT in to for to, _ in world.smtp.received()), 15, what="the invitation mail")
    [mail] = [message for to, message in world.smtp.received() if PATIENT in to]
    plain = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    links = re.findall(r"https?://[^\s\"'<>]+", plain + html)
    hrefs = re.findall(r'(?:href|src)="([^"]+)"', html)
    assert links and hrefs
    root = f"{world.server.url}/vc/"
    assert all(link.startswith(root) for link in links + hrefs), [x for x in links + hrefs if not x.startswith(root)]
    found = re.search(rf"{re.escape(world.server.url)}/vc/join/([\w-]+)#code=([A-Z0-9-]+)", plain)
    assert found, plain
    invitation_id, code = found.groups()
    appointment = appointment_of(world, invitation_id)

    call_page = browser.get(f"{world.server.url}/vc/practice/appointments/{appointment}/call", timeout=10)
    assert call_page.status_code == 200 and 'class="navbar' in call_page.text
    assert call_page.headers["Permissions-Policy"].startswith("camera=(self), microphone=(self)")
    assert "media-src 'self' blob: mediastream:" in call_page.headers["Content-Security-Policy"]
    assert inline_scripts(call_page.text) == []

    patient_cookie = check_in(world.server.url, invitation_id, code, name="Frau Müller")
    room = requests.get(
        f"{world.server.url}/vc/join/{invitation_id}/room",
        headers={"Cookie": patient_cookie},
        allow_redirects=False,
        timeout=10,
    )
    assert room.status_code == 200, room.headers.get("Location")
    assert 'class="navbar' not in room.text and "Maria Berg" in room.text  # patients see our own calm page
    assert room.headers["Permissions-Policy"].startswith("camera=(self), microphone=(self)")
    assert inline_scripts(room.text) == []
    asyncio.run(_call(world, appointment, patient_cookie, cookie_header(browser)))
    assert signed_in_to_fab(world, browser, "Maria Berg")


async def _call(world: World, appointment: str, patient_cookie: str, doctor_cookie: str) -> None:
    seen = await consultation(world.server.ws_url, appointment, patient_cookie, doctor_cookie)
    assert seen["welcome"]["position"] == 1 and seen["welcome"]["appointment"]["practitioner_name"] == "Maria Berg"
    assert seen["arrived"]["member"]["name"] == "Frau Müller"


# --- our limits and our API, beside FAB's extensions -----------------------------------------


def test_code_entry_is_limited_although_fab_switches_flask_limiter_off(world: World) -> None:
    assert world.app.config["RATELIMIT_ENABLED"] is False  # FAB's default
    fab_login(world, DOCTOR).get(f"{world.server.url}/vc/practice/", timeout=10)  # the doctor is known to us
    [issued] = plan_by_api(world, api_token(world))["invitations"]
    join = f"{world.server.url}/vc/join/{issued['id']}"

    with socket.socket() as probe:
        try:
            probe.bind((OTHER_CLIENT, 0))
        except OSError as error:
            pytest.fail(f"this test needs a second loopback address, {OTHER_CLIENT}: {error}")
    guesser = requests.Session()
    guesser.mount("http://", FromAddress(OTHER_CLIENT))
    token = csrf_from(guesser.get(join, timeout=10).text)
    answers = [
        guesser.post(join, data={"csrf_token": token, "code": "AAAAA-AAAAA", "name": "X", "consent": "yes"}, timeout=10)
        for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [403, 403, 403, 429]
    assert answers[-1].headers["X-RateLimit-Limit"] == "3" and int(answers[-1].headers["Retry-After"]) > 0

    # Another client (the patient) is not affected.
    assert "vc_session=" in check_in(world.server.url, issued["id"], issued["code"])


def test_the_bearer_token_api_works_under_csrfprotect(world: World) -> None:
    # FAB's forms are protected by the host's CSRFProtect: a POST without a token is refused.
    refused = requests.post(f"{world.server.url}/login/", data={"username": "doc", "password": "x"}, timeout=10)
    assert refused.status_code == 400 and "CSRF" in refused.text
    fab_login(world, DOCTOR).get(f"{world.server.url}/vc/practice/", timeout=10)  # the doctor is known to us
    created = plan_by_api(world, api_token(world))
    assert created["invitations"][0]["link"].startswith(f"{world.server.url}/vc/join/")


def test_token_api_calls_leave_the_hosts_session_alone(world: World) -> None:
    listed = requests.get(f"{world.server.url}/vc/api/v1/practitioners", headers=api_token(world), timeout=10)
    assert listed.status_code == 200
    assert "Set-Cookie" not in listed.headers, listed.headers["Set-Cookie"]
