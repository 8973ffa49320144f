"""The practice's live waiting list by keyboard alone: staff hand an appointment over, the new
practitioner admits the patient and starts the call. (Screenshots of the practice's pages in both
languages and sizes: test_gallery.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import (
    DESKTOP,
    Practice,
    check_in,
    enter_waiting_room,
    in_call,
    running_practice,
    screenshot,
    signed_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def practice_world(postgres_schema, tmp_path_factory) -> Iterator[Practice]:
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_schema)
    with running_practice(postgres_schema, tmp_path_factory.mktemp("practice")) as world:
        yield world


@pytest.fixture(scope="module")
def practice(practice_world: Practice) -> tuple[Any, Any, Any]:
    """The server, its people and a planned appointment with a note (markup in it, shown as text)."""
    return practice_world.server, practice_world.people, practice_world.plan(label="Kontrolle <b>Knie</b>")


def tab_to(page: Any, selector: str, *, limit: int = 60) -> int:
    """Press Tab until the element matching ``selector`` has the focus; returns the number of presses."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate("(selector) => document.activeElement.matches(selector)", selector):
            return presses
    raise AssertionError(f"{selector} was not reached with {limit} presses of Tab")


def test_staff_hand_over_and_the_practitioner_admits_by_keyboard(browser, practice_world):
    world, people = practice_world, practice_world.people
    planned = world.plan()
    patient = world.context(browser, "en").new_page()
    check_in(patient, planned.invitations[0].link, "Robin")
    enter_waiting_room(patient)

    # Staff: Tab from the top of the page to the hand-over controls; choose with the arrow keys.
    desk = signed_in(browser, world.server, people.desk, "en-GB", DESKTOP).new_page()
    desk.goto(world.url + "/vc/practice/")
    desk.get_by_role("heading", name="Waiting room of the organisation").wait_for()
    card = f"[data-appointment='{planned.appointment.public_id}']"
    desk.locator(f"{card} .vc-member", has_text="Robin").wait_for()
    desk.keyboard.press("Tab")
    assert desk.evaluate("() => document.activeElement.className") == "vc-skip"
    tab_to(desk, f"{card} summary")  # message and handover are folded under the people
    desk.keyboard.press("Enter")
    tab_to(desk, f"{card} input[type=text]", limit=3)
    desk.keyboard.type("Noch fünf Minuten, bitte.")
    desk.keyboard.press("Enter")
    patient.wait_for_selector("[data-notice-box]:not([hidden])")
    assert patient.inner_text("[data-notice]") == "Noch fünf Minuten, bitte."
    # The notice's update rebuilt the list; the keyboard focus stayed in the field.
    desk.wait_for_function(
        "(card) => document.querySelector(card + ' input[type=text]').defaultValue === 'Noch fünf Minuten, bitte.'",
        arg=card,
    )
    assert desk.evaluate("(c) => document.activeElement === document.querySelector(c + ' input[type=text]')", card)
    tab_to(desk, f"{card} select")
    chosen = "() => document.activeElement.selectedOptions[0].text"
    for _ in range(5):
        if desk.evaluate(chosen) == "Dr. Jonas Kurz":
            break
        desk.keyboard.press("ArrowDown")
    assert desk.evaluate(chosen) == "Dr. Jonas Kurz"
    desk.keyboard.press("Tab")
    assert desk.evaluate("() => document.activeElement.textContent") == "Hand over"
    desk.keyboard.press("Enter")
    desk.locator(f"{card} h3", has_text="Dr. Jonas Kurz").wait_for()
    # Staff never get the controls that start a call.
    assert desk.locator(f"{card} a.vc-button").count() == 0
    screenshot(desk, "keyboard-dashboard-staff-en-desktop")

    # The colleague now has the appointment: Tab to "Admit and start call", Enter, Tab to "Start", Enter.
    colleague = world.signed_in(browser, people.colleague, "de", DESKTOP).new_page()
    colleague.goto(world.url + "/vc/practice/")
    colleague.locator(f"{card} .vc-member", has_text="Robin").wait_for()
    tab_to(colleague, f"{card} .vc-member a.vc-primary")
    assert colleague.evaluate("() => document.activeElement.textContent") == "Aufnehmen und Gespräch beginnen"
    colleague.keyboard.press("Enter")
    colleague.wait_for_selector("[data-result=camera][data-state=ok]")
    tab_to(colleague, "[data-start]")
    colleague.keyboard.press("Enter")
    patient.wait_for_selector("[data-view=call]:not([hidden])")
    in_call(colleague, patient)
    # In the call the controls come next in the tab order, and they work with the keyboard.
    tab_to(colleague, "[data-mute]")
    colleague.keyboard.press("Space")
    assert colleague.get_attribute("[data-mute]", "aria-pressed") == "true"
    for page in (desk, colleague, patient):
        page.context.close()


def test_planning_shows_one_participant_and_the_link_is_copied_whole(browser, practice_world):
    """Issue 17, item 4: one participant block for the usual appointment (the others behind one line),
    and each issued link can be copied in one click, code included."""
    world, people = practice_world, practice_world.people
    context = signed_in(browser, world.server, people.doc, "en-GB", DESKTOP)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=world.url)
    page = context.new_page()
    page.goto(world.url + "/vc/practice/appointments/new")
    visible = page.locator("fieldset.vc-participant:visible")
    assert visible.count() == 1, "one participant block, not five"
    page.get_by_text("More participants: an interpreter, a relative, or further patients of a group").click()
    assert visible.count() > 1

    page.get_by_role("button", name="Plan and send invitations").click()
    page.get_by_role("heading", name="Access codes").wait_for()
    field = page.locator("textarea.vc-copy").first
    link = field.input_value()
    assert "#code=" in link
    assert field.evaluate("(node) => node.scrollHeight <= node.clientHeight + 1"), "the whole link is visible"
    page.get_by_role("button", name="Copy link").first.click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("() => navigator.clipboard.readText()") == link
    screenshot(page, "practice-planned-copy-en-desktop")
    context.close()
