"""The JSON API: token and session authentication, organisation boundaries, bad input, OpenAPI."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from tests.support.web import csrf, sign_in_as
from vc_plugin.core.models import ApiToken

API = "/vc/api/v1"


@pytest.fixture
def tokens(state, people):
    _, north = state.api_tokens.create("praxis-nord", "case tool")
    _, south = state.api_tokens.create("praxis-sued", "other tool")
    return {"north": {"Authorization": f"Bearer {north}"}, "south": {"Authorization": f"Bearer {south}"}}


def body(clock, practitioner, minutes=60, **extra):
    start = clock.now() + timedelta(minutes=minutes)
    return {
        "practitioner": practitioner,
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(minutes=30)).isoformat(),
        **extra,
    }


def test_plan_list_get_reschedule_cancel_delete_with_a_token(app, people, clock, tokens):
    client = app.test_client()
    created = client.post(f"{API}/appointments", json=body(clock, people.doc.public_id), headers=tokens["north"])
    assert created.status_code == 201, created.json
    data = created.json
    [invitation] = data["invitations"]
    assert invitation["code"] and invitation["link_with_code"].endswith("#code=" + invitation["code"])
    appointment_id = data["id"]
    assert datetime.fromisoformat(data["starts_at"]) == datetime.fromisoformat(body(clock, "x")["starts_at"])
    assert (
        data["starts_at"]
        == client.get(f"{API}/appointments/{appointment_id}", headers=tokens["north"]).json["starts_at"]
    ), "created and read: the same ISO date-time, as the OpenAPI document says"
    listed = client.get(f"{API}/appointments", headers=tokens["north"]).json["appointments"]
    assert [a["id"] for a in listed] == [appointment_id]
    assert "code" not in listed[0]["invitations"][0]
    got = client.get(f"{API}/appointments/{appointment_id}", headers=tokens["north"]).json
    assert got["practitioner_name"] == "Dr. Maria Berg"
    later = clock.now() + timedelta(days=1)
    moved = client.patch(
        f"{API}/appointments/{appointment_id}",
        json={"starts_at": later.isoformat(), "ends_at": (later + timedelta(minutes=45)).isoformat()},
        headers=tokens["north"],
    )
    assert moved.status_code == 200 and moved.json["starts_at"].startswith(later.date().isoformat())
    added = client.post(
        f"{API}/appointments/{appointment_id}/participants", json={"kind": "interpreter"}, headers=tokens["north"]
    )
    assert added.status_code == 201 and added.json["code"]
    resent = client.post(
        f"{API}/invitations/{invitation['id']}/send", json={"email": "p@example.org"}, headers=tokens["north"]
    )
    assert resent.status_code == 200 and resent.json["code"] != invitation["code"]
    assert resent.json["delivery"] == "queued"
    assert (
        client.post(f"{API}/appointments/{appointment_id}/cancel", headers=tokens["north"]).json["state"] == "cancelled"
    )
    assert client.delete(f"{API}/appointments/{appointment_id}", headers=tokens["north"]).status_code == 204
    assert client.get(f"{API}/appointments/{appointment_id}", headers=tokens["north"]).status_code == 404


def test_practitioners_are_listed_for_the_tokens_organisation(app, people, tokens):
    names = [
        p["display_name"]
        for p in app.test_client().get(f"{API}/practitioners", headers=tokens["north"]).json["practitioners"]
    ]
    assert names == ["Anna Admin", "Dr. Jonas Kurz", "Dr. Maria Berg"]  # staff never hold calls


def test_another_organisations_token_sees_nothing(app, people, clock, tokens):
    client = app.test_client()
    appointment_id = client.post(
        f"{API}/appointments", json=body(clock, people.doc.public_id), headers=tokens["north"]
    ).json["id"]
    for method, path in [
        ("get", f"{API}/appointments/{appointment_id}"),
        ("post", f"{API}/appointments/{appointment_id}/cancel"),
        ("delete", f"{API}/appointments/{appointment_id}"),
    ]:
        assert getattr(client, method)(path, headers=tokens["south"]).status_code == 404
    assert client.get(f"{API}/appointments", headers=tokens["south"]).json == {"appointments": []}
    planned_for_other = client.post(
        f"{API}/appointments", json=body(clock, people.doc.public_id), headers=tokens["south"]
    )
    assert planned_for_other.status_code == 422 and planned_for_other.json["fields"] == {
        "practitioner": "unknown practitioner"
    }


def test_bad_tokens_are_refused(app, people, tokens, state):
    client = app.test_client()
    for header in ("Bearer vcapi_forged", "Bearer ", "Basic abc", "Bearer " + "x" * 5000):
        response = client.get(f"{API}/appointments", headers={"Authorization": header})
        assert response.status_code == 401 and response.json["error"] == "unauthorized"
    row = state.db.session.query(ApiToken).filter_by(name="case tool").one()
    state.api_tokens.revoke(row.organisation_id, row.id)
    assert client.get(f"{API}/appointments", headers=tokens["north"]).status_code == 401
    assert client.get(f"{API}/appointments").status_code == 401


def test_bad_bodies_get_clear_errors(app, people, clock, tokens):
    client = app.test_client()
    url = f"{API}/appointments"
    headers = tokens["north"]
    assert client.post(url, data="{", content_type="application/json", headers=headers).status_code == 400
    assert client.post(url, data="starts_at=now", headers=headers).status_code == 415
    huge = json.dumps({**body(clock, people.doc.public_id), "label": "x" * 70_000})
    assert client.post(url, data=huge, content_type="application/json", headers=headers).status_code == 413
    past = client.post(url, json=body(clock, people.doc.public_id, minutes=-120), headers=headers)
    assert past.status_code == 422 and "starts_at" in past.json["fields"]
    backwards = body(clock, people.doc.public_id)
    backwards["ends_at"], backwards["starts_at"] = backwards["starts_at"], backwards["ends_at"]
    assert client.post(url, json=backwards, headers=headers).status_code == 422
    bad_mail = client.post(
        url, json=body(clock, people.doc.public_id, participants=[{"email": "nope"}]), headers=headers
    )
    assert bad_mail.status_code == 422 and "participants.0.email" in bad_mail.json["fields"]
    assert client.get(f"{url}?from=yesterday", headers=headers).status_code == 422
    assert client.get(f"{url}?limit=0", headers=headers).status_code == 422
    assert client.get(f"{url}/{'x' * 40}", headers=headers).status_code == 404


def test_session_authentication_needs_the_csrf_header(app, people, clock):
    client = app.test_client()
    sign_in_as(client, people.doc, clock.now().timestamp())
    payload = body(clock, None)
    assert client.post(f"{API}/appointments", json=payload).status_code == 400  # no CSRF token
    token = csrf(client, "/vc/practice/")
    created = client.post(f"{API}/appointments", json=payload, headers={"X-CSRFToken": token})
    assert created.status_code == 201
    assert created.json["practitioner"] == people.doc.public_id
    # Another practitioner's session sees nothing of it.
    other = app.test_client()
    sign_in_as(other, people.colleague, clock.now().timestamp())
    assert other.get(f"{API}/appointments/{created.json['id']}").status_code == 404


def test_openapi_document_matches_the_routes(app):
    spec = app.test_client().get("/vc/api/openapi.json").json
    assert spec["openapi"].startswith("3.1")
    documented = set()
    for path, item in spec["paths"].items():
        for method in item:
            if method in {"get", "post", "patch", "delete"}:
                documented.add((method.upper(), spec["servers"][0]["url"] + path.replace("{id}", "<id>")))
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/vc/api/v1/"):
            path = rule.rule
            for name in ("appointment_id", "invitation_id"):
                path = path.replace(f"<string(maxlength=32):{name}>", "<id>")
            served |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == served
    for name in ("AppointmentIn", "PlannedAppointmentOut", "ErrorOut"):
        assert name in spec["components"]["schemas"]
