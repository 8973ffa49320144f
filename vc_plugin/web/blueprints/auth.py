"""Sign-in and sign-out for practitioners and staff."""

from __future__ import annotations

import ipaddress

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ...core.models import Role
from ..cookie import cookie
from ..host_login import host_login_url
from ..identity import (
    NOT_ALLOWED_KEY,
    current_practitioner,
    end_all_sessions,
    not_allowed_page,
    sign_in,
    sign_out,
    signed_in_method,
)
from ..navigation import external_url, safe_next
from ..oidc import ProviderUnavailable, SignInRejected
from ..state import vc_state

bp = Blueprint("auth", __name__, url_prefix="/auth")

NEXT_KEY = "vc_next"

#: The people offered by the development sign-in.
DEV_PERSONAS = {
    "practitioner": ("Dr. Demo Praxis", Role.PRACTITIONER),
    "staff": ("Empfang Demo", Role.STAFF),
    "admin": ("Admin Demo", Role.ADMIN),
}


def _home() -> str:
    return vc_state().settings.url_prefix + "/"


def _absolute(endpoint: str) -> str:
    return external_url(vc_state().settings.public_url, url_for(endpoint), request.url_root)


def dev_login_allowed() -> bool:
    """Development sign-in: only when configured, in debug mode, and from this machine."""
    if not (vc_state().settings.dev_login and current_app.debug):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def _sign_in_page(status: int = 200, **extra: object) -> tuple[str, int]:
    context = {
        "next": safe_next(request.values.get("next"), default=_home()),
        "dev_login": dev_login_allowed(),
        "personas": DEV_PERSONAS,
        "oidc": vc_state().sign_in_provider is not None,
        "unavailable": False,
        "expired": False,
        **extra,
    }
    return render_template("vc_plugin/auth/sign_in.html", **context), status


@bp.get("/sign-in")
def sign_in_page() -> tuple[str, int] | Response:
    if current_practitioner() is not None:
        return redirect(safe_next(request.args.get("next"), default=_home()))
    if request.environ.get(NOT_ALLOWED_KEY):
        return not_allowed_page()
    if vc_state().practitioner_loader is not None:
        return _host_sign_in(safe_next(request.args.get("next"), default=_home()))
    return _sign_in_page(expired=request.args.get("expired") == "1")


def _host_sign_in(next_path: str) -> tuple[str, int] | Response:
    """The host signs people in: its login page, with the way back to ours."""
    url = host_login_url(next_path)
    if url is not None:
        return redirect(url)
    current_app.logger.error(
        "vc_plugin: someone not signed in reached %s, and the host's login page is unknown: "
        "set VC_LOGIN_URL, Flask-Login's login_view, or @vc.login_url",
        request.path,
    )
    return render_template("vc_plugin/auth/host_sign_in.html"), 401


@bp.post("/oidc")
def start_oidc() -> tuple[str, int] | Response:
    provider = vc_state().sign_in_provider
    if provider is None:
        abort(404)
    cookie[NEXT_KEY] = safe_next(request.form.get("next"), default=_home())
    try:
        return provider.start(_absolute("vc.auth.callback"))
    except ProviderUnavailable:
        return _sign_in_page(503, unavailable=True)


@bp.get("/callback")
def callback() -> tuple[str, int] | Response:
    state = vc_state()
    provider = state.sign_in_provider
    if provider is None:
        abort(404)
    try:
        identity = provider.finish()
    except ProviderUnavailable:
        return _sign_in_page(503, unavailable=True)
    except SignInRejected:
        return render_template("vc_plugin/auth/rejected.html"), 400
    if identity.role is None:
        return render_template("vc_plugin/auth/no_role.html"), 403
    practitioner = state.directory.provision(
        issuer=identity.issuer,
        subject=identity.subject,
        display_name=identity.display_name,
        role=identity.role,
        organisation_slug=identity.organisation,
    )
    state.db.session.commit()
    target = safe_next(cookie.get(NEXT_KEY), default=_home())
    sign_in(practitioner, "oidc")
    return redirect(target)


@bp.post("/dev")
def dev_sign_in() -> Response:
    if not dev_login_allowed():
        abort(404)
    persona = DEV_PERSONAS.get(request.form.get("persona", ""))
    if persona is None:
        abort(400, description="Unknown persona.")
    state = vc_state()
    name, role = persona
    practitioner = state.directory.provision(
        issuer="dev",
        subject=request.form["persona"],
        display_name=name,
        role=role,
        organisation_slug=state.settings.default_organisation,
    )
    state.db.session.commit()
    sign_in(practitioner, "dev")
    return redirect(safe_next(request.form.get("next"), default=_home()))


@bp.post("/sign-out")
def sign_out_view() -> Response:
    """End our session, then the provider's (RP-initiated logout) when it offers one."""
    method = signed_in_method()
    person = current_practitioner()
    if person is not None and method in {"oidc", "dev"}:
        end_all_sessions(person)
    sign_out()
    provider = vc_state().sign_in_provider
    if method == "oidc" and provider is not None:
        url = provider.end_session_url(_absolute("vc.auth.signed_out"))
        if url:
            return redirect(url)
    return redirect(url_for("vc.auth.signed_out"))


@bp.get("/signed-out")
def signed_out() -> str:
    return render_template("vc_plugin/auth/signed_out.html")
