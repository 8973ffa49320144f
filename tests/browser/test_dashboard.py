"""The practitioner's dashboard and the waiting room's words about time, in real Chromium (issue 17):
cards only for rooms someone is in (items 3), what the device check found beside the waiting person
(item 6), and waiting-time information: an estimate for the patient, running late in one click.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.browser.conftest import (
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    Practice,
    check_in,
    chromium_path,
    enter_waiting_room,
    open_call,
    open_dashboard,
    running_practice,
    screenshot,
)
from vc_plugin.core.models import AppointmentKind

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def world(postgres_schema, tmp_path_factory) -> Iterator[Practice]:
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_schema)
    with running_practice(postgres_schema, tmp_path_factory.mktemp("dashboard")) as practice:
        yield practice


def test_only_rooms_someone_is_in_are_cards_and_their_tools_are_folded(browser, world):
    """Item 3: an appointment whose patient left again is no card (it stays in "Today"); the one with
    someone waiting is, and its message and handover wait behind one line."""
    colleague = world.people.colleague
    left_again, waiting = (
        world.plan(by=colleague, in_minutes=5),
        world.plan(by=colleague, in_minutes=10, participants=2, kind=AppointmentKind.GROUP),
    )
    doctor = world.signed_in(browser, colleague, "en", PHONE).new_page()
    open_dashboard(doctor, world.url)
    first = world.context(browser, "en").new_page()
    check_in(first, left_again.invitations[0].link, "Kim Early")
    enter_waiting_room(first)
    doctor.locator("[data-rooms] .vc-member", has_text="Kim Early").wait_for()
    first.click("[data-leave-waiting]")
    doctor.locator("[data-rooms] .vc-room-card").wait_for(state="detached")
    assert doctor.is_visible("[data-empty]"), "an empty waiting room says so once, without a card"

    second = world.context(browser, "en").new_page()
    check_in(second, waiting.invitations[0].link, "Lou Waiting")
    enter_waiting_room(second)
    card = doctor.locator("[data-rooms] .vc-room-card")
    card.locator(".vc-member", has_text="Lou Waiting").wait_for()
    assert card.count() == 1 and card.get_attribute("data-appointment") == waiting.appointment.public_id
    assert doctor.is_hidden("[data-empty]")
    notice = card.locator("input[type=text]")
    assert notice.is_hidden(), "the message field is folded away under the people"
    card.locator("summary").click()
    assert notice.is_visible()
    # The opened section survives the list being rebuilt (an update arrives, the minute ticks).
    third = world.context(browser, "en").new_page()
    check_in(third, waiting.invitations[1].link, "Lou Again")  # an interpreter, say
    enter_waiting_room(third)
    card.locator(".vc-member", has_text="Lou Again").wait_for()
    assert doctor.locator("[data-rooms] .vc-room-card input[type=text]").is_visible()
    screenshot(doctor, "dashboard-one-waiting-en-phone")
    for page in (doctor, first, second, third):
        page.context.close()


def test_the_practitioner_sees_whether_camera_and_microphone_worked(playwright_instance, browser, world):
    """Item 6: beside each waiting person, in the dashboard and on the call page: the device check's
    result; a computer without camera and microphone shows as such, in German."""
    doc = world.people.doc
    planned = world.plan(by=doc, in_minutes=5, participants=2, kind=AppointmentKind.GROUP)
    doctor = world.signed_in(browser, doc, "de").new_page()
    open_dashboard(doctor, world.url)
    working = world.context(browser, "de").new_page()
    check_in(working, planned.invitations[0].link, "Frau Technik")
    enter_waiting_room(working)
    row = doctor.locator("[data-rooms] .vc-member", has_text="Frau Technik")
    row.wait_for()
    assert row.locator("[data-devices]").inner_text() == "Kamera und Mikrofon funktionieren"
    assert row.locator("[data-devices]").get_attribute("data-devices") == "ok"

    args = [arg for arg in CHROMIUM_ARGS if arg != "--use-fake-device-for-media-stream"]
    bare = playwright_instance.chromium.launch(executable_path=chromium_path(), args=args, headless=True)
    try:
        page = bare.new_context(locale="de-DE", viewport=DESKTOP).new_page()
        page.goto(planned.invitations[1].link)
        page.fill("#name", "Herr Ohne")
        page.check("input[name=consent]")
        page.click("#vc-check-in button[type=submit]")
        page.wait_for_selector("[data-result=microphone][data-state=fail]")
        page.click("[data-ready]")  # still allowed: the practice can call by phone
        page.wait_for_selector("[data-view=waiting]:not([hidden])")
        row = doctor.locator("[data-rooms] .vc-member", has_text="Herr Ohne")
        row.wait_for()
        note = row.locator("[data-devices]")
        assert note.inner_text() == "Kamera und Mikrofon funktionieren nicht"
        assert note.get_attribute("data-devices") == "problem"
        screenshot(doctor, "dashboard-device-results-de-desktop")
        # The call page lists the same.
        open_call(doctor, world.url, planned.appointment.public_id)
        waiting = doctor.locator("[data-waiting] li", has_text="Herr Ohne")
        waiting.wait_for()
        assert waiting.locator("[data-devices]").inner_text() == "Kamera und Mikrofon funktionieren nicht"
        assert doctor.locator("[data-waiting] li", has_text="Frau Technik").locator("[data-devices=ok]").count() == 1
    finally:
        bare.close()
    doctor.context.close()
    working.context.close()


def test_the_patient_sees_an_honest_wait_and_the_practitioner_says_running_late_in_one_click(browser, world):
    """The estimate counts from the planned start; "15 min late" reaches the waiting room at once and
    stays chosen in a reloaded dashboard; "On time" takes it back."""
    south = world.people.south
    planned = world.plan(by=south, in_minutes=20)
    patient = world.context(browser, "en").new_page()
    check_in(patient, planned.invitations[0].link, "Robin")
    enter_waiting_room(patient)
    estimate = patient.locator("[data-estimate]")
    estimate.wait_for()
    match = re.fullmatch(r"It will probably be your turn in about (\d+) minutes\.", estimate.inner_text())
    assert match and 15 <= int(match.group(1)) <= 20, estimate.inner_text()

    doctor = world.signed_in(browser, south, "de").new_page()
    open_dashboard(doctor, world.url)
    late = doctor.get_by_role("button", name="15 Min. später")
    assert late.get_attribute("aria-pressed") == "false"
    late.click()
    patient.wait_for_function(
        "() => document.querySelector('[data-estimate]').textContent.startsWith('The practice is running about 15')"
    )
    assert re.search(r"in about (30|35) minutes\.$", estimate.inner_text()), estimate.inner_text()
    doctor.wait_for_function("() => document.querySelector('[data-late-minutes=\"15\"]').ariaPressed === 'true'")
    screenshot(patient, "waiting-running-late-en-desktop")
    doctor.reload()
    doctor.wait_for_selector("[data-rooms]:not([aria-busy])", state="attached")
    assert doctor.get_attribute("[data-late-minutes='15']", "aria-pressed") == "true", "a reload keeps the choice"
    assert doctor.get_attribute("[data-late-minutes='0']", "aria-pressed") == "false"
    screenshot(doctor, "dashboard-running-late-de-desktop")

    doctor.get_by_role("button", name="Pünktlich").click()
    patient.wait_for_function("() => !document.querySelector('[data-estimate]').textContent.includes('running')")
    assert estimate.inner_text().startswith("It will probably be your turn in about")
    doctor.context.close()
    patient.context.close()
