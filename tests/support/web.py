"""Helpers for driving our pages with Flask's test client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer

from vc_plugin.core.models import Practitioner
from vc_plugin.web.cookie import OwnCookieInterface
from vc_plugin.web.identity import USER_KEY
from vc_plugin.web.state import EXTENSION_KEY

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def csrf(client: FlaskClient, path: str = "/vc/auth/sign-in") -> str:
    return csrf_from(client.get(path).get_data(as_text=True))


def sign_in_as(client: FlaskClient, practitioner: Practitioner, now: float, **extra: Any) -> None:
    """Put a signed-in session into the client's cookie, as the sign-in view would."""
    with vc_cookie(client) as session:
        session[USER_KEY] = {
            "pid": practitioner.public_id,
            "role": practitioner.role.value,
            "iat": now,
            "seen": now,
            "via": "oidc",
            **extra,
        }


def plan_form(csrf_token: str, start: datetime, email: str = "", language: str = "de") -> dict[str, str]:
    """Our plan form as a practitioner fills it in, for an appointment at ``start`` (in the display
    time zone the form reads, which tests of live servers set to UTC: no hour of the day is special)."""
    return {
        "csrf_token": csrf_token,
        "date": start.strftime("%Y-%m-%d"),
        "time": start.strftime("%H:%M"),
        "duration": "30",
        "kind": "single",
        "label": "Kontrolle",
        "p0-kind": "patient",
        "p0-language": language,
        "p0-email": email,
    }


def cookie_serializer(app: Flask) -> URLSafeTimedSerializer:
    """Signs and reads vc_plugin's own cookie as ``app`` does (its secret key, our salt)."""
    serializer = OwnCookieInterface.get_signing_serializer(OwnCookieInterface.__new__(OwnCookieInterface), app)
    assert serializer is not None, "the app has no SECRET_KEY"
    return serializer


@contextmanager
def vc_cookie(client: FlaskClient) -> Iterator[dict[str, Any]]:
    """Read and change vc_plugin's own cookie in the test client, as ``session_transaction`` does
    for the host's session."""
    app = client.application
    interface = OwnCookieInterface(app.extensions[EXTENSION_KEY].settings)
    name, path = interface.get_cookie_name(app), interface.get_cookie_path(app)
    serializer = cookie_serializer(app)
    found = client.get_cookie(name, path=path)
    data: dict[str, Any] = dict(serializer.loads(found.value)) if found else {}
    yield data
    client.set_cookie(name, serializer.dumps(data), path=path)
