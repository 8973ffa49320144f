"""The call on a phone and the pinned tile (issue 17, item 11 and the interpreter's tile), in real
Chromium: on a phone-sized screen the other side's picture fills the screen, the controls stay on it,
and chat and files open over the video from a Chat button that counts unread messages; in a group,
one picture can be pinned large and unpinned again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    DESKTOP,
    PHONE,
    Practice,
    admit,
    check_in,
    enter_waiting_room,
    in_call,
    open_call,
    resize,
    running_practice,
    screenshot,
)
from vc_plugin.core.models import AppointmentKind

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def world(postgres_schema, tmp_path_factory) -> Iterator[Practice]:
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_schema)
    with running_practice(postgres_schema, tmp_path_factory.mktemp("phone")) as practice:
        yield practice


def box(page: Any, selector: str) -> dict[str, float]:
    found = page.locator(selector).bounding_box()
    assert found is not None, selector
    return found


def say(page: Any, text: str) -> None:
    page.fill("[data-chat-input]", text)
    page.press("[data-chat-input]", "Enter")


def test_on_a_phone_the_call_uses_the_screen_and_the_chat_opens_over_it(browser, world):
    planned = world.plan(in_minutes=5)
    patient = world.context(browser, "en", PHONE).new_page()
    check_in(patient, planned.invitations[0].link, "Alex")
    enter_waiting_room(patient)
    doctor = world.signed_in(browser, world.people.doc, "de").new_page()
    open_call(doctor, world.url, planned.appointment.public_id)
    admit(doctor, "Alex")
    in_call(patient, doctor)

    # The other side's picture fills the width and most of the height; the own one sits small in a corner.
    remote, local = box(patient, ".vc-tile[data-peer]"), box(patient, ".vc-local")
    assert remote["width"] >= PHONE["width"] - 24 and remote["height"] >= PHONE["height"] * 0.55, remote
    assert local["width"] < remote["width"] * 0.35
    assert local["x"] + local["width"] <= PHONE["width"] and local["y"] >= remote["y"]
    # Every control is on screen without scrolling, and the page does not scroll at all.
    for control in patient.locator(".vc-controls button:visible").all():
        where = control.bounding_box()
        assert where is not None and where["y"] >= 0 and where["y"] + where["height"] <= PHONE["height"], where
    assert patient.evaluate("() => document.scrollingElement.scrollHeight <= window.innerHeight + 1")
    expect(patient.locator(".vc-side")).to_be_hidden()
    toggle = patient.locator("[data-chat-toggle]")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(patient.locator("[data-unread]")).to_be_hidden()
    screenshot(patient, "join-call-phone-en")

    # Messages while the chat is closed: counted on the button, said aloud, and kept.
    say(doctor, "Guten Tag")
    expect(patient.locator("[data-unread]")).to_have_text("1")
    say(doctor, "Können Sie mich hören?")
    expect(patient.locator("[data-unread]")).to_have_text("2")
    expect(patient.locator("[data-call-status]")).to_have_text("2 new messages in the chat")
    toggle.click()
    side = patient.locator(".vc-side")
    expect(side).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(patient.locator("[data-unread]")).to_be_hidden()
    expect(patient.locator("[data-chat-log] li")).to_have_count(2)
    expect(patient.locator("[data-chat-input]")).to_be_focused()
    opened = side.bounding_box()
    assert opened is not None and opened["y"] < remote["y"] + remote["height"], "opens over the video"
    assert opened["y"] + opened["height"] <= PHONE["height"] + 1
    screenshot(patient, "join-call-phone-chat-en")
    # Read while open: nothing to count. Closed again with its own button, back on the Chat button.
    say(doctor, "Gut.")
    expect(patient.locator("[data-chat-log] li")).to_have_count(3)
    assert patient.is_hidden("[data-unread]")
    patient.click("[data-chat-close]")
    expect(side).to_be_hidden()
    expect(toggle).to_be_focused()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    # A file counts as well, and is there when the chat opens.
    doctor.set_input_files(
        "[data-file-input]", files=[{"name": "befund.txt", "mimeType": "text/plain", "buffer": b"ok"}]
    )
    doctor.click("[data-file-form] button[type=submit]")
    expect(patient.locator("[data-unread]")).to_have_text("1")
    toggle.click()
    expect(patient.locator("[data-files] li a[download='befund.txt']")).to_be_visible()
    expect(patient.locator("[data-unread]")).to_be_hidden()
    patient.keyboard.press("Escape")  # closes too, back on the button
    expect(side).to_be_hidden()
    expect(toggle).to_be_focused()

    # Negative: at desktop size the layout is the one it was, and nothing is counted.
    resize(patient, DESKTOP)
    expect(patient.locator(".vc-side")).to_be_visible()
    expect(toggle).to_be_hidden()
    assert patient.evaluate("() => getComputedStyle(document.querySelector('.vc-call')).position") == "static"
    say(doctor, "Noch da?")
    expect(patient.locator("[data-chat-log] li")).to_have_count(4)
    assert patient.is_hidden("[data-unread]")
    doctor.context.close()
    patient.context.close()


def test_the_practitioner_on_a_phone_sees_who_waits_first_and_opens_the_chat_from_a_button(browser, world):
    """The practitioner's call page on a phone: someone waiting shows above the picture, the picture
    takes the width, and chat and files open from the Chat button as on the patient's side; the page
    still scrolls to the people in the call (it is no full-screen call: the queue must stay reachable)."""
    planned = world.plan(kind=AppointmentKind.GROUP, participants=2)
    patients = world.waiting(browser, planned, "Alex", "Kim")
    alex, _kim = patients
    doctor = world.signed_in(browser, world.people.doc, "de", PHONE).new_page()
    open_call(doctor, world.url, planned.appointment.public_id)
    admit(doctor, "Alex")
    in_call(doctor, alex)

    waiting, stage = box(doctor, ".vc-room-queue:has([data-waiting] li)"), box(doctor, "[data-tiles]")
    assert waiting["y"] < stage["y"], "Kim, waiting, is seen before the picture"
    assert stage["width"] >= PHONE["width"] - 48, stage
    expect(doctor.locator(".vc-side")).to_be_hidden()
    toggle = doctor.locator("[data-chat-toggle]")
    expect(toggle).to_be_visible()
    say(alex, "Hello")
    expect(doctor.locator("[data-unread]")).to_have_text("1")
    expect(doctor.locator("[data-call-status]")).to_have_text("1 neue Nachricht im Chat")
    screenshot(doctor, "practice-call-phone-de")
    toggle.click()
    expect(doctor.locator(".vc-side")).to_be_visible()
    expect(doctor.locator("[data-chat-log] li")).to_have_count(1)
    expect(doctor.locator("[data-chat-input]")).to_be_focused()
    say(doctor, "Guten Tag")
    expect(alex.locator("[data-chat-log] li")).to_have_count(2)
    doctor.keyboard.press("Escape")
    expect(doctor.locator(".vc-side")).to_be_hidden()
    expect(toggle).to_be_focused()
    # Negative: the page is not a fixed full-screen call; the people in the call stay reachable below.
    assert doctor.evaluate("() => getComputedStyle(document.querySelector('.vc-call')).position") == "static"
    doctor.locator("[data-in-call] li", has_text="Alex").scroll_into_view_if_needed()
    expect(doctor.locator("[data-in-call] li", has_text="Alex")).to_be_in_viewport()
    for page in (doctor, *patients):
        page.context.close()


def test_a_tile_pinned_by_keyboard_is_large_and_unpinning_restores_the_grid(browser, world):
    planned = world.plan(kind=AppointmentKind.GROUP, participants=2)
    doctor = world.signed_in(browser, world.people.doc, "de").new_page()
    patients = world.waiting(browser, planned, "Alex", "Kim")
    open_call(doctor, world.url, planned.appointment.public_id)
    admit(doctor, "Alex")
    admit(doctor, "Kim")
    in_call(doctor, *patients, peers=2)

    alex_pin = doctor.get_by_role("button", name="Alex groß zeigen")
    kim_pin = doctor.get_by_role("button", name="Kim groß zeigen")
    expect(alex_pin).to_have_attribute("aria-pressed", "false")
    expect(kim_pin).to_have_attribute("aria-pressed", "false")
    before = {
        name: doctor.locator(".vc-tile", has=doctor.get_by_role("button", name=f"{name} groß zeigen")).bounding_box()
        for name in ("Alex", "Kim")
    }
    kim_pin.focus()
    doctor.keyboard.press("Enter")
    expect(kim_pin).to_have_attribute("aria-pressed", "true")
    expect(doctor.locator("[data-call-status]")).to_have_text("Kim wird groß gezeigt.")
    # The chosen tile is the large one, not another: Alex's stays unpressed and small.
    expect(alex_pin).to_have_attribute("aria-pressed", "false")
    kim_tile = doctor.locator(".vc-tile[data-pinned=true]")
    expect(kim_tile).to_have_count(1)
    expect(kim_tile.locator("figcaption")).to_contain_text("Kim")
    large = kim_tile.bounding_box()
    alex_tile = doctor.locator(".vc-tile", has=alex_pin).bounding_box()
    local = doctor.locator(".vc-local").bounding_box()
    assert large["width"] > 2.5 * alex_tile["width"] and large["width"] > 2.5 * local["width"]
    assert alex_tile["y"] > large["y"] and local["y"] > large["y"], "the small ones sit below"
    screenshot(doctor, "practice-group-call-pinned-de")
    # On a phone too the pinned picture stays the large one.
    patients[0].get_by_role("button", name="Show Kim large").click()
    resize(patients[0], PHONE)
    pinned = patients[0].locator(".vc-tile[data-pinned=true]").bounding_box()
    other = patients[0].locator(".vc-local").bounding_box()
    assert pinned["height"] > 2 * other["height"]
    screenshot(patients[0], "join-group-call-pinned-phone-en")

    # Unpinned (the same button, by keyboard): the grid as it was.
    doctor.keyboard.press("Space")
    expect(kim_pin).to_have_attribute("aria-pressed", "false")
    assert doctor.get_attribute("[data-tiles]", "data-pinned") is None
    assert doctor.locator(".vc-tile[data-pinned=true]").count() == 0
    expect(doctor.locator("[data-call-status]")).to_have_text("Alle Bilder sind wieder gleich groß.")
    after = {
        name: doctor.locator(".vc-tile", has=doctor.get_by_role("button", name=f"{name} groß zeigen")).bounding_box()
        for name in ("Alex", "Kim")
    }
    for name in ("Alex", "Kim"):
        assert abs(after[name]["width"] - before[name]["width"]) < 2, (name, before, after)
    for page in (doctor, *patients):
        page.context.close()
