"""Sign-in through a real OpenID Provider (npm oidc-provider), and the attacks it must refuse."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey
from sqlalchemy import select

from tests.support.hosts import make_host_app
from tests.support.oidc import (
    CLIENT_ID,
    CLIENT_SECRET,
    OidcProvider,
    ProviderBrowser,
    client_metadata,
    path_and_query,
)
from tests.support.rogue_idp import DEFECTS, RogueProvider
from tests.support.web import cookie_serializer, csrf
from vc_plugin.core.models import Practitioner, Role

APP_ROOT = "http://127.0.0.1"
CALLBACK = f"{APP_ROOT}/vc/auth/callback"


@pytest.fixture(scope="module")
def jwt_client_key(tmp_path_factory) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("keys") / "client.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


@pytest.fixture(scope="module")
def provider(tmp_path_factory, jwt_client_key):
    public = RSAKey.import_key(jwt_client_key.read_text()).as_dict(private=False)
    clients = [
        client_metadata(APP_ROOT),
        client_metadata(
            APP_ROOT, client_id="vc-jwt", token_endpoint_auth_method="private_key_jwt", jwks={"keys": [public]}
        ),
    ]
    started = OidcProvider(clients, tmp_path_factory.mktemp("oidc")).start()
    yield started
    started.stop()


def oidc_config(provider: OidcProvider, **extra):
    return {
        "VC_OIDC_ISSUER": provider.issuer,
        "VC_OIDC_CLIENT_ID": CLIENT_ID,
        "VC_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "VC_OIDC_ORGANISATION_CLAIM": "organisation",
        **extra,
    }


@pytest.fixture
def oidc_host(database_url, clock, provider):
    host = make_host_app(database_url, clock=clock, **oidc_config(provider))
    yield host
    host.close()


def start_sign_in(client, next_path: str = "/vc/") -> str:
    response = client.post("/vc/auth/oidc", data={"csrf_token": csrf(client), "next": next_path})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def sign_in(client, provider, login: str, next_path: str = "/vc/", browser: ProviderBrowser | None = None):
    browser = browser or ProviderBrowser(provider)
    authorize = start_sign_in(client, next_path)
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["state"][0] and query["nonce"][0]
    callback = browser.follow(authorize, login=login, stop_prefix=CALLBACK)
    return client.get(path_and_query(callback)), callback, browser


def practitioners(host) -> list[Practitioner]:
    with host.app.app_context():
        return list(host.db.session.scalars(select(Practitioner)))


@pytest.mark.parametrize(
    ("login", "role", "organisation"),
    [
        ("doc", Role.PRACTITIONER, "praxis-nord"),
        ("desk", Role.STAFF, "praxis-nord"),
        ("boss", Role.ADMIN, "praxis-nord"),
        ("south", Role.PRACTITIONER, "praxis-sued"),
    ],
)
def test_sign_in_provisions_the_minimum(oidc_host, provider, login, role, organisation):
    client = oidc_host.app.test_client()
    response, _, browser = sign_in(client, provider, login)
    assert response.status_code == 302 and response.headers["Location"] == "/vc/"
    assert browser.pages_seen[:1] == ["login"]
    dashboard = client.get("/vc/practice/", follow_redirects=True).get_data(as_text=True)
    [person] = practitioners(oidc_host)
    assert person.subject == login and person.role is role and person.issuer == provider.issuer
    assert person.display_name in dashboard
    with oidc_host.app.app_context():
        assert oidc_host.db.session.get(type(person), person.id).organisation.slug == organisation
    # The email address the provider released is not stored anywhere.
    columns = {c.name for c in Practitioner.__table__.columns}
    assert "email" not in columns
    assert all("@" not in str(getattr(person, c)) for c in columns)


def test_user_without_a_role_is_refused_with_a_page(oidc_host, provider):
    client = oidc_host.app.test_client()
    response, _, _ = sign_in(client, provider, "nobody")
    assert response.status_code == 403
    assert "keine der Rollen" in response.get_data(as_text=True)  # German is the default language
    assert practitioners(oidc_host) == []
    assert client.get("/vc/practice/").status_code == 302


def test_sign_out_ends_the_provider_session_too(oidc_host, provider):
    client = oidc_host.app.test_client()
    _, _, browser = sign_in(client, provider, "doc")
    page = client.get("/vc/practice/")
    response = client.post("/vc/auth/sign-out", data={"csrf_token": csrf(client, "/vc/practice/")})
    assert page.status_code == 200 and response.status_code == 302
    end_session = response.headers["Location"]
    assert end_session.startswith(provider.issuer)
    query = parse_qs(urlsplit(end_session).query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["post_logout_redirect_uri"] == [f"{APP_ROOT}/vc/auth/signed-out"]
    back = browser.follow(end_session, login="doc", stop_prefix=f"{APP_ROOT}/vc/auth/signed-out")
    assert "confirm" in browser.pages_seen
    assert client.get(path_and_query(back)).status_code == 200
    assert client.get("/vc/practice/").status_code == 302
    # Signing in again asks for the login again: the provider's session is gone.
    browser.pages_seen.clear()
    sign_in(client, provider, "doc", browser=browser)
    assert browser.pages_seen[:1] == ["login"]


def test_signing_out_voids_copies_of_the_session_cookie(oidc_host, provider, clock):
    client = oidc_host.app.test_client()
    sign_in(client, provider, "doc")
    copied = client.get_cookie("vc_session", path="/vc").value
    clock.advance(timedelta(seconds=1))
    client.post("/vc/auth/sign-out", data={"csrf_token": csrf(client, "/vc/practice/")})
    thief = oidc_host.app.test_client()
    thief.set_cookie("vc_session", copied, path="/vc")
    assert thief.get("/vc/practice/").status_code == 302, "the copy died with the sign-out"
    clock.advance(timedelta(seconds=1))
    sign_in(client, provider, "doc")
    assert client.get("/vc/practice/").status_code == 200, "a new sign-in works"


def test_private_key_jwt_client_authentication(database_url, clock, provider, jwt_client_key):
    host = make_host_app(
        database_url,
        clock=clock,
        **oidc_config(
            provider,
            VC_OIDC_CLIENT_ID="vc-jwt",
            VC_OIDC_CLIENT_SECRET=None,
            VC_OIDC_PRIVATE_KEY_FILE=str(jwt_client_key),
        ),
    )
    try:
        response, _, _ = sign_in(host.app.test_client(), provider, "doc")
        assert response.status_code == 302 and response.headers["Location"] == "/vc/"
    finally:
        host.close()


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"]
)
def test_next_cannot_leave_the_site(oidc_host, provider, target):
    client = oidc_host.app.test_client()
    response, _, _ = sign_in(client, provider, "doc", next_path=target)
    assert response.headers["Location"] == "/vc/"


def test_next_within_the_site_is_kept(oidc_host, provider):
    response, _, _ = sign_in(oidc_host.app.test_client(), provider, "doc", next_path="/vc/practice/?day=1")
    assert response.headers["Location"] == "/vc/practice/?day=1"


def test_missing_or_wrong_state_is_refused(oidc_host, provider):
    client = oidc_host.app.test_client()
    start_sign_in(client)
    assert client.get("/vc/auth/callback?code=abc").status_code == 400
    assert client.get("/vc/auth/callback?code=abc&state=forged").status_code == 400
    assert practitioners(oidc_host) == []


def test_replayed_authorization_code_is_refused(oidc_host, provider):
    first = oidc_host.app.test_client()
    response, callback, _ = sign_in(first, provider, "doc")
    assert response.status_code == 302
    # The same callback again: its state was used up.
    assert first.get(path_and_query(callback)).status_code == 400
    # An attacker with a flow of their own (valid state) and the stolen code: the provider refuses the code.
    attacker = oidc_host.app.test_client()
    own_state = parse_qs(urlsplit(start_sign_in(attacker)).query)["state"][0]
    code = parse_qs(urlsplit(callback).query)["code"][0]
    replay = attacker.get(f"/vc/auth/callback?code={code}&state={own_state}")
    assert replay.status_code == 400
    assert attacker.get("/vc/practice/").status_code == 302


@pytest.mark.parametrize("defect", DEFECTS)
def test_bad_id_tokens_are_refused(database_url, clock, defect):
    rogue = RogueProvider(CLIENT_ID, defect).start()
    host = make_host_app(
        database_url,
        clock=clock,
        VC_OIDC_ISSUER=rogue.issuer,
        VC_OIDC_CLIENT_ID=CLIENT_ID,
        VC_OIDC_CLIENT_SECRET=CLIENT_SECRET,
    )
    try:
        client = host.app.test_client()
        authorize = start_sign_in(client)
        import requests

        callback = requests.get(authorize, allow_redirects=False, timeout=5).headers["Location"]
        response = client.get(path_and_query(callback), headers={"Accept-Language": "en"})
        assert response.status_code == 400, defect
        assert "could not be accepted" in response.get_data(as_text=True)
        assert practitioners(host) == []
    finally:
        host.close()
        rogue.stop()


def test_cookie_signed_by_another_app_is_ignored(oidc_host, provider):
    client = oidc_host.app.test_client()
    sign_in(client, provider, "doc")
    [person] = practitioners(oidc_host)
    foreign_app = make_host_app("sqlite://", SECRET_KEY="another-apps-secret")
    claims = {"vc_user": {"pid": person.public_id, "role": "practitioner", "iat": 1e10, "seen": 1e10}}
    try:
        forged = cookie_serializer(foreign_app.app).dumps(claims)
    finally:
        foreign_app.close()
    attacker = oidc_host.app.test_client()
    attacker.set_cookie("vc_session", forged, path="/vc")
    response = attacker.get("/vc/practice/")
    assert response.status_code == 302 and "/vc/auth/sign-in" in response.headers["Location"]
    # The same claims signed with this app's secret would pass: only the signature was wrong.
    attacker.set_cookie("vc_session", cookie_serializer(oidc_host.app).dumps(claims), path="/vc")
    assert attacker.get("/vc/practice/").status_code == 200


def test_provider_down_shows_a_clear_page_and_the_rest_keeps_serving(database_url, clock, tmp_path):
    down = OidcProvider([client_metadata(APP_ROOT)], tmp_path).start()
    host = make_host_app(database_url, clock=clock, **oidc_config(down))
    try:
        down.stop()
        client = host.app.test_client()
        response = client.post(
            "/vc/auth/oidc", data={"csrf_token": csrf(client), "next": "/vc/"}, headers={"Accept-Language": "en"}
        )
        assert response.status_code == 503
        assert "Sign-in is unavailable" in response.get_data(as_text=True)
        assert client.get("/vc/health").status_code == 200
    finally:
        host.close()


def test_idle_and_absolute_timeouts(oidc_host, provider, clock):
    client = oidc_host.app.test_client()
    sign_in(client, provider, "doc")
    clock.advance(timedelta(minutes=29))
    assert client.get("/vc/practice/").status_code == 200
    clock.advance(timedelta(minutes=31))
    expired = client.get("/vc/practice/")
    assert expired.status_code == 302 and "expired=1" in expired.headers["Location"]
    # Active all day long still ends after the absolute limit.
    sign_in(client, provider, "doc")
    active = timedelta(0)
    while (response := client.get("/vc/practice/")).status_code == 200:
        clock.advance(timedelta(minutes=29))
        active += timedelta(minutes=29)
    assert "expired=1" in response.headers["Location"]
    assert timedelta(hours=12) <= active < timedelta(hours=12, minutes=29)


def test_session_cookie_is_strictly_necessary_and_hardened(database_url, clock, provider):
    host = make_host_app(database_url, clock=clock, VC_PUBLIC_URL="https://praxis.example/", **oidc_config(provider))
    try:
        client = host.app.test_client()
        response = client.get("/vc/auth/sign-in", base_url="https://praxis.example")
        [cookie] = response.headers.getlist("Set-Cookie")
        name, _, attributes = cookie.partition("=")
        assert name == "__Secure-vc_session"
        flags = {part.strip().split("=")[0].lower() for part in attributes.split(";")}
        assert {"secure", "httponly", "path"} <= flags
        assert "samesite=lax" in cookie.lower()
        assert "; path=/vc;" in cookie.lower(), "sent to our routes only, never to the host's pages"
        assert "expires" not in flags and "max-age" not in flags and "domain" not in flags
    finally:
        host.close()


def test_host_login_hook_replaces_oidc(database_url, clock):
    from flask import g

    from vc_plugin import HostUser

    host = make_host_app(database_url, clock=clock)
    try:

        @host.vc.practitioner_loader
        def load():
            return g.get("host_user")

        @host.app.before_request
        def host_login():
            from flask import request

            role = request.headers.get("X-Host-Role", "practitioner")
            if request.headers.get("X-Host-User") == "alice":
                g.host_user = HostUser(subject="u-17", display_name="Dr. Alice Host", role=role, organisation="Haus A")

        client = host.app.test_client()
        assert client.get("/vc/practice/").status_code == 302
        page = client.get("/vc/practice/", headers={"X-Host-User": "alice"})
        assert page.status_code == 200 and "Dr. Alice Host" in page.get_data(as_text=True)
        [person] = practitioners(host)
        assert (person.issuer, person.subject, person.role) == ("host", "u-17", Role.PRACTITIONER)
        first_seen = person.last_sign_in_at

        # Unchanged on the next request: nothing is written for it.
        clock.advance(timedelta(minutes=5))
        assert client.get("/vc/practice/", headers={"X-Host-User": "alice"}).status_code == 200
        [person] = practitioners(host)
        assert person.last_sign_in_at == first_seen
        # A role the host made up is "not signed in", not a server error.
        unknown = client.get("/vc/practice/", headers={"X-Host-User": "alice", "X-Host-Role": "superuser"})
        assert unknown.status_code == 302
        # A changed role is taken over.
        staff = client.get("/vc/practice/appointments", headers={"X-Host-User": "alice", "X-Host-Role": "staff"})
        assert staff.status_code == 200
        [person] = practitioners(host)
        assert person.role is Role.STAFF and person.last_sign_in_at > first_seen
    finally:
        host.close()
