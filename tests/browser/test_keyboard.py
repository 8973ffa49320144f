"""The whole consultation by keyboard alone (WCAG 2.1.1, 2.4.3, 2.4.7): the patient from the link
through code, name, consent, device check and waiting room into the call (mute, camera, chat,
leave); the practitioner from the dashboard (declining one person, admitting another) through the
call's controls to ending for everyone through the question that guards it. Only Tab, Shift+Tab,
Enter, Space, Escape and typing; no clicks and no focus set by the test. At every stop, where focus
is, and that it shows (the page's focus ring)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import (
    Practice,
    check_in,
    enter_waiting_room,
    in_call,
    open_dashboard,
    running_practice,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Far more than any page of ours has stops: a bound, so that a focus trap fails instead of hanging.
MOST_STOPS = 80
# Where focus is, and whether a person sees it: the ring on the element itself, or, for our file
# picker (the native input is hidden), on the label that shows it.
FOCUS = """() => {
  const node = document.activeElement;
  if (!node || node === document.body) return {where: 'body', ring: false};
  const shown = node.matches('.vc-file-input') ? node.nextElementSibling : node;
  const style = getComputedStyle(shown);
  const ring = node.matches(':focus-visible') && style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
  return {where: node.outerHTML.slice(0, 120), ring};
}"""


@pytest.fixture(scope="module")
def practice(postgres_schema, tmp_path_factory) -> Iterator[Practice]:
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_schema)
    with running_practice(postgres_schema, tmp_path_factory.mktemp("keyboard")) as practice:
        yield practice


def tab_to(page: Any, target: str, *, back: bool = False) -> None:
    """Tab (or Shift+Tab) until focus is on ``target`` (a JS expression about ``node``), checking
    at each stop that focus is visible; fails when the target is not reached within MOST_STOPS."""
    seen = []
    for _ in range(MOST_STOPS):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        focus = page.evaluate(FOCUS)
        seen.append(focus["where"])
        if focus["where"] != "body":
            assert focus["ring"], f"focus is not visible on {focus['where']}"
        if page.evaluate(f"() => {{ const node = document.activeElement; return Boolean({target}); }}"):
            return
    raise AssertionError(f"{target} not reached by keyboard; focus went through:\n" + "\n".join(seen))


def focused(page: Any, target: str) -> bool:
    return page.evaluate(f"() => {{ const node = document.activeElement; return Boolean({target}); }}")


#: The words the journey looks for, per language (the rest is found by its markup).
WORDS = {
    "en": {"decline": "Decline", "dashboard": "Back to the dashboard"},
    "de": {"decline": "Ablehnen", "dashboard": "Zurück zur Übersicht"},
}


@pytest.mark.parametrize("lang", ["en", "de"])
def test_the_consultation_by_keyboard_alone(browser, practice: Practice, lang: str) -> None:
    words = WORDS[lang]
    kim_link = practice.plan(in_minutes=5).invitations[0].link
    alex_link = practice.plan(in_minutes=10).invitations[0].link
    doctor = practice.signed_in(browser, practice.people.doc, lang).new_page()
    patient = practice.context(browser, lang).new_page()
    other = practice.context(browser, lang).new_page()
    open_dashboard(doctor, practice.url)

    # The patient: the code came with the link; name, consent and on, by keyboard.
    patient.goto(kim_link)
    assert patient.input_value("#code")
    tab_to(patient, "node.id === 'name'")
    patient.keyboard.type("Kim")
    tab_to(patient, "node.name === 'consent'")
    patient.keyboard.press("Space")
    assert patient.is_checked("input[name=consent]")
    tab_to(patient, "node.matches('#vc-check-in button[type=submit]')")
    patient.keyboard.press("Enter")
    patient.wait_for_selector("[data-result=camera][data-state=ok]")
    tab_to(patient, "node.matches('[data-ready]')")
    patient.keyboard.press("Enter")
    patient.wait_for_selector("[data-view=waiting]:not([hidden])")
    # The waiting room's heading took focus, so a screen reader starts reading there.
    assert focused(patient, "node.id === 'vc-waiting-title'")

    # Someone else waits too (by mouse; not the subject here): the practitioner declines them.
    check_in(other, alex_link, "Alex")
    enter_waiting_room(other)
    doctor.locator(".vc-member", has_text="Alex").wait_for()
    doctor.locator(".vc-member", has_text="Kim").wait_for()
    decline = words["decline"]
    tab_to(doctor, f"node.closest('.vc-member')?.textContent.includes('Alex') && node.textContent === '{decline}'")
    doctor.keyboard.press("Enter")
    other.wait_for_selector("[data-view=ended]:not([hidden])")
    assert patient.is_visible("[data-view=waiting]")  # only Alex was declined

    # Kim is admitted from the dashboard; the call page starts the consultation and lets Kim in.
    tab_to(doctor, "node.closest('.vc-member')?.textContent.includes('Kim') && node.matches('a.vc-primary')")
    doctor.keyboard.press("Enter")
    doctor.wait_for_selector("[data-result=camera][data-state=ok]")
    tab_to(doctor, "node.matches('[data-start]')")
    doctor.keyboard.press("Enter")
    in_call(doctor, patient)

    # The patient's controls: mute, camera, a chat message.
    tab_to(patient, "node.matches('[data-mute]')")
    patient.keyboard.press("Enter")
    assert patient.get_attribute("[data-mute]", "aria-pressed") == "true"
    tab_to(patient, "node.matches('[data-camera-off]')")
    patient.keyboard.press("Space")
    assert patient.get_attribute("[data-camera-off]", "aria-pressed") == "true"
    tab_to(patient, "node.matches('[data-chat-input]')")
    patient.keyboard.type("Can you hear me?")
    patient.keyboard.press("Enter")
    doctor.locator("[data-chat-log] li", has_text="Can you hear me?").wait_for()
    # Back to the controls the other way round.
    tab_to(patient, "node.matches('[data-mute]')", back=True)
    patient.keyboard.press("Enter")
    assert patient.get_attribute("[data-mute]", "aria-pressed") == "false"

    # The practitioner's controls, and an answer in the chat.
    tab_to(doctor, "node.matches('[data-mute]')")
    doctor.keyboard.press("Space")
    assert doctor.get_attribute("[data-mute]", "aria-pressed") == "true"
    tab_to(doctor, "node.matches('[data-chat-input]')")
    doctor.keyboard.type("Yes, clearly.")
    doctor.keyboard.press("Enter")
    patient.locator("[data-chat-log] li", has_text="Yes, clearly.").wait_for()

    # Ending asks first: Escape keeps talking and focus returns to the button.
    tab_to(doctor, "node.matches('[data-leave]')", back=True)
    doctor.keyboard.press("Enter")
    doctor.wait_for_selector("[data-end-dialog][open]")
    assert focused(doctor, "node.matches('[data-end-cancel]')")  # the safe answer is the default
    doctor.keyboard.press("Escape")
    doctor.wait_for_selector("[data-end-dialog]:not([open])", state="attached")
    assert focused(doctor, "node.matches('[data-leave]')")
    assert patient.is_visible("[data-view=call]")

    # The patient leaves by keyboard; then the practitioner ends for everyone.
    tab_to(patient, "node.matches('[data-leave]')")
    patient.keyboard.press("Enter")
    patient.wait_for_selector("[data-view=ended]:not([hidden])")
    assert focused(patient, "node.matches('[data-end-title]')")
    doctor.keyboard.press("Enter")
    doctor.wait_for_selector("[data-end-dialog][open]")
    doctor.keyboard.press("Tab")
    assert focused(doctor, "node.matches('[data-end-confirm]')")
    doctor.keyboard.press("Enter")
    doctor.wait_for_selector("[data-after]:not([hidden])")
    assert focused(doctor, "node.closest('[data-after]') !== null")
    tab_to(doctor, f"node.textContent === '{words['dashboard']}'")
    doctor.keyboard.press("Enter")
    doctor.wait_for_url(f"{practice.url}/vc/practice/")
    for page in (doctor, patient, other):
        page.context.close()


def test_the_check_fails_on_a_hidden_focus_ring_and_an_unreachable_control(browser, practice: Practice) -> None:
    """The negative of the journey's checks: they catch what they claim to catch."""
    page = practice.context(browser, "en").new_page()
    page.goto(practice.plan().invitations[0].link)
    tab_to(page, "node.id === 'name'")  # reachable, and the ring shows
    page.evaluate("() => { document.getElementById('name').style.outline = 'none'; }")
    with pytest.raises(AssertionError, match="focus is not visible"):
        tab_to(page, "node.id === 'name'", back=True)
    page.evaluate("() => { document.getElementById('name').style.outline = ''; }")
    with pytest.raises(AssertionError, match="not reached by keyboard"):
        tab_to(page, "node.id === 'no-such-control'")
    page.context.close()
