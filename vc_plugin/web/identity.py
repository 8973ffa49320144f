"""Who is signed in, kept in our own cookie (``cookie.py``), with idle and absolute timeouts.

The cookie holds a practitioner's public id, role and two timestamps; never a name or an
email address. Hosts with their own login register a ``practitioner_loader`` instead, and
then their session is the only one that counts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app, has_request_context, redirect, render_template, request, url_for

from ..core.models import Practitioner, Role
from ..domain.check_in import ParticipantPass
from .cookie import cookie
from .host_login import host_login_url
from .state import vc_state

USER_KEY = "vc_user"
KEEP_ON_SIGN_IN = ("vc_lang",)
SEEN_WRITE_INTERVAL = 60  # seconds; fewer cookie rewrites
CACHE_KEY = "vc_plugin.user"  # per request, in the WSGI environ

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostUser:
    """What a host's ``practitioner_loader`` returns for its signed-in user."""

    subject: str
    display_name: str
    role: Role | str
    organisation: str | None = None


class NotAllowed:
    """What a host's ``practitioner_loader`` returns for a signed-in user without access: a 403 page,
    not the host's login page (which would send them straight back here)."""

    def __repr__(self) -> str:
        return "NOT_ALLOWED"


NOT_ALLOWED = NotAllowed()
Loader = Callable[[], "HostUser | NotAllowed | None"]
NOT_ALLOWED_KEY = "vc_plugin.not_allowed"  # in the WSGI environ, for this request


def _now() -> float:
    return vc_state().clock.now().timestamp()


def sign_in(practitioner: Practitioner, method: str) -> None:
    """Start a fresh session (no fixation): only the language choice survives."""
    kept = {key: cookie[key] for key in KEEP_ON_SIGN_IN if key in cookie}
    cookie.clear()
    cookie.update(kept)
    now = _now()
    cookie[USER_KEY] = {
        "pid": practitioner.public_id,
        "role": practitioner.role.value,
        "iat": now,
        "seen": now,
        "via": method,
    }
    _forget_cached_user()


def _forget_cached_user() -> None:
    if has_request_context():
        request.environ.pop(CACHE_KEY, None)


def end_all_sessions(practitioner: Practitioner) -> None:
    """Void every session of this person signed in until now, on this and any other device.

    The session cookie is signed but kept by the browser; without this a copy of it would stay
    valid until its idle or absolute timeout, even after signing out. Open sockets of those
    sessions are closed at once (:mod:`vc_plugin.domain.revocation`).
    """
    state = vc_state()
    practitioner.sessions_valid_after = state.clock.now()
    state.db.session.commit()
    state.revoker.sessions(practitioner.public_id, practitioner.sessions_valid_after.timestamp())


def sign_out() -> None:
    kept = {key: cookie[key] for key in KEEP_ON_SIGN_IN if key in cookie}
    cookie.clear()
    cookie.update(kept)
    _forget_cached_user()


def session_started_at() -> float | None:
    """When the current sign-in session began; None under a host's own login."""
    if vc_state().practitioner_loader is not None:
        return None
    data = cookie.get(USER_KEY)
    try:
        return float(data["iat"]) if isinstance(data, dict) else None
    except (KeyError, TypeError, ValueError):
        return None


def signed_in_method() -> str | None:
    data = cookie.get(USER_KEY)
    return data.get("via") if isinstance(data, dict) else None


def current_practitioner() -> Practitioner | None:
    """The signed-in person for this request, or ``None``; enforces the timeouts."""
    if CACHE_KEY in request.environ:
        return request.environ[CACHE_KEY]
    state = vc_state()
    user = _from_host_loader() if state.practitioner_loader else _from_session()
    request.environ[CACHE_KEY] = user
    return user


def _from_session() -> Practitioner | None:
    data = cookie.get(USER_KEY)
    if not isinstance(data, dict):
        return None
    settings = vc_state().settings
    now = _now()
    try:
        issued, seen = float(data["iat"]), float(data["seen"])
    except (KeyError, TypeError, ValueError):
        sign_out()
        return None
    if now - seen > settings.session_idle_minutes * 60 or now - issued > settings.session_absolute_hours * 3600:
        sign_out()
        request.environ["vc_plugin.session_expired"] = True
        return None
    practitioner = vc_state().directory.by_public_id(str(data.get("pid")))
    if practitioner is None or not practitioner.active or practitioner.role.value != data.get("role"):
        sign_out()
        return None
    voided = practitioner.sessions_valid_after
    if voided is not None and issued < voided.timestamp():
        sign_out()
        return None
    if now - seen > SEEN_WRITE_INTERVAL:
        data["seen"] = now
        cookie[USER_KEY] = data
    return practitioner


def _from_host_loader() -> Practitioner | None:
    state = vc_state()
    loader = state.practitioner_loader
    assert loader is not None
    host_user = loader()
    if host_user is None and _signed_in_with_flask_login():
        host_user = NOT_ALLOWED  # signed in with the host: its login page would only send them back
    if isinstance(host_user, NotAllowed):
        request.environ[NOT_ALLOWED_KEY] = True
        return None
    if host_user is None:
        return None
    try:
        role = Role(host_user.role)
    except ValueError:
        log.warning("practitioner_loader returned the unknown role %r; treated as not signed in", host_user.role)
        return None
    organisation = host_user.organisation or state.settings.default_organisation
    known = state.directory.by_subject("host", host_user.subject)
    if (
        known is not None
        and known.active
        and known.display_name == host_user.display_name[:200]
        and known.role is role
        and known.organisation.slug == organisation
    ):
        return known  # nothing changed: no write on every request
    practitioner = state.directory.provision(
        issuer="host",
        subject=host_user.subject,
        display_name=host_user.display_name,
        role=role,
        organisation_slug=organisation,
    )
    state.db.session.commit()
    return practitioner


def not_allowed_page() -> tuple[str, int]:
    """Signed in with the host, but without access to video consultations."""
    return render_template("vc_plugin/auth/not_allowed.html"), 403


def _signed_in_with_flask_login() -> bool:
    """Whether the host's Flask-Login knows a signed-in user (False for hosts without it)."""
    if getattr(current_app, "login_manager", None) is None:
        return False
    from flask_login import current_user

    return bool(getattr(current_user, "is_authenticated", False))


def _require(roles: frozenset[Role]) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            person = current_practitioner()
            if person is None:
                if request.path.startswith(f"{vc_state().settings.url_prefix}/api/") or request.is_json:
                    abort(401, description="Sign-in required.")
                if request.environ.get(NOT_ALLOWED_KEY):
                    return not_allowed_page()
                back = request.full_path.rstrip("?")
                if vc_state().practitioner_loader is not None:
                    return redirect(host_login_url(back) or url_for("vc.auth.sign_in_page", next=back))
                expired = {"expired": "1"} if request.environ.get("vc_plugin.session_expired") else {}
                return redirect(url_for("vc.auth.sign_in_page", next=back, **expired))
            if person.role not in roles:
                abort(403, description="Your role does not allow this.")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


#: Holds consultations: practitioners and admins.
practitioner_required = _require(frozenset({Role.PRACTITIONER, Role.ADMIN}))
#: Plans appointments: everyone who signs in.
staff_or_practitioner = _require(frozenset({Role.PRACTITIONER, Role.STAFF, Role.ADMIN}))
#: Organisation settings.
admin_required = _require(frozenset({Role.ADMIN}))


# --- participants (patients and others invited): no account, a pass in our cookie -------------

PASS_KEY = "vc_pass"  # noqa: S105 - a session key, not a password


def grant_pass(participant_pass: ParticipantPass) -> None:
    """Keep the pass (ids only) in our cookie, replacing an earlier one; the name stays in presence."""
    cookie[PASS_KEY] = participant_pass.as_dict()


def current_pass(invitation_public_id: str | None = None) -> ParticipantPass | None:
    found = ParticipantPass.from_dict(cookie.get(PASS_KEY))
    if found is None:
        return None
    if found.expires_at <= vc_state().clock.now().timestamp():
        cookie.pop(PASS_KEY, None)
        return None
    if invitation_public_id is not None and found.invitation != invitation_public_id:
        return None
    return found


def drop_pass() -> None:
    cookie.pop(PASS_KEY, None)
