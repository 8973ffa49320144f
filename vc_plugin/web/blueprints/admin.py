"""Organisation settings for admins: the name, the API tokens, and people who leave."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ...core.audit import Actor, ActorKind
from ..identity import admin_required, current_practitioner
from ..state import vc_state

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _page(status: int = 200, **context: object) -> tuple[str, int]:
    state = vc_state()
    me = current_practitioner()
    assert me is not None
    values = {
        "me": me,
        "organisation": me.organisation,
        "tokens": state.api_tokens.list(me.organisation_id),
        "people": state.directory.colleagues(me.organisation_id, may_join_calls=False),
        "new_token": None,
        **context,
    }
    return render_template("vc_plugin/admin/organisation.html", **values), status


@bp.get("/")
@admin_required
def organisation() -> tuple[str, int]:
    return _page()


@bp.post("/name")
@admin_required
def rename() -> tuple[str, int] | Response:
    name = " ".join(request.form.get("name", "").split())
    if not 1 <= len(name) <= 200 or "\x00" in name:
        return _page(422, name_error=True)
    me = current_practitioner()
    assert me is not None
    me.organisation.name = name
    vc_state().db.session.commit()
    return redirect(url_for(".organisation"))


@bp.post("/tokens")
@admin_required
def create_token() -> tuple[str, int]:
    label = " ".join(request.form.get("name", "").split())[:100]
    if not label or "\x00" in label:
        return _page(422, token_error=True)
    me = current_practitioner()
    assert me is not None
    _, token = vc_state().api_tokens.create(me.organisation.slug, label)
    # Shown once, in this response only.
    return _page(new_token=token)


@bp.post("/tokens/<int:token_id>/revoke")
@admin_required
def revoke_token(token_id: int) -> Response:
    me = current_practitioner()
    assert me is not None
    if not vc_state().api_tokens.revoke(me.organisation_id, token_id):
        abort(404)
    return redirect(url_for(".organisation"))


@bp.post("/people/<string(maxlength=32):practitioner_id>/delete")
@admin_required
def delete_person(practitioner_id: str) -> Response:
    """Someone leaves the organisation: their appointments with all data, then their record."""
    me = current_practitioner()
    assert me is not None
    if practitioner_id == me.public_id:
        abort(409, description="Admins cannot delete themselves; ask another admin or the operator.")
    try:
        vc_state().subject_rights.erase_practitioner(
            Actor(ActorKind.of(me.role), me.id), practitioner_id, organisation_id=me.organisation_id
        )
    except LookupError:
        abort(404)
    return redirect(url_for(".organisation", deleted=1))
