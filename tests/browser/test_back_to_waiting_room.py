"""Back to the waiting room (issue 17) in two real Chromium contexts with fake camera and microphone:
the practitioner (German) sends the patient (English) back with the keyboard, both sides close the
call, the patient reads why and where they are, and admitting again brings the picture back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import (
    Practice,
    admit,
    check_in,
    enter_waiting_room,
    in_call,
    open_call,
    running_practice,
    watch,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Every RTCPeerConnection the page makes, kept where the test can ask about it.
RECORD_CONNECTIONS = """(() => {
  const Original = window.RTCPeerConnection;
  window.vcConnections = [];
  window.RTCPeerConnection = class extends Original {
    constructor(...args) {
      super(...args);
      window.vcConnections.push(this);
    }
  };
})();"""
# Connections that still carry a live remote track: none may be left while the patient waits.
OPEN_MEDIA = """() => window.vcConnections.filter((pc) => pc.connectionState !== 'closed'
  && pc.getReceivers().some((receiver) => receiver.track && receiver.track.readyState === 'live')).length"""


@pytest.fixture(scope="module")
def world(postgres_schema, tmp_path_factory) -> Iterator[Practice]:
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_schema)
    with running_practice(postgres_schema, tmp_path_factory.mktemp("back")) as practice:
        yield practice


def test_sent_back_to_the_waiting_room_and_admitted_again(browser, world: Practice) -> None:
    planned = world.plan(in_minutes=5)
    doctor = world.signed_in(browser, world.people.doc, "de").new_page()
    patient = world.context(browser, "en").new_page()
    problems = [watch(doctor), watch(patient)]
    for page in (doctor, patient):
        page.add_init_script(RECORD_CONNECTIONS)
    check_in(patient, planned.invitations[0].link, "Alex")
    enter_waiting_room(patient)
    open_call(doctor, world.url, planned.appointment.public_id)
    admit(doctor, "Alex")
    in_call(doctor, patient)
    assert patient.evaluate(OPEN_MEDIA) == 1 and doctor.evaluate(OPEN_MEDIA) == 1
    # While someone is in the call, the handover is not offered; the page says why.
    doctor.wait_for_selector("[data-handover-blocked]:not([hidden])")
    assert doctor.is_hidden("[data-handover-form]")

    # The practitioner sends Alex back with the keyboard.
    back = doctor.locator("[data-in-call] li", has_text="Alex").locator("button[data-send-back]")
    assert back.get_attribute("aria-label") == "Alex zurück ins Wartezimmer schicken"
    assert back.inner_text() == "Zurück ins Wartezimmer"
    back.focus()
    doctor.keyboard.press("Enter")

    patient.wait_for_selector("[data-view=waiting]:not([hidden])")
    assert patient.inner_text("[data-sent-back]") == (
        "Dr. Maria Berg has asked you to wait a moment in the waiting room."
    )
    assert patient.inner_text("[data-position]") == "You are next."
    # A reload (say, a worried patient pressing F5) still says who asked to wait, not only the place.
    patient.reload()
    patient.wait_for_selector("[data-view=waiting]:not([hidden]) [data-sent-back]")
    assert patient.inner_text("[data-sent-back]") == (
        "Dr. Maria Berg has asked you to wait a moment in the waiting room."
    )
    patient.wait_for_function("() => document.querySelector('[data-position]').textContent.includes('next')")
    # Nothing of camera or microphone goes anywhere: every connection is closed, on both sides.
    for page in (doctor, patient):
        page.wait_for_function(f"() => ({OPEN_MEDIA})() === 0 && !document.querySelector('video[data-remote]')")
    # The practitioner sees Alex waiting again, the keyboard at Alex's Admit button, and may hand over now.
    doctor.wait_for_selector("[data-in-call-box][hidden]", state="attached")
    row = doctor.locator("[data-waiting] li", has_text="Alex")
    row.wait_for()
    doctor.wait_for_function("() => document.activeElement?.closest('[data-waiting] li')?.textContent.includes('Alex')")
    assert doctor.is_visible("[data-handover-form]") and doctor.is_hidden("[data-handover-blocked]")

    # Admitted again (Enter on the focused Admit button): the call resumes.
    doctor.keyboard.press("Enter")
    in_call(doctor, patient)
    assert patient.locator("[data-sent-back]").count() == 0
    assert patient.is_hidden("[data-view=waiting]")
    assert problems == [[], []]
    doctor.context.close()
    patient.context.close()
