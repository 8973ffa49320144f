"""Pages anyone may open: health, language choice, the privacy notice."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from sqlalchemy import text

from ..cookie import cookie
from ..identity import current_practitioner
from ..language import SESSION_KEY, preferred_language
from ..navigation import safe_next
from ..privacy_notice import build_notice
from ..state import vc_state

bp = Blueprint("public", __name__)


@bp.get("/health")
def health() -> tuple[Response, int]:
    """For load balancers: 200 when the database (and Redis, if used) answer."""
    state = vc_state()
    checks: dict[str, str] = {}
    try:
        state.db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:  # noqa: BLE001 - any failure is "unavailable" to a load balancer
        state.db.session.rollback()
        checks["database"] = "unavailable"
    if state.redis is not None:
        try:
            state.redis.ping()
            checks["redis"] = "ok"
        except Exception:  # noqa: BLE001
            checks["redis"] = "unavailable"
    healthy = all(value == "ok" for value in checks.values())
    return jsonify(status="ok" if healthy else "degraded", **checks), 200 if healthy else 503


@bp.post("/language")
def choose_language() -> Response:
    language = request.form.get("language", "")
    if language in vc_state().settings.languages:
        cookie[SESSION_KEY] = language
    return redirect(safe_next(request.form.get("next"), default=vc_state().settings.url_prefix + "/"))


@bp.get("/privacy")
def privacy_notice() -> str:
    """The technical part of the privacy notice, from the configuration in force (no sign-in needed)."""
    notice = build_notice(vc_state().settings, preferred_language())
    return render_template("vc_plugin/privacy.html", notice=notice)


@bp.get("/")
def home() -> Response:
    """Entry point of our pages: the dashboard when signed in, else the sign-in page."""
    if current_practitioner() is None:
        return redirect(url_for("vc.auth.sign_in_page"))
    return redirect(url_for("vc.practice.dashboard"))
