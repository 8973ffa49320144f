"""Rules every vc_plugin page follows: language, CSRF, security headers, our own cookie.

They apply to our blueprints only; the host's own pages are left as the host made them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import chain
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, g, jsonify, request
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from ..core.config import Settings
from . import csrf, language, layout
from .client_strings import client_strings
from .cookie import cookie, save_own_cookie
from .hosting import HEADERS_KEY, OWN_HEADERS
from .state import vc_state

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The pages that use camera, microphone and screen sharing; every other page may use none of them.
MEDIA_ENDPOINTS = frozenset({"vc.join.room", "vc.practice.call"})


def allow_camera_and_microphone() -> None:
    """This one response may use camera and microphone (no screen sharing): the device test shown
    on the invitation link before the waiting room opens, from an endpoint that otherwise may not."""
    g.vc_device_test = True


def check_csrf() -> None:
    if request.method in SAFE_METHODS:
        return
    view = current_app.view_functions.get(request.endpoint or "")
    token_view = view is not None and getattr(view, "vc_bearer", False)
    # A token request is authenticated by the token alone; without a signed-in session there
    # is nothing a forged cross-site request could use, and the view answers 401. A host that
    # signs people in itself (practitioner_loader) does so with its own cookies, which a
    # cross-site request carries as well: then only the Authorization header exempts.
    signed_in_by_cookie = "vc_user" in cookie or vc_state().practitioner_loader is not None
    if token_view and ("Authorization" in request.headers or not signed_in_by_cookie):
        return
    csrf.validate(request.headers.get(csrf.HEADER) or request.form.get(csrf.FIELD))


def refuse_nul_characters() -> None:
    """No id in a path and no query parameter needs a NUL character, and PostgreSQL cannot look
    one up: such a request is refused here instead of failing in the database with a 500.
    (Form fields and JSON bodies are checked where they are read: :func:`unstorable_fields`.)"""
    values = [*(request.view_args or {}).values(), *chain.from_iterable(request.args.listvalues())]
    if any(isinstance(value, str) and "\x00" in value for value in values):
        abort(400, description="The request contains a NUL character.")


#: Times beyond these years cannot be stored (or have retention periods added) without overflowing.
STORABLE_YEARS = range(1900, 9000)


def storable_time(moment: datetime) -> bool:
    try:
        return moment.astimezone(UTC).year in STORABLE_YEARS
    except OverflowError:
        return False


def unstorable_fields(value: object, path: str = "") -> dict[str, str]:
    """Fields that passed validation but that the database cannot hold: NUL characters, far-off years."""
    if isinstance(value, dict):
        found: dict[str, str] = {}
        for key, item in value.items():
            found |= unstorable_fields(item, f"{path}.{key}" if path else str(key))
        return found
    if isinstance(value, list):
        found = {}
        for index, item in enumerate(value):
            found |= unstorable_fields(item, f"{path}.{index}")
        return found
    if isinstance(value, str) and "\x00" in value:
        return {path: "contains a NUL character"}
    if isinstance(value, datetime) and not storable_time(value):
        return {path: "out of range"}
    return {}


def content_security_policy(settings: Settings) -> str:
    # Sign-in and sign-out forms redirect to the identity provider; browsers apply
    # form-action to those redirects too.
    form_targets = ["'self'"]
    provider = settings.oidc_issuer or settings.oidc_metadata_url
    if provider:
        parts = urlsplit(provider)
        form_targets.append(f"{parts.scheme}://{parts.netloc}")
    connect = ["'self'"]
    for origin in settings.allowed_origins:
        connect.append(origin.replace("https://", "wss://").replace("http://", "ws://"))
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob: mediastream:",
            f"connect-src {' '.join(connect)}",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            f"form-action {' '.join(form_targets)}",
            f"frame-ancestors {settings.frame_ancestors}",
        ]
    )


def add_security_headers(response: Response) -> Response:
    settings = vc_state().settings
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy(settings))
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    media = "(self)" if request.endpoint in MEDIA_ENDPOINTS else "()"
    devices = "(self)" if g.get("vc_device_test") else media
    headers.setdefault(
        "Permissions-Policy",
        f"camera={devices}, microphone={devices}, display-capture={media}, geolocation=()",
    )
    if settings.public_is_https:
        headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
    if response.mimetype == "text/html":
        headers.setdefault("Cache-Control", "no-store")
    # A host's own after_request hooks (Flask-Talisman) run after ours: these are put back last.
    request.environ[HEADERS_KEY] = {name: headers[name] for name in OWN_HEADERS if name in headers}
    return response


def wants_json() -> bool:
    return request.path.startswith(f"{vc_state().settings.url_prefix}/api/") or (
        request.accept_mimetypes.best == "application/json"
    )


def handle_http_error(error: HTTPException) -> Response | tuple[str, int]:
    """Our pages answer errors in the person's language; the API answers JSON."""
    from flask import render_template

    status = error.code or 500
    if isinstance(error, csrf.CSRFError):
        status = 400
    if wants_json():
        return jsonify(error=_error_slug(status), message=error.description), status
    return render_template("vc_plugin/error.html", status=status, error=error), status


def handle_database_unavailable(error: Exception) -> Response | tuple[str, int]:
    """The database is briefly away: answer 503 cleanly; the pool reconnects on the next request."""
    from flask import render_template

    current_app.logger.warning("database unavailable: %s", type(error).__name__)
    vc_state().db.session.rollback()
    if wants_json():
        response = jsonify(error="unavailable", message="The database is briefly unavailable; try again.")
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response
    return render_template("vc_plugin/error.html", status=503, error=error), 503


def _error_slug(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        413: "payload_too_large",
        415: "unsupported_media_type",
        422: "invalid",
        429: "too_many_requests",
        503: "unavailable",
    }.get(status, "error")


def install(parent: Blueprint) -> None:
    """Attach the page rules to the parent blueprint that holds all of ours."""
    parent.before_request(language.enter_request_language)
    parent.before_request(refuse_nul_characters)
    parent.before_request(check_csrf)
    parent.teardown_request(language.leave_request_language)
    parent.after_request(add_security_headers)
    parent.after_request(save_own_cookie)
    parent.context_processor(
        lambda: {
            **language.template_helpers(),
            "vc_csrf_token": csrf.csrf_token,
            "client_strings": client_strings,
            "vc_frame": layout.frame,
            **layout.host_template_context(),
            "vc_host_login": vc_state().practitioner_loader is not None,
            "vc_terms_url": vc_state().settings.terms_url,
            "vc_settings": vc_state().settings,
        }
    )
    parent.register_error_handler(HTTPException, handle_http_error)
    parent.register_error_handler(OperationalError, handle_database_unavailable)
    parent.register_error_handler(InterfaceError, handle_database_unavailable)


def refuse(status: int, message: str) -> None:
    abort(status, description=message)
