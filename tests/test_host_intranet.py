"""vc_plugin in an ordinary intranet (tests/hosts/intranet): the mount, a loader and one setting.

The intranet brings its own Flask-Login sign-in, a ``CSRFProtect`` over everything, Flask-Talisman,
Flask-Babel with a language per user and Flask-Limiter with a default limit per address. Installing
vc_plugin must change none of it outside our routes, and none of it may weaken ours inside them.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from tests.support.hosts import TEST_KEYS
from tests.support.live import LiveServer
from tests.support.processes import wait_for
from tests.support.signal_client import check_in, consultation
from tests.support.smtp import SmtpServer
from tests.support.web import csrf_from, plan_form
from vc_plugin import ConfigurationError, VideoConsultation
from vc_plugin.core.clock import SystemClock
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import AppointmentIn
from vc_plugin.web.state import EXTENSION_KEY

HOST_COOKIE = "intranet_session"
PEOPLE = {
    # username: (full name, department, language)
    "berg": ("Dr. Maria Berg", "medicine", "de"),
    "miller": ("Dr. Anne Miller", "medicine", "en"),
    "kasse": ("Klaus Kasse", "accounts", "de"),
}


def intranet_config(database_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SESSION_COOKIE_NAME": HOST_COOKIE,
        "TESTING": True,
        "VC_ENCRYPTION_KEYS": [TEST_KEYS[0]],
        **extra,
    }


def make_intranet(database_url: str, **extra: Any) -> Flask:
    from tests.hosts.intranet.app import User, create_app, db

    app = create_app(intranet_config(database_url, **extra))
    with app.app_context():
        db.create_all()
        if EXTENSION_KEY in app.extensions:
            VideoConsultation.create_tables(app)
        for username, (name, department, language) in PEOPLE.items():
            if db.session.scalar(db.select(User).filter_by(username=username)) is None:
                user = User(username=username, full_name=name, department=department, language=language)
                user.set_password(f"{username}-password")
                db.session.add(user)
        db.session.commit()
    return app


def plan_for_host_user(app: Flask, state: Any, subject: str) -> tuple[str, str]:
    """An appointment starting now for the host user ``subject`` (signed in once before): invitation id, code."""
    with app.test_request_context():  # links take the request's address: the host sets no VC_PUBLIC_URL
        practitioner = state.directory.by_subject("host", subject)
        start = state.clock.now()
        planned = state.appointments.plan(
            Principal.of(practitioner), AppointmentIn(starts_at=start, ends_at=start + timedelta(minutes=30))
        )
        issued = planned.invitations[0]
        return issued.invitation.public_id, issued.code


def our_csrf(page: str) -> str:
    """Our token on a page inside the host's layout (whose own forms carry the host's token)."""
    return csrf_from(page.split('class="vc-hosted', 1)[1])


def sign_in(client: FlaskClient, username: str) -> None:
    page = client.get("/login").get_data(as_text=True)
    answer = client.post(
        "/login", data={"csrf_token": csrf_from(page), "username": username, "password": f"{username}-password"}
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)


@pytest.fixture
def intranet(tmp_path: Path) -> Iterator[Flask]:
    yield make_intranet(f"sqlite:///{tmp_path / 'intranet.sqlite'}", VC_RATELIMIT_CODE_ENTRY="3/minute")


def test_installing_vc_plugin_keeps_the_hosts_cookie_and_signs_nobody_out(tmp_path):
    database = f"sqlite:///{tmp_path / 'intranet.sqlite'}"
    before = make_intranet(database, INTRANET_WITH_VC=False).test_client()
    sign_in(before, "berg")
    host_cookie = before.get_cookie(HOST_COOKIE)
    assert host_cookie is not None

    after = make_intranet(database).test_client()  # the deploy that adds vc_plugin
    after.set_cookie(HOST_COOKIE, host_cookie.value)
    home = after.get("/")
    assert home.status_code == 200 and "Willkommen, Dr. Maria Berg" in home.get_data(as_text=True)
    ours = after.get("/vc/practice/")
    assert ours.status_code == 200, "signed in with the host is signed in with us"
    cookies = ours.headers.getlist("Set-Cookie")
    assert not [c for c in cookies if c.startswith(f"{HOST_COOKIE}=")], "our pages leave the host's cookie alone"
    assert [c for c in cookies if c.startswith("vc_session=") and "Path=/vc" in c], cookies
    assert after.application.config["SESSION_COOKIE_NAME"] == HOST_COOKIE
    assert after.get("/").status_code == 200, "still signed in with the host after our pages"


def test_the_hosts_extensions_do_not_weaken_ours_on_our_routes(intranet):
    client = intranet.test_client()
    sign_in(client, "berg")
    host_page = client.get("/")
    assert host_page.headers["Content-Security-Policy"] == "default-src 'self'", "the host's own policy, untouched"
    ours = client.get("/vc/practice/")
    policy = ours.headers["Content-Security-Policy"]
    assert "media-src 'self' blob: mediastream:" in policy and "frame-ancestors 'none'" in policy
    assert "object-src 'none'" in policy and "base-uri 'none'" in policy and "form-action 'self'" in policy
    assert ours.headers.getlist("Content-Security-Policy") == [policy], "one policy, ours"
    assert "camera=()" in ours.headers["Permissions-Policy"]


def test_code_entry_is_limited_and_the_hosts_limit_does_not_count_our_pages(intranet):
    state = intranet.extensions[EXTENSION_KEY]
    doctor = intranet.test_client()
    sign_in(doctor, "berg")
    doctor.get("/vc/practice/")  # provisions the practitioner
    invitation_id, _code = plan_for_host_user(intranet, state, "1")
    patient = intranet.test_client()
    patient.environ_base["REMOTE_ADDR"] = "192.0.2.50"
    link = f"/vc/join/{invitation_id}"
    # The host allows 50 requests an hour per address; a practice behind one address makes more.
    for _ in range(60):
        assert patient.get(link).status_code == 200
    form = {"csrf_token": csrf_from(patient.get(link).get_data(as_text=True)), "code": "AAAAA-AAAAA", "name": "X"}
    statuses = [patient.post(link, data={**form, "consent": "yes"}).status_code for _ in range(4)]
    assert statuses == [403, 403, 403, 429], "our limit on code entry, whatever the host's limiter says"
    # The host's limiter still guards the host's own pages.
    host_statuses = {patient.get("/login").status_code for _ in range(55)}
    assert 429 in host_statuses


def test_the_hosts_language_choice_is_honoured(intranet):
    english = intranet.test_client()
    sign_in(english, "miller")
    page = english.get("/vc/practice/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert 'lang="en"' in page and "Plan appointment" in page
    german = intranet.test_client()
    sign_in(german, "berg")
    page = german.get("/vc/practice/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'lang="de"' in page and "Termin planen" in page
    # A choice made on our pages wins over the host's.
    token = our_csrf(page)
    german.post("/vc/language", data={"csrf_token": token, "language": "en", "next": "/vc/practice/"})
    assert "Plan appointment" in german.get("/vc/practice/").get_data(as_text=True)


def test_our_pages_sit_in_the_hosts_layout_with_their_scripts(intranet):
    client = intranet.test_client()
    sign_in(client, "berg")
    page = client.get("/vc/practice/").get_data(as_text=True)
    assert '<nav class="intranet-nav">Intranet · Dr. Maria Berg</nav>' in page, "the host's layout"
    assert "/vc/static/vc.css" in page
    assert re.search(r'<script type="module" src="/vc/static/js/pages/[a-z_]+\.js', page), "our page script"
    assert 'class="vc-language"' in page, "the language switch"
    assert "/vc/auth/sign-out" not in page, "the host's sign-out is the one that counts"
    # The layout's own form carries the host's CSRF token (Flask-WTF's csrf_token(), not ours) and works.
    logout = re.search(r'class="intranet-logout">\s*<input type="hidden" name="csrf_token" value="([^"]+)"', page)
    assert logout, "the host's sign-out form is in the layout"
    assert client.post("/logout", data={"csrf_token": logout.group(1)}).status_code == 302
    assert client.get("/").status_code == 302, "signed out of the host"
    # Patients get our own calm page, not the intranet's menus.
    state = intranet.extensions[EXTENSION_KEY]
    invitation_id, _ = plan_for_host_user(intranet, state, "1")
    patient_page = intranet.test_client().get(f"/vc/join/{invitation_id}").get_data(as_text=True)
    assert "intranet-nav" not in patient_page and 'class="vc-header"' in patient_page


def test_a_wrong_block_name_is_an_error_that_names_it(tmp_path):
    app = make_intranet(
        f"sqlite:///{tmp_path / 'intranet.sqlite'}",
        VC_BASE_TEMPLATE_BLOCKS={"head": "head", "content": "main", "scripts": "scripts"},
    )
    client = app.test_client()
    sign_in(client, "berg")
    with pytest.raises(ConfigurationError, match=r"names main, which layout.html does not define .*content"):
        client.get("/vc/practice/")


def test_nobody_signed_in_goes_to_the_hosts_login_and_a_user_without_access_gets_403(intranet):
    anonymous = intranet.test_client()
    sent = anonymous.get("/vc/practice/appointments/new")
    assert sent.status_code == 302 and sent.headers["Location"] == "/login?next=%2Fvc%2Fpractice%2Fappointments%2Fnew"
    login = anonymous.get(sent.headers["Location"])
    assert login.status_code == 200 and "intranet-login" in login.get_data(as_text=True)
    assert anonymous.get("/vc/auth/sign-in?next=/vc/practice/").headers["Location"].startswith("/login?next=")

    clerk = intranet.test_client()
    sign_in(clerk, "kasse")
    refused = clerk.get("/vc/practice/", headers={"Accept-Language": "en"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 403 and "Kein Zugang zur Videosprechstunde" in text, "in the clerk's language"
    assert "identity provider" not in text
    assert clerk.get("/vc/auth/sign-in", headers={"Accept-Language": "en"}).status_code == 403, "no loop"
    assert clerk.get("/").status_code == 200, "still signed in with the host"


def test_the_token_api_works_under_the_hosts_csrf_protection(intranet):
    state = intranet.extensions[EXTENSION_KEY]
    doctor = intranet.test_client()
    sign_in(doctor, "berg")
    doctor.get("/vc/practice/")
    with intranet.app_context():
        practitioner = state.directory.by_subject("host", "1")
        _, token = state.api_tokens.create(practitioner.organisation.slug, "case tool")
        start = SystemClock().now() + timedelta(days=1)
        body = {
            "practitioner": practitioner.public_id,
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(minutes=30)).isoformat(),
        }
    created = intranet.test_client().post(
        "/vc/api/v1/appointments", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    # The host's CSRF protection still guards the host's own forms.
    assert intranet.test_client().post("/login", data={"username": "berg"}).status_code == 400


# --- the whole journey over real sockets -----------------------------------------------------------


@pytest.fixture
def served_intranet(tmp_path: Path) -> Iterator[tuple[LiveServer, SmtpServer]]:
    database = f"sqlite:///{tmp_path / 'intranet.sqlite'}"
    smtp = SmtpServer().start()
    config = intranet_config(database, VC_SMTP_URL=smtp.url, VC_PUBLIC_URL=None, VC_DISPLAY_TIMEZONE="UTC")
    make_intranet(database)  # tables and people
    server = LiveServer(
        database,
        {},
        tmp_path,
        app="tests.hosts.intranet.app:create_app()",
        env={"INTRANET_CONFIG": json.dumps(config)},
        log_name="intranet",
    ).start()
    try:
        yield server, smtp
    finally:
        server.stop()
        smtp.stop()


def test_the_whole_journey_in_the_intranet(served_intranet):
    server, smtp = served_intranet
    doctor = requests.Session()
    login = doctor.get(f"{server.url}/login", timeout=10)
    signed_in = doctor.post(
        f"{server.url}/login",
        data={"csrf_token": csrf_from(login.text), "username": "berg", "password": "berg-password"},
        timeout=10,
    )
    assert signed_in.status_code == 200 and "Willkommen" in signed_in.text
    form_page = doctor.get(f"{server.url}/vc/practice/appointments/new", timeout=10)
    assert form_page.status_code == 200 and "intranet-nav" in form_page.text
    # Two minutes ahead, so that the link is open; the form reads UTC here (VC_DISPLAY_TIMEZONE).
    start = SystemClock().now() + timedelta(minutes=2)
    planned = doctor.post(
        f"{server.url}/vc/practice/appointments/new",
        data=plan_form(our_csrf(form_page.text), start, "patient@example.org"),
        timeout=10,
    )
    assert planned.status_code == 200, re.findall(r'vc-field-error">([^<]+)', planned.text)

    wait_for(smtp.received, 20, what="the invitation mail")
    [(_, mail)] = smtp.received()
    text = mail.get_body(preferencelist=("plain",)).get_content()
    links = re.findall(r"\S*/vc/join/\S+", text)
    assert links and all(link.startswith(f"{server.url}/vc/join/") for link in links), links
    invitation_id, code = re.search(r"/vc/join/([^#\s]+)#code=(\S+)", text).groups()

    cookie = check_in(server.url, invitation_id, code, name="Frau Müller")
    doctor_cookie = "; ".join(f"{c.name}={c.value}" for c in doctor.cookies)
    assert HOST_COOKIE in doctor_cookie and "vc_session" in doctor_cookie
    appointment = re.search(r'href="/vc/practice/appointments/(?!new")([A-Za-z0-9_-]+)"', planned.text)
    assert appointment, "the planned page links the appointment"
    call_page = doctor.get(f"{server.url}/vc/practice/appointments/{appointment.group(1)}/call", timeout=10)
    assert call_page.status_code == 200 and "intranet-nav" in call_page.text
    assert "camera=(self)" in call_page.headers["Permissions-Policy"], "the call page may use the camera"
    assert "media-src 'self' blob: mediastream:" in call_page.headers["Content-Security-Policy"]

    asyncio.run(consultation(server.ws_url, appointment.group(1), cookie, doctor_cookie))


def test_a_host_cookie_with_our_name_stops_start_up(tmp_path):
    with pytest.raises(ConfigurationError, match="SESSION_COOKIE_NAME = 'vc_session' is the name of vc_plugin's"):
        make_intranet(f"sqlite:///{tmp_path / 'intranet.sqlite'}", SESSION_COOKIE_NAME="vc_session")


def test_under_a_path_of_its_own_our_cookie_and_links_follow_the_mount(tmp_path):
    """Served under /intranet (a reverse proxy's SCRIPT_NAME): our cookie's path and the links follow."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    from werkzeug.test import Client

    app = make_intranet(f"sqlite:///{tmp_path / 'intranet.sqlite'}")
    mounted = Client(DispatcherMiddleware(Flask("front"), {"/intranet": app.wsgi_app}))
    login = mounted.get("/intranet/login")
    signed_in = mounted.post(
        "/intranet/login",
        data={"csrf_token": csrf_from(login.get_data(as_text=True)), "username": "berg", "password": "berg-password"},
    )
    assert signed_in.status_code == 302
    page = mounted.get("/intranet/vc/practice/")
    assert page.status_code == 200 and "/intranet/vc/static/vc.css" in page.get_data(as_text=True)
    [ours] = [c for c in page.headers.getlist("Set-Cookie") if c.startswith("vc_session=")]
    assert "Path=/intranet/vc" in ours
    state = app.extensions[EXTENSION_KEY]
    with app.test_request_context("/vc/practice/", base_url="http://praxis.example/intranet/"):
        practitioner = state.directory.by_subject("host", "1")
        start = state.clock.now()
        planned = state.appointments.plan(
            Principal.of(practitioner), AppointmentIn(starts_at=start, ends_at=start + timedelta(minutes=30))
        )
    assert planned.invitations[0].link.startswith("http://praxis.example/intranet/vc/join/")
