"""Hosts with their own login: where people who are not signed in go, and the host's language.

The intranet and Flask-AppBuilder hosts (tests/test_host_*.py) find their login page through
Flask-Login and Flask-AppBuilder; these are the other ways, and the host that names none.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import g, request

from tests.support.hosts import HostApp, make_host_app
from vc_plugin import HostUser
from vc_plugin.compliance.checks import Status, host_sign_in


def with_host_login(host: HostApp) -> HostApp:
    """The host signs people in by a header (its own business); vc_plugin asks it through the loader."""

    @host.vc.practitioner_loader
    def load() -> HostUser | None:
        return g.get("host_user")

    @host.app.before_request
    def host_login() -> None:
        if request.headers.get("X-Host-User") == "alice":
            g.host_user = HostUser(subject="u-1", display_name="Dr. Alice Host", role="practitioner")

    return host


@pytest.fixture
def host(database_url: str) -> Iterator[HostApp]:
    host = with_host_login(make_host_app(database_url))
    yield host
    host.close()


def test_without_a_known_login_page_people_are_told_to_sign_in_with_the_host(host, caplog):
    client = host.app.test_client()
    sent = client.get("/vc/practice/", headers={"Accept-Language": "en"})
    assert sent.status_code == 302
    page = client.get(sent.headers["Location"], headers={"Accept-Language": "en"})
    text = page.get_data(as_text=True)
    assert page.status_code == 401 and "Please sign in first" in text and "identity provider" not in text
    assert "the host's login page is unknown" in caplog.text
    finding = host_sign_in(host.app, host.state)
    assert finding.status is Status.FAIL and "VC_LOGIN_URL" in finding.reason


def test_vc_login_url_is_where_they_go_with_the_way_back(database_url):
    host = with_host_login(make_host_app(database_url, VC_LOGIN_URL="https://intranet.example/sso?app=vc"))
    try:
        sent = host.app.test_client().get("/vc/practice/appointments")
        assert sent.status_code == 302
        assert sent.headers["Location"] == "https://intranet.example/sso?app=vc&next=%2Fvc%2Fpractice%2Fappointments"
        assert host_sign_in(host.app, host.state).status is Status.PASS
    finally:
        host.close()


def test_a_login_url_function_wins_over_the_setting(database_url):
    host = with_host_login(make_host_app(database_url, VC_LOGIN_URL="/setting-login"))
    try:

        @host.vc.login_url
        def login(next_path: str) -> str:
            return f"/portal/login?return={next_path}"

        sent = host.app.test_client().get("/vc/practice/")
        assert sent.headers["Location"] == "/portal/login?return=/vc/practice/"
    finally:
        host.close()


def test_the_hosts_locale_loader_chooses_the_practitioners_language(host):
    chosen: dict[str, str | None] = {"language": "en_GB"}

    @host.vc.locale_loader
    def language() -> str | None:
        return chosen["language"]

    client = host.app.test_client()
    signed_in = {"X-Host-User": "alice", "Accept-Language": "de"}
    assert 'lang="en"' in client.get("/vc/practice/", headers=signed_in).get_data(as_text=True)
    chosen["language"] = None  # the host has no preference: the browser's language
    assert 'lang="de"' in client.get("/vc/practice/", headers=signed_in).get_data(as_text=True)
    chosen["language"] = "fr"  # a language we do not have: the browser's, not an error
    assert 'lang="de"' in client.get("/vc/practice/", headers=signed_in).get_data(as_text=True)
