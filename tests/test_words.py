"""Words a worried patient understands (issue 17, "Words" and the check-in): times said as people
say them ("10:05 Uhr", no seconds, no zone names), no technical words on patients' screens, one
"please stay", a greeting in English that is English, and an agreement that survives a typo."""

from __future__ import annotations

import re

from flask import render_template

from tests.support.planning import plan_soon
from tests.support.web import csrf, sign_in_as
from vc_plugin.core.catalogue import language
from vc_plugin.domain.invitation_message import compose_invitation
from vc_plugin.domain.invitations import InvitationPayload
from vc_plugin.web.client_strings import client_strings


def test_the_invitation_says_the_time_without_seconds_or_zone_names(host, app, state, people):
    planned = plan_soon(host, people, email="time.words@example.org")  # 10:05 in Berlin, 23 November 2026
    issued = planned.invitations[0]
    payload = InvitationPayload(
        key="k1", code=issued.code, link=issued.link, email="time.words@example.org", phone=None
    )
    expected = {
        "de": r"Wann: Montag, 23\. November 2026, 10:05 Uhr\n",
        "en": r"When: Monday, November 23, 2026, 10:05\WAM\n",
    }
    for lang, when in expected.items():
        issued.invitation.language = lang
        message = compose_invitation(
            state.settings,
            issued.invitation,
            people.doc,
            payload,
            sender_domain="praxis.example",
            render=render_template,
        )
        text = message.get_body(("plain",)).get_content()
        assert re.search(when, text), text
        assert "10:05:00" not in text and "Normalzeit" not in text and "Standard Time" not in text, text


def test_pages_say_from_to_with_uhr_once(app, host, people, clock):
    planned = plan_soon(host, people)
    link = f"/vc/join/{planned.invitations[0].invitation.public_id}"
    german = app.test_client().get(link, headers={"Accept-Language": "de"}).get_data(as_text=True)
    english = app.test_client().get(link, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "10:05–10:35 Uhr" in german and "Uhr–" not in german
    assert re.search(r"10:05\WAM–10:35\WAM", english)


def test_the_dashboard_greets_in_plain_english(app, people, clock):
    client = app.test_client()
    sign_in_as(client, people.doc, clock.now().timestamp())
    page = client.get("/vc/practice/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Hello, Dr. Maria Berg" in page and "Good day" not in page


def test_patients_screens_use_no_technical_words_and_say_stay_once(app):
    with language("de"):
        words = client_strings()
    patient_facing = {k: v for k, v in words.items() if not k.startswith(("admit", "decline", "introductions"))}
    for key, text in patient_facing.items():
        assert "Relay" not in text and "Prozent" not in text and "Nächste/r" not in text, (key, text)
    assert "Bitte bleiben Sie auf dieser Seite" not in words["waiting_next"]  # the room's lead says it already
    assert words["decline"] == "Ablehnen"
    states = [words[f"state_{name}"] for name in ("connecting", "connected", "disconnected", "failed", "closed")]
    assert all(text[0].isupper() for text in states), states
    assert words["clock_time"].format(time="10:05") == "10:05 Uhr"
    with language("en"):
        assert client_strings()["clock_time"].format(time="10:05 AM") == "10:05 AM"


def test_the_agreement_is_kept_after_a_wrong_code(app, host, people):
    planned = plan_soon(host, people)
    link = f"/vc/join/{planned.invitations[0].invitation.public_id}"
    client = app.test_client()
    form = {"csrf_token": csrf(client, link), "code": "AAAAA-AAAAA", "name": "Alex", "consent": "yes"}
    wrong = client.post(link, data=form, headers={"Accept-Language": "en"})
    page = wrong.get_data(as_text=True)
    assert wrong.status_code == 403 and "This code is not right" in page
    assert re.search(r'<input type="checkbox" name="consent" value="yes" required checked>', page), page
    # Without the tick, none appears.
    unticked = client.post(link, data={**form, "consent": ""}, headers={"Accept-Language": "en"})
    assert "required checked" not in unticked.get_data(as_text=True)
