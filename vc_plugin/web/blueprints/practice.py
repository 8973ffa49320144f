"""Pages for practitioners and staff: the dashboard, the practitioner's call page and planning."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, abort, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ...core.catalogue import gettext as _
from ...core.crypto import DecryptionError
from ...core.models import Appointment, AppointmentKind, ParticipantKind, Practitioner
from ...domain.access import CallRefusal, Principal, call_refusal
from ...domain.appointments import AccessDenied, NotFound, PlanningError, suggested_start
from ...domain.inputs import AppointmentIn, ParticipantIn, RescheduleIn, SendIn
from ...domain.subject_rights import as_json
from ..forms import DURATIONS, appointment_from_form, participant_from_form, reschedule_from_form, translate
from ..identity import current_practitioner, practitioner_required, staff_or_practitioner
from ..language import local_time
from ..navigation import socket_path
from ..page_rules import unstorable_fields, wants_json
from ..state import vc_state
from .socket_tickets import ticket_config

bp = Blueprint("practice", __name__, url_prefix="/practice")


def _me() -> Principal:
    person = current_practitioner()
    assert person is not None  # the decorators ensure it
    return Principal.of(person)


def _page(template: str, status: int = 200, **context: object) -> tuple[str, int]:
    state = vc_state()
    me = current_practitioner()
    return (
        render_template(
            template,
            me=me,
            settings=state.settings,
            book=state.appointments,
            colleagues=state.directory.colleagues(me.organisation_id) if me else [],
            durations=DURATIONS,
            participant_kinds=list(ParticipantKind),
            **context,
        ),
        status,
    )


def _appointment(appointment_id: str) -> Appointment:
    try:
        return vc_state().appointments.get(_me(), appointment_id)
    except NotFound:
        abort(404)


@bp.get("/")
@staff_or_practitioner
def dashboard() -> tuple[str, int]:
    state = vc_state()
    zone = state.settings.zone
    today = state.clock.now().astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    appointments = state.appointments.list(_me(), starts_from=today, starts_before=today + timedelta(days=1))
    me = current_practitioner()
    assert me is not None
    client_config = {
        "socket": socket_path("vc.ws.practice_socket"),
        **ticket_config(),
        "role": me.role.value,
        "me": me.public_id,
        "colleagues": [
            {"id": p.public_id, "name": p.display_name} for p in state.directory.colleagues(me.organisation_id)
        ],
        "callUrl": url_for(".call", appointment_id="APPOINTMENT"),
        "notify": False,
        "timeZone": state.settings.display_timezone,
    }
    return _page("vc_plugin/practice/dashboard.html", appointments=appointments, client_config=client_config)


def _held_call(appointment_id: str) -> tuple[Practitioner, Appointment]:
    """The signed-in practitioner and the appointment whose call they hold (else 403, 404 or 410)."""
    appointment = _appointment(appointment_id)
    me = current_practitioner()
    assert me is not None
    refusal = call_refusal(me, appointment)
    if refusal is CallRefusal.OVER:
        abort(410, description="This consultation is over.")
    if refusal is not None:
        abort(403, description="Only the appointment's practitioner holds the call.")
    return me, appointment


@bp.get("/appointments/<string(maxlength=32):appointment_id>/call")
@practitioner_required
def call(appointment_id: str) -> tuple[str, int] | Response:
    """The practitioner's side of the call; only the appointment's own practitioner holds it.

    Once ended, the appointment page offers to open it again (while that is possible)."""
    ended = _appointment(appointment_id)
    if vc_state().appointments.may_reopen(_me(), ended):
        return redirect(url_for(".appointment", appointment_id=appointment_id))
    _, appointment = _held_call(appointment_id)
    client_config = {
        "socket": socket_path("vc.ws.room_socket", appointment_id=appointment.public_id),
        "queueSocket": socket_path("vc.ws.practice_socket"),
        **ticket_config(),
        "appointment": appointment.public_id,
        "admit": request.args.get("admit") or None,
        "stun": [{"urls": vc_state().settings.stun_urls}] if vc_state().settings.stun_urls else [],
        "timeZone": vc_state().settings.display_timezone,
    }
    return _page(
        "vc_plugin/practice/call.html",
        appointment=appointment,
        client_config=client_config,
        introductions_at=vc_state().introductions.confirmed_at(appointment),
        link_closes=vc_state().appointments.link_closes(appointment),
    )


@bp.post("/appointments/<string(maxlength=32):appointment_id>/introductions")
@practitioner_required
def confirm_introductions(appointment_id: str) -> Response:
    """KBV Anlage 31b: the practitioner confirms that everyone present was introduced. Once per
    appointment; a second confirmation answers the first one's time and records nothing."""
    me, appointment = _held_call(appointment_id)
    public_id = appointment.public_id
    confirmation = vc_state().introductions.confirm(me, appointment)
    if wants_json():
        return jsonify(
            confirmed_at=confirmation.at.isoformat(),
            time=local_time(confirmation.at, "time"),
            recorded=confirmation.recorded,
        )
    return redirect(url_for(".call", appointment_id=public_id))


@bp.get("/appointments")
@staff_or_practitioner
def appointments() -> tuple[str, int]:
    upcoming = request.args.get("view") != "past"
    items = vc_state().appointments.list(_me(), upcoming=upcoming)
    return _page("vc_plugin/practice/appointments.html", appointments=items, upcoming=upcoming)


def _plan_form(errors: dict[str, str] | None = None, status: int = 200) -> tuple[str, int]:
    state = vc_state()
    now = state.clock.now().astimezone(state.settings.zone)
    suggestion = suggested_start(now)
    return _page(
        "vc_plugin/practice/plan.html",
        status,
        errors=errors or {},
        form=request.form,
        suggestion=suggestion,
        rows=state.settings.max_participants - 1,
        kinds=list(AppointmentKind),
    )


@bp.get("/appointments/new")
@staff_or_practitioner
def plan_page() -> tuple[str, int]:
    return _plan_form()


@bp.post("/appointments/new")
@staff_or_practitioner
def plan() -> tuple[str, int]:
    state = vc_state()
    result = appointment_from_form(request.form, state.settings.zone, state.settings.max_participants - 1)
    if result.model is None:
        return _plan_form(result.errors, 422)
    assert isinstance(result.model, AppointmentIn)
    if unstorable_fields(result.model.model_dump()):
        abort(400, description="A field holds what cannot be stored.")  # a forged form: NUL, year 9999
    try:
        planned = state.appointments.plan(_me(), result.model)
    except PlanningError as error:
        return _plan_form({error.field: translate(error.message)}, 422)
    # Shown once, right here: codes are not stored in clear and not put into a redirect.
    return _page("vc_plugin/practice/planned.html", appointment=planned.appointment, issued=planned.invitations)


@bp.get("/appointments/<string(maxlength=32):appointment_id>")
@staff_or_practitioner
def appointment(appointment_id: str) -> tuple[str, int]:
    return _detail(_appointment(appointment_id))


def _detail(
    appointment: Appointment, errors: dict[str, str] | None = None, status: int = 200, **extra: object
) -> tuple[str, int]:
    state = vc_state()
    try:
        label_text = state.appointments.label(appointment)
    except DecryptionError:
        label_text = _("unreadable: the organisation's data key was destroyed")
    return _page(
        "vc_plugin/practice/appointment.html",
        status,
        appointment=appointment,
        label_text=label_text,
        deleted_by=state.purger.policy.deleted_by(appointment),
        may_reopen=state.appointments.may_reopen(_me(), appointment),
        link_closes=state.appointments.link_closes(appointment),
        errors=errors or {},
        **extra,
    )


@bp.post("/appointments/<string(maxlength=32):appointment_id>/reschedule")
@staff_or_practitioner
def reschedule(appointment_id: str) -> tuple[str, int] | Response:
    state = vc_state()
    appointment = _appointment(appointment_id)
    result = reschedule_from_form(request.form, state.settings.zone)
    if result.model is None:
        return _detail(appointment, result.errors, 422)
    assert isinstance(result.model, RescheduleIn)
    if unstorable_fields(result.model.model_dump()):
        abort(400, description="A field holds what cannot be stored.")
    try:
        state.appointments.reschedule(_me(), appointment_id, result.model)
    except PlanningError as error:
        return _detail(appointment, {error.field: translate(error.message)}, 422)
    return redirect(url_for(".appointment", appointment_id=appointment_id))


@bp.post("/appointments/<string(maxlength=32):appointment_id>/cancel")
@staff_or_practitioner
def cancel(appointment_id: str) -> Response:
    try:
        vc_state().appointments.cancel(_me(), appointment_id)
    except NotFound:
        abort(404)
    return redirect(url_for(".appointment", appointment_id=appointment_id))


@bp.post("/appointments/<string(maxlength=32):appointment_id>/reopen")
@practitioner_required
def reopen(appointment_id: str) -> tuple[str, int] | Response:
    """Undo "End for everyone" (docs/appointments.md): new check-ins with the same link and code work again."""
    appointment = _appointment(appointment_id)
    try:
        vc_state().appointments.reopen(_me(), appointment_id)
    except AccessDenied:
        abort(403, description="Only the appointment's practitioner reopens the consultation.")
    except PlanningError:
        return _detail(appointment, {"state": _("This consultation can no longer be opened again.")}, 409)
    target = ".call" if request.form.get("then") == "call" else ".appointment"
    return redirect(url_for(target, appointment_id=appointment_id))


@bp.post("/appointments/<string(maxlength=32):appointment_id>/delete")
@staff_or_practitioner
def delete(appointment_id: str) -> Response:
    try:
        vc_state().appointments.delete(_me(), appointment_id)
    except NotFound:
        abort(404)
    return redirect(url_for(".appointments", deleted=1))


@bp.get("/appointments/<string(maxlength=32):appointment_id>/export")
@staff_or_practitioner
def export(appointment_id: str) -> Response:
    """Everything stored about the appointment as a JSON download (Art. 15 and 20 GDPR)."""
    try:
        document = vc_state().subject_rights.export_appointment(_me(), appointment_id)
    except NotFound:
        abort(404)
    return _download(document, f"appointment-{appointment_id}.json")


@bp.get("/invitations/<string(maxlength=32):invitation_id>/export")
@staff_or_practitioner
def export_participant(invitation_id: str) -> Response:
    try:
        document = vc_state().subject_rights.export_participant(_me(), invitation_id)
    except NotFound:
        abort(404)
    return _download(document, f"participant-{invitation_id}.json")


def _download(document: dict[str, object], filename: str) -> Response:
    return Response(
        as_json(document),
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@bp.post("/invitations/<string(maxlength=32):invitation_id>/delete")
@staff_or_practitioner
def delete_participant(invitation_id: str) -> Response:
    """One participant's invitation and consent records, now (Art. 17 GDPR)."""
    state = vc_state()
    try:
        appointment_id = state.appointments.invitation(_me(), invitation_id).appointment.public_id
        state.subject_rights.erase_participant(_me(), invitation_id)
    except NotFound:
        abort(404)
    return redirect(url_for(".appointment", appointment_id=appointment_id))


@bp.post("/appointments/<string(maxlength=32):appointment_id>/participants")
@staff_or_practitioner
def add_participant(appointment_id: str) -> tuple[str, int]:
    state = vc_state()
    appointment = _appointment(appointment_id)
    result = participant_from_form(request.form)
    if result.model is None:
        return _detail(appointment, result.errors, 422)
    assert isinstance(result.model, ParticipantIn)
    try:
        issued = state.appointments.add_participant(_me(), appointment_id, result.model)
    except PlanningError as error:
        return _detail(appointment, {error.field: translate(error.message)}, 422)
    return _detail(_appointment(appointment_id), issued=[issued])


@bp.post("/invitations/<string(maxlength=32):invitation_id>/resend")
@staff_or_practitioner
def resend(invitation_id: str) -> tuple[str, int]:
    state = vc_state()
    try:
        invitation = state.appointments.invitation(_me(), invitation_id)
    except NotFound:
        abort(404)
    appointment = invitation.appointment
    try:
        issued = state.appointments.resend(_me(), invitation_id, SendIn(email=request.form.get("email") or None))
    except PlanningError as error:
        return _detail(appointment, {f"resend-{invitation_id}": translate(error.message)}, 422)
    except ValueError:
        return _detail(appointment, {f"resend-{invitation_id}": translate("not a valid email address")}, 422)
    return _detail(_appointment(appointment.public_id), issued=[issued])


def as_local(moment: datetime) -> datetime:
    return moment.astimezone(vc_state().settings.zone)


@bp.app_template_filter("vc_local")
def vc_local(moment: datetime) -> datetime:
    return as_local(moment)
