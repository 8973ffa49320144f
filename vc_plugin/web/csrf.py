"""CSRF tokens for our forms and scripts, kept in our own cookie.

The usual double-submit scheme (as Flask-WTF's): a random secret in the signed cookie, and in
each form or ``X-CSRFToken`` header a token signed with the app's secret key that must carry the
same secret. Flask-WTF keeps its secret in the host's ``session``; ours lives in
:mod:`vc_plugin.cookie`, so installing vc_plugin writes nothing into the host's cookie, and the
host's own ``CSRFProtect`` can leave our routes to us.
"""

from __future__ import annotations

import hmac
import secrets

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer
from werkzeug.exceptions import BadRequest

from .cookie import cookie

KEY = "vc_csrf"
SALT = "vc-plugin-csrf"
HEADER = "X-CSRFToken"
FIELD = "csrf_token"


class CSRFError(BadRequest):
    """A state-changing request without a valid token: answered 400, in the person's language."""

    description = "The CSRF token is missing or invalid."


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key or "", salt=SALT)


def csrf_token() -> str:
    """The token for a form or a script on this page; the secret is created on first use."""
    secret = cookie.get(KEY)
    if not isinstance(secret, str):
        secret = secrets.token_hex(20)
        cookie[KEY] = secret
    return str(_serializer().dumps(secret))


def validate(token: str | None) -> None:
    """Raise :class:`CSRFError` unless ``token`` belongs to this browser's cookie."""
    if not token:
        raise CSRFError("The CSRF token is missing.")
    secret = cookie.get(KEY)
    if not isinstance(secret, str):
        raise CSRFError("The CSRF session token is missing.")
    try:
        carried = _serializer().loads(token)
    except BadData:
        raise CSRFError("The CSRF token is invalid.") from None
    if not isinstance(carried, str) or not hmac.compare_digest(carried, secret):
        raise CSRFError("The CSRF tokens do not match.")
