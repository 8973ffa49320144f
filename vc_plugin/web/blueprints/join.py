"""The patient's side: the invitation link, check-in, and the room page (waiting room and call)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from flask import Blueprint, jsonify, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ...domain.appointments import LinkState
from ...domain.check_in import CheckInProblem, CheckInRefused
from ..identity import current_pass, drop_pass, grant_pass
from ..language import preferred_language
from ..navigation import socket_path
from ..page_rules import allow_camera_and_microphone, wants_json
from ..ratelimits import code_entry_client
from ..state import vc_state
from .socket_tickets import ticket_config

bp = Blueprint("join", __name__, url_prefix="/join")

STATUS = {
    CheckInProblem.UNKNOWN: 404,
    CheckInProblem.CANCELLED: 410,
    CheckInProblem.EXPIRED: 410,
    CheckInProblem.ENDED: 410,  # until the practice reopens it
    CheckInProblem.NOT_YET_OPEN: 200,
    CheckInProblem.THROTTLED: 429,  # this client pauses; the link works for everybody else
    CheckInProblem.WRONG_CODE: 403,
    CheckInProblem.NAME: 422,
    CheckInProblem.CONSENT: 422,
}


def _closed(invitation_id: str, problem: CheckInProblem) -> tuple[str, int]:
    state = vc_state()
    if problem is CheckInProblem.NOT_YET_OPEN:
        invitation = state.appointments.invitation_by_public_id(invitation_id)
        assert invitation is not None
        appointment = invitation.appointment
        # The device test on this page talks to no practice server: only the STUN servers, as in the room.
        allow_camera_and_microphone()
        return render_template(
            "vc_plugin/join/not_yet.html",
            appointment=appointment,
            practitioner=appointment.practitioner,
            client_config={"stun": _stun_servers()},
        ), 200
    return render_template("vc_plugin/join/invalid.html", reason=problem.value), STATUS[problem]


def _stun_servers() -> list[dict[str, object]]:
    urls = vc_state().settings.stun_urls
    return [{"urls": urls}] if urls else []


def _check_in_page(invitation_id: str, status: int = 200, **extra: object) -> Response:
    state = vc_state()
    invitation = state.check_in.invitation(invitation_id)
    appointment = invitation.appointment
    paused_until = state.check_in.paused_until(invitation, code_entry_client())
    context = {
        "invitation": invitation,
        "appointment": appointment,
        "practitioner": appointment.practitioner,
        "paused_until": paused_until,  # this client only, after too many wrong codes
        "form": request.form,
        "problem": None,
        "attempts_left": None,
        **extra,
    }
    response = make_response(render_template("vc_plugin/join/check_in.html", **context), status)
    if status == 429 and paused_until is not None:
        response.headers["Retry-After"] = _retry_after(paused_until)
    return response


def _retry_after(until: datetime) -> str:
    # One second more: Flask-Limiter rewrites this header on its endpoints and rounds it down.
    wait = (until - vc_state().clock.now()).total_seconds()
    return str(max(1, math.ceil(wait)) + 1)


@bp.get("/<string(maxlength=32):invitation_id>")
def link(invitation_id: str) -> tuple[str, int] | Response:
    """The link from the invitation. The code travels in the fragment and never reaches us here."""
    if current_pass(invitation_id) is not None:
        return redirect(url_for(".room", invitation_id=invitation_id))
    try:
        return _check_in_page(invitation_id)
    except CheckInRefused as refused:
        return _closed(invitation_id, refused.problem)


@bp.post("/<string(maxlength=32):invitation_id>")
def check_in(invitation_id: str) -> tuple[str, int] | Response:
    state = vc_state()
    try:
        participant_pass = state.check_in.check_in(
            invitation_id,
            code=request.form.get("code", "")[:64],
            name=request.form.get("name", "")[:200],
            consent=request.form.get("consent") == "yes",
            language=preferred_language(),
            client=code_entry_client(),
        )
    except CheckInRefused as refused:
        if wants_json():
            return _refused_as_json(refused)
        if refused.problem in {
            CheckInProblem.UNKNOWN,
            CheckInProblem.CANCELLED,
            CheckInProblem.EXPIRED,
            CheckInProblem.ENDED,
            CheckInProblem.NOT_YET_OPEN,
        }:
            return _closed(invitation_id, refused.problem)
        return _check_in_page(
            invitation_id, STATUS[refused.problem], problem=refused.problem.value, attempts_left=refused.attempts_left
        )
    grant_pass(participant_pass)
    if wants_json():
        return jsonify(
            appointment=participant_pass.appointment,
            participant=participant_pass.participant,
            socket=socket_path("vc.ws.room_socket", appointment_id=participant_pass.appointment),
            room=url_for(".room", invitation_id=invitation_id),
            expires_at=participant_pass.expires_at,
        )
    return redirect(url_for(".room", invitation_id=invitation_id))


def _refused_as_json(refused: CheckInRefused) -> Response:
    """The form's statuses, with the problem as a stable code (docs/signaling.md, "Check-in")."""
    body: dict[str, object] = {"error": refused.problem.value}
    if refused.attempts_left is not None:
        body["attempts_left"] = refused.attempts_left
    response = jsonify(body)
    response.status_code = STATUS[refused.problem]
    if refused.until is not None:
        response.headers["Retry-After"] = _retry_after(refused.until)
    return response


@bp.get("/<string(maxlength=32):invitation_id>/room")
def room(invitation_id: str) -> tuple[str, int] | Response:
    """Device check, waiting room and call, on one page with one connection."""
    state = vc_state()
    participant_pass = current_pass(invitation_id)
    record = state.check_in.valid_record(participant_pass) if participant_pass is not None else None
    if participant_pass is None or record is None:
        drop_pass()
        return redirect(url_for(".link", invitation_id=invitation_id))
    invitation = state.appointments.invitation_by_public_id(invitation_id)
    assert invitation is not None and state.appointments.link_state(invitation) is LinkState.OPEN
    settings = state.settings
    client_config = {
        "socket": socket_path("vc.ws.room_socket", appointment_id=participant_pass.appointment),
        **ticket_config(),
        "stun": _stun_servers(),
        "timeZone": settings.display_timezone,
    }
    return render_template(
        "vc_plugin/join/room.html",
        participant=participant_pass,
        participant_name=record.name,
        appointment=invitation.appointment,
        practitioner=invitation.appointment.practitioner,
        client_config=client_config,
    ), 200


@bp.get("/<string(maxlength=32):invitation_id>/privacy")
def receipt(invitation_id: str) -> tuple[str, int] | Response:
    """A checked-in participant's privacy receipt: what is stored about this appointment, and until when."""
    state = vc_state()
    participant_pass = current_pass(invitation_id)
    record = state.check_in.valid_record(participant_pass) if participant_pass is not None else None
    if participant_pass is None or record is None:
        return redirect(url_for(".link", invitation_id=invitation_id))
    invitation = state.appointments.invitation_by_public_id(invitation_id)
    assert invitation is not None
    return render_template(
        "vc_plugin/join/receipt.html",
        participant=participant_pass,
        participant_name=record.name,
        invitation=invitation,
        appointment=invitation.appointment,
        consents=state.subject_rights.consents_of(invitation),
        deleted_by=state.purger.policy.deleted_by(invitation.appointment),
        presence_until=invitation.appointment.ends_at
        + timedelta(minutes=state.settings.retention_presence_grace_minutes),
        settings=state.settings,
    ), 200


@bp.post("/<string(maxlength=32):invitation_id>/leave")
def leave(invitation_id: str) -> Response:
    drop_pass()
    return redirect(url_for(".left", invitation_id=invitation_id))


@bp.get("/<string(maxlength=32):invitation_id>/left")
def left(invitation_id: str) -> str:
    return render_template("vc_plugin/join/left.html", invitation_id=invitation_id)
