"""Ended by mistake: the patient's link says that the practice ended the consultation, the
practitioner opens it again from the call page, and the patient checks in again with the same
link and code and is admitted. In German and in English. (Screenshots: test_gallery.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    Practice,
    admit,
    check_in,
    enter_waiting_room,
    in_call,
    open_call,
    open_dashboard,
    running_practice,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WORDS = {
    "de": (
        "Ihre Praxis hat diese Sprechstunde beendet",
        "funktionieren dieser Link und Ihr Zugangscode wieder",
        "Sprechstunde wieder öffnen",
    ),
    "en": (
        "Your practice has ended this consultation",
        "this link and your access code will work again",
        "Open the consultation again",
    ),
}


@pytest.fixture(scope="module")
def practice(postgres_schema, tmp_path_factory) -> Iterator[Practice]:
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_schema)
    with running_practice(postgres_schema, tmp_path_factory.mktemp("reopen")) as world:
        yield world


@pytest.mark.parametrize("lang", ["de", "en"])
def test_end_by_mistake_then_reopen_and_the_patient_comes_back(browser, practice: Practice, lang: str) -> None:
    ended_title, works_again, reopen_label = WORDS[lang]
    planned = practice.plan(in_minutes=5)
    invitation = planned.invitations[0]
    doctor = practice.signed_in(browser, practice.people.doc, lang).new_page()
    # The practitioner's dashboard stays open in a second tab through the end and the reopening.
    dashboard = doctor.context.new_page()
    open_dashboard(dashboard, practice.url)
    patient = practice.context(browser, lang).new_page()
    check_in(patient, invitation.link, "Kim")
    enter_waiting_room(patient)
    open_call(doctor, practice.url, planned.appointment.public_id)
    admit(doctor, "Kim")
    in_call(doctor, patient)

    doctor.click("[data-leave]")
    doctor.wait_for_selector("[data-end-dialog][open]")
    doctor.click("[data-end-confirm]")
    doctor.wait_for_selector("[data-after]:not([hidden])")
    patient.wait_for_selector("[data-view=ended]:not([hidden])")
    card = dashboard.locator(f"[data-rooms] > li[data-appointment='{planned.appointment.public_id}']")
    expect(card).to_have_count(0)

    # The patient reloads: the room page sends them to the link, which says what happened.
    patient.reload()
    expect(patient.locator("[data-link-state=ended] h1")).to_have_text(ended_title)
    body = patient.locator("main").inner_text()
    assert works_again in body
    for misleading in ("expired", "abgelaufen", "is over", "vorbei"):
        assert misleading not in body
    # The negative: before the reopening the same link and code get the same page, not the form.
    patient.goto(invitation.link)
    expect(patient.locator("[data-link-state=ended]")).to_be_visible()
    expect(patient.locator("#vc-check-in")).to_have_count(0)

    # The practitioner opens it again from the call page, right where the end left them.
    doctor.get_by_role("button", name=reopen_label).click()
    doctor.wait_for_url(f"**/appointments/{planned.appointment.public_id}/call")
    doctor.wait_for_selector("[data-result=camera][data-state=ok]")
    doctor.click("[data-start]")
    doctor.wait_for_selector("[data-call]:not([hidden])")

    # The same link and code check in anew, wait, and are let in (opened afresh from the mail:
    # going to the same address with its fragment would not load the page again).
    patient.goto("about:blank")
    check_in(patient, invitation.link, "Kim")
    enter_waiting_room(patient)
    # The dashboard that saw the end lists Kim waiting again, without a reload.
    expect(card.locator(".vc-members > li", has_text="Kim").locator("a.vc-primary")).to_have_count(1)
    admit(doctor, "Kim")
    in_call(doctor, patient)
    doctor.context.close()
    patient.context.close()
