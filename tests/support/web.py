"""Helpers for driving our pages with Flask's test client."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from vc_plugin.models import Practitioner
from vc_plugin.sessions import USER_KEY

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def csrf(client: FlaskClient, path: str = "/vc/auth/sign-in") -> str:
    return csrf_from(client.get(path).get_data(as_text=True))


def sign_in_as(client: FlaskClient, practitioner: Practitioner, now: float, **extra: Any) -> None:
    """Put a signed-in session into the client's cookie, as the sign-in view would."""
    with client.session_transaction() as session:
        session[USER_KEY] = {
            "pid": practitioner.public_id,
            "role": practitioner.role.value,
            "iat": now,
            "seen": now,
            "via": "oidc",
            **extra,
        }
