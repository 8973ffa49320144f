"""Admins manage their organisation's name and API tokens; nobody else may."""

from __future__ import annotations

from tests.support.web import csrf, csrf_from, sign_in_as
from vc_plugin.core.models import ApiToken


def test_admin_creates_uses_and_revokes_a_token(app, people, clock, state):
    client = app.test_client()
    sign_in_as(client, people.boss, clock.now().timestamp())
    page = client.post(
        "/vc/admin/tokens",
        data={"csrf_token": csrf(client, "/vc/admin/"), "name": "Fallakte"},
        headers={"Accept-Language": "en"},
    )
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "shown only now" in text
    token = text.split('readonly class="vc-copy" value="', 1)[1].split('"', 1)[0]
    assert token.startswith("vcapi_")
    assert state.db.session.query(ApiToken).filter_by(name="Fallakte").one().digest != token
    assert (
        app.test_client().get("/vc/api/v1/practitioners", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    row = state.db.session.query(ApiToken).filter_by(name="Fallakte").one()
    listing = client.get("/vc/admin/").get_data(as_text=True)
    assert token not in listing  # never shown again
    client.post(f"/vc/admin/tokens/{row.id}/revoke", data={"csrf_token": csrf_from(listing)})
    assert (
        app.test_client().get("/vc/api/v1/practitioners", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )


def test_admin_renames_the_organisation(app, people, clock, state):
    client = app.test_client()
    sign_in_as(client, people.boss, clock.now().timestamp())
    token = csrf(client, "/vc/admin/")
    assert client.post("/vc/admin/name", data={"csrf_token": token, "name": "  Praxis   Nord  "}).status_code == 302
    state.db.session.expire_all()
    assert state.db.session.get(type(people.boss), people.boss.id).organisation.name == "Praxis Nord"
    assert client.post("/vc/admin/name", data={"csrf_token": token, "name": " "}).status_code == 422


def test_only_admins_of_the_organisation(app, people, clock, state):
    _, other = state.api_tokens.create("praxis-sued", "Süd")
    south_row = state.db.session.query(ApiToken).filter_by(name="Süd").one()
    for person in (people.doc, people.desk):
        client = app.test_client()
        sign_in_as(client, person, clock.now().timestamp())
        assert client.get("/vc/admin/").status_code == 403
    boss = app.test_client()
    sign_in_as(boss, people.boss, clock.now().timestamp())
    # Another organisation's token cannot be revoked from here.
    assert (
        boss.post(f"/vc/admin/tokens/{south_row.id}/revoke", data={"csrf_token": csrf(boss, "/vc/admin/")}).status_code
        == 404
    )
    assert (
        app.test_client().get("/vc/api/v1/practitioners", headers={"Authorization": f"Bearer {other}"}).status_code
        == 200
    )
