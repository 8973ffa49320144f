"""vc_plugin's own cookie, beside the host's session.

Flask has one ``session`` per app, and it belongs to the host: Flask-Login keeps its user there,
the host's layout reads its flashed messages from it, its name and flags are the host's choice.
Renaming or clearing it would sign every user of the host out. So what our pages remember — a
sign-in through our identity provider, a patient's pass, the language chosen on our pages, the
CSRF secret and the sign-in's state — lives in a cookie of our own, scoped to our URL prefix so
that browsers send it to our routes only. Flask's signed-cookie session does the signing; only
the name, the path and the flags are ours, and they do not depend on the host's settings.
"""

from __future__ import annotations

from typing import cast

from flask import Flask, Response, current_app, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.local import LocalProxy

from ..core.config import ConfigurationError, Settings

ENVIRON_KEY = "vc_plugin.cookie"
#: Where ``install`` keeps the app's cookie interface (``app.extensions``).
EXTENSION_KEY = "vc_plugin.cookie"
NAME = "vc_session"
#: Under https: a Secure cookie that browsers refuse to accept from plain http (RFC 6265bis).
SECURE_NAME = "__Secure-vc_session"
SAME_SITE = "Lax"


def refuse_name_clash(app: Flask) -> None:
    """A host whose own session cookie has our name would have both overwrite each other."""
    if app.config.get("SESSION_COOKIE_NAME") in {NAME, SECURE_NAME}:
        raise ConfigurationError(
            f"SESSION_COOKIE_NAME = {app.config['SESSION_COOKIE_NAME']!r} is the name of vc_plugin's own cookie: "
            "give the host's session cookie another name (Flask's default is 'session')."
        )


def cookie_name(settings: Settings) -> str:
    return SECURE_NAME if settings.public_is_https else NAME


def cookie_path(settings: Settings) -> str:
    """Our URL prefix, below the path the app itself is mounted at (``SCRIPT_NAME``, e.g. behind a
    reverse proxy that serves the host under ``/intranet``)."""
    from flask import has_request_context

    mounted = request.script_root if has_request_context() else ""
    return f"{mounted}{settings.url_prefix}" or "/"


class OwnCookieInterface(SecureCookieSessionInterface):
    """Flask's signed cookie under our name and path, HttpOnly, SameSite=Lax, Secure under https.

    A browser-session cookie: no expiry, so nothing persists once the browser is closed.
    """

    salt = "vc-plugin-cookie"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def get_cookie_name(self, app: Flask) -> str:
        return cookie_name(self.settings)

    def get_cookie_domain(self, app: Flask) -> str | None:
        return None

    def get_cookie_path(self, app: Flask) -> str:
        return cookie_path(self.settings)

    def get_cookie_httponly(self, app: Flask) -> bool:
        return True

    def get_cookie_secure(self, app: Flask) -> bool:
        return self.settings.public_is_https

    def get_cookie_samesite(self, app: Flask) -> str:
        return SAME_SITE

    def get_cookie_partitioned(self, app: Flask) -> bool:
        return False

    def should_set_cookie(self, app: Flask, session: SecureCookieSession) -> bool:
        return session.modified


def install(app: Flask, settings: Settings) -> None:
    """Give ``app`` our cookie, beside its own session (refused if the host's has our name)."""
    refuse_name_clash(app)
    app.extensions[EXTENSION_KEY] = OwnCookieInterface(settings)


def _interface() -> OwnCookieInterface:
    return cast(OwnCookieInterface, current_app.extensions[EXTENSION_KEY])


def own_cookie() -> SecureCookieSession:
    """The cookie's contents for this request, read on first use."""
    found = request.environ.get(ENVIRON_KEY)
    if found is None:
        found = _interface().open_session(current_app, request)
        if found is None:  # no SECRET_KEY: load_settings refuses to start without one
            raise RuntimeError("vc_plugin needs the app's SECRET_KEY to sign its cookie")
        request.environ[ENVIRON_KEY] = found
    return found


#: ``cookie["vc_user"]`` reads like Flask's ``session``, but is ours alone.
cookie = cast(SecureCookieSession, LocalProxy(own_cookie))


def save_own_cookie(response: Response) -> Response:
    """``after_request`` of our blueprints: write the cookie if this request changed it."""
    found = request.environ.get(ENVIRON_KEY)
    if found is not None:
        _interface().save_session(current_app, found, response)
    return response
