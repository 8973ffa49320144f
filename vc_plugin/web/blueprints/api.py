"""The JSON API for host applications: ``/vc/api/v1/…`` and ``/vc/api/openapi.json``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, Response, abort, current_app, g, jsonify, request
from pydantic import BaseModel, ValidationError

from ...core.crypto import same_digest
from ...domain.access import Principal
from ...domain.appointments import NotFound, PlanningError
from ...domain.inputs import AppointmentIn, ParticipantIn, RescheduleIn, SendIn
from ...domain.probe_rooms import PROBE_SECONDS, open_probe_room
from ...domain.turn import relay_available, stun_servers, turn_credentials
from ..api_models import (
    AppointmentListOut,
    PractitionerListOut,
    appointment_out,
    issued_out,
    practitioner_out,
)
from ..bearer import accepts_bearer_token, bearer_token
from ..identity import current_practitioner
from ..navigation import socket_path
from ..openapi import document
from ..page_rules import storable_time, unstorable_fields
from ..state import vc_state

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_BODY = 64 * 1024
M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])


def problem(status: int, error: str, message: str, fields: dict[str, str] | None = None) -> Response:
    response = jsonify({"error": error, "message": message, **({"fields": fields} if fields else {})})
    response.status_code = status
    return response


def authenticated(view: F) -> F:
    """Bearer token (then only the token counts) or the signed-in session."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = vc_state()
        if "Authorization" in request.headers:
            token = bearer_token()
            row = state.api_tokens.authenticate(token) if token else None
            if row is None:
                return problem(401, "unauthorized", "Invalid or revoked API token.")
            g.vc_principal = Principal.api(row.organisation_id, row.id)
        else:
            person = current_practitioner()
            if person is None:
                return problem(401, "unauthorized", "Sign in, or send an API token.")
            g.vc_principal = Principal.of(person)
        try:
            return view(*args, **kwargs)
        except NotFound:
            return problem(404, "not_found", "No such appointment or invitation.")
        except PlanningError as error:
            if error.field == "state":
                return problem(409, "conflict", error.message)
            return problem(422, "invalid", error.message, {error.field: error.message})

    return accepts_bearer_token(wrapper)  # type: ignore[return-value]


def principal() -> Principal:
    return g.vc_principal


def body(model: type[M]) -> M:
    if (request.content_length or 0) > MAX_BODY:
        abort(problem(413, "payload_too_large", f"The body may have at most {MAX_BODY} bytes."))
    if not request.is_json:
        abort(problem(415, "unsupported_media_type", "Send the body as application/json."))
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY:
        abort(problem(413, "payload_too_large", f"The body may have at most {MAX_BODY} bytes."))
    try:
        parsed = model.model_validate_json(raw)
    except ValidationError as error:
        fields = {".".join(str(p) for p in item["loc"]) or "body": item["msg"] for item in error.errors()}
        if any(item["type"] == "json_invalid" for item in error.errors()):
            abort(problem(400, "bad_request", "The body is not valid JSON."))
        abort(problem(422, "invalid", "Some fields are invalid.", fields))
    unstorable = unstorable_fields(parsed.model_dump())
    if unstorable:
        abort(problem(422, "invalid", "Some fields are invalid.", unstorable))
    return parsed


def _query_time(name: str) -> datetime | None:
    value = request.args.get(name)
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        abort(problem(422, "invalid", f"{name} must be an ISO 8601 time with offset.", {name: "invalid"}))
    if moment.tzinfo is None:
        abort(problem(422, "invalid", f"{name} needs a time zone offset.", {name: "missing offset"}))
    if not storable_time(moment):
        abort(problem(422, "invalid", f"{name} is out of range.", {name: "out of range"}))
    return moment


def _query_limit() -> int:
    value = request.args.get("limit", "200")
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 1000:
        abort(problem(422, "invalid", "limit must be between 1 and 1000.", {"limit": "out of range"}))
    return int(value)


def _json(model: BaseModel, status: int = 200) -> Response:
    response = Response(model.model_dump_json(), mimetype="application/json")
    response.status_code = status
    return response


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document(vc_state().settings.url_prefix))


@bp.get("/v1/appointments")
@authenticated
def list_appointments() -> Response:
    book = vc_state().appointments
    upcoming = request.args.get("upcoming", "true").lower() not in {"false", "0", "no"}
    practitioner = request.args.get("practitioner") or None
    if practitioner is not None and len(practitioner) > 32:
        return problem(422, "invalid", "Unknown practitioner.", {"practitioner": "too long"})
    appointments = book.list(
        principal(),
        upcoming=upcoming,
        practitioner_public_id=practitioner,
        starts_from=_query_time("from"),
        starts_before=_query_time("to"),
        limit=_query_limit(),
    )
    return _json(AppointmentListOut(appointments=[appointment_out(book, a) for a in appointments]))


@bp.post("/v1/appointments")
@authenticated
def create_appointment() -> Response:
    book = vc_state().appointments
    planned = book.plan(principal(), body(AppointmentIn))
    out = appointment_out(book, planned.appointment).model_dump(mode="json")
    out["invitations"] = [issued_out(book, issued).model_dump(mode="json") for issued in planned.invitations]
    response = jsonify(out)
    response.status_code = 201
    return response


@bp.get("/v1/appointments/<string(maxlength=32):appointment_id>")
@authenticated
def get_appointment(appointment_id: str) -> Response:
    book = vc_state().appointments
    return _json(appointment_out(book, book.get(principal(), appointment_id)))


@bp.patch("/v1/appointments/<string(maxlength=32):appointment_id>")
@authenticated
def reschedule_appointment(appointment_id: str) -> Response:
    book = vc_state().appointments
    return _json(appointment_out(book, book.reschedule(principal(), appointment_id, body(RescheduleIn))))


@bp.post("/v1/appointments/<string(maxlength=32):appointment_id>/cancel")
@authenticated
def cancel_appointment(appointment_id: str) -> Response:
    book = vc_state().appointments
    return _json(appointment_out(book, book.cancel(principal(), appointment_id)))


@bp.delete("/v1/appointments/<string(maxlength=32):appointment_id>")
@authenticated
def delete_appointment(appointment_id: str) -> Response:
    vc_state().appointments.delete(principal(), appointment_id)
    return Response(status=204)


@bp.post("/v1/appointments/<string(maxlength=32):appointment_id>/participants")
@authenticated
def add_participant(appointment_id: str) -> Response:
    book = vc_state().appointments
    issued = book.add_participant(principal(), appointment_id, body(ParticipantIn))
    return _json(issued_out(book, issued), 201)


@bp.post("/v1/invitations/<string(maxlength=32):invitation_id>/send")
@authenticated
def send_invitation(invitation_id: str) -> Response:
    book = vc_state().appointments
    return _json(issued_out(book, book.resend(principal(), invitation_id, body(SendIn))))


@bp.get("/v1/appointments/<string(maxlength=32):appointment_id>/export")
@authenticated
def export_appointment(appointment_id: str) -> Response:
    """Everything stored about the appointment (Art. 15 and 20 GDPR), personal fields decrypted."""
    return jsonify(vc_state().subject_rights.export_appointment(principal(), appointment_id))


@bp.get("/v1/invitations/<string(maxlength=32):invitation_id>/export")
@authenticated
def export_participant(invitation_id: str) -> Response:
    return jsonify(vc_state().subject_rights.export_participant(principal(), invitation_id))


@bp.delete("/v1/invitations/<string(maxlength=32):invitation_id>")
@authenticated
def delete_participant(invitation_id: str) -> Response:
    """One participant's invitation and consent records, now (Art. 17 GDPR); the appointment stays."""
    vc_state().subject_rights.erase_participant(principal(), invitation_id)
    return Response(status=204)


@bp.post("/v1/probe")
@accepts_bearer_token
def probe() -> Response:
    """A two-minute probe room for ``flask vc probe``, authorised by the operator token."""
    state = vc_state()
    settings = state.settings
    token = bearer_token()
    if not settings.operator_token_hash or not token or not same_digest(token, settings.operator_token_hash):
        return problem(401, "unauthorized", "Invalid operator token.")
    data = request.get_json(silent=True) or {}
    relay = bool(data.get("relay")) if isinstance(data, dict) else False
    if relay and not relay_available(settings):
        return problem(409, "conflict", "No TURN server is configured.")
    grant = open_probe_room(state.presence, state.clock.now().timestamp(), secret_key=str(current_app.secret_key))
    servers = [s.as_json() for s in stun_servers(settings)]
    if relay_available(settings):
        now = state.clock.now()
        servers.append(turn_credentials(settings, now, now + timedelta(seconds=PROBE_SECONDS)).as_json())
    response = jsonify(
        room=grant.room,
        socket=socket_path("vc.ws.probe_socket", room=grant.room),
        tokens=grant.tokens,
        iceServers=servers,
    )
    response.status_code = 201
    return response


@bp.get("/v1/practitioners")
@authenticated
def list_practitioners() -> Response:
    people = vc_state().directory.colleagues(principal().organisation_id)
    return _json(PractitionerListOut(practitioners=[practitioner_out(p) for p in people]))
