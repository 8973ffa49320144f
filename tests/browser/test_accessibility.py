"""WCAG 2.1 AA (BITV 2.0) beyond the gallery: axe-core really runs under the pages' strict CSP and
reports what it should; the states the gallery does not photograph (a wrong code, a device paused
after too many, a declined patient) have no serious finding in either language or size; and what
happens without being looked at is said to screen readers through live regions: an arrival on the
dashboard, the patient's admission, a chat message, a change of the connection's state, but not
its once-a-second readings (docs/accessibility.md)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import (
    KEEP_PEER_CONNECTIONS,
    PHONE,
    SIZES,
    Practice,
    admit,
    check_in,
    enter_waiting_room,
    in_call,
    open_call,
    open_dashboard,
    running_practice,
)
from tests.support.axe import run_axe, serious_findings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STATUS = "[data-status]"
CALL_STATUS = "[data-call-status]"
# Each reading of the call's statistics rewrites the connection line: counted, to wait for readings.
COUNT_READINGS = """() => {
  window.__vcReadings = 0;
  window.__vcLines = [document.querySelector('[data-connection]').textContent];
  window.__vcSpoken = [];
  const line = document.querySelector('[data-connection]');
  new MutationObserver(() => { window.__vcReadings += 1; window.__vcLines.push(line.textContent); })
    .observe(line, {childList: true});
  const status = document.querySelector('[data-call-status]');
  new MutationObserver(() => window.__vcSpoken.push(status.textContent))
    .observe(status, {childList: true, characterData: true, subtree: true});
}"""
STOP_SENDING = """() => Promise.all(window.__vcPcs.flatMap((pc) => pc.getSenders()).filter((s) => s.track)
  .map((s) => { (window.__vcStopped ||= []).push([s, s.track]); return s.replaceTrack(null); }))"""
SEND_AGAIN = "() => Promise.all(window.__vcStopped.map(([sender, track]) => sender.replaceTrack(track)))"


@pytest.fixture(scope="module")
def practice(postgres_schema, tmp_path_factory) -> Iterator[Practice]:
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_schema)
    with running_practice(postgres_schema, tmp_path_factory.mktemp("a11y"), VC_CODE_MAX_ATTEMPTS=3) as practice:
        yield practice


def findings_at_both_sizes(page: Any, name: str) -> list[str]:
    problems = []
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        problems += serious_findings(page, f"{name}-{size}")
    return problems


def test_axe_runs_under_the_strict_csp_and_reports_what_it_should(browser, practice: Practice) -> None:
    page = practice.context(browser, "en").new_page()
    response = page.goto(practice.url + "/vc/privacy")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    result = run_axe(page)
    assert result["passes"] > 10
    assert serious_findings(page, "privacy") == []

    # The same page with two faults added: a button without a name and grey on white.
    page.evaluate("""() => {
      document.querySelector('main').append(document.createElement('button'));
      const faint = document.createElement('p');
      faint.textContent = 'Faint words';
      faint.style.color = '#c8c8c8';
      document.querySelector('main').append(faint);
    }""")
    problems = "\n".join(serious_findings(page, "privacy-broken"))
    assert "critical button-name" in problems and "serious color-contrast" in problems
    assert "main > button" in problems  # says where
    page.context.close()


@pytest.mark.parametrize("lang", ["de", "en"])
def test_a_wrong_code_and_a_paused_device_read_well(browser, practice: Practice, lang: str) -> None:
    invitation = practice.plan().invitations[0]
    page = practice.context(browser, lang).new_page()
    problems: list[str] = []
    page.goto(f"{practice.url}/vc/join/{invitation.invitation.public_id}")
    problems += findings_at_both_sizes(page, f"check-in-{lang}")
    for attempt in range(3):
        page.fill("#code", "WRONG-CODE1")
        page.fill("#name", "Kim")
        page.check("input[name=consent]")
        page.click("#vc-check-in button[type=submit]")
        page.wait_for_selector("#code-error")
        assert page.get_attribute("#code", "aria-invalid") == "true"
        assert "code-error" in page.get_attribute("#code", "aria-describedby")
        if attempt != 1:
            problems += findings_at_both_sizes(page, f"check-in-{'wrong' if attempt == 0 else 'paused'}-{lang}")
    # The third wrong code paused this device: the alert says until when, the field points to it.
    assert page.locator("#code-error").get_attribute("role") == "alert"
    assert ("Uhr" if lang == "de" else "until") in page.inner_text("#code-error")
    assert problems == [], "\n".join(problems)
    page.context.close()


def test_arrival_and_decline_are_announced_and_the_declined_page_reads_well(browser, practice: Practice) -> None:
    planned = practice.plan(in_minutes=5)
    doctor = practice.signed_in(browser, practice.people.doc, "en").new_page()
    patient = practice.context(browser, "en", PHONE).new_page()
    open_dashboard(doctor, practice.url)
    # Loading the list is no news: nothing is said.
    assert doctor.inner_text(STATUS) == ""

    check_in(patient, planned.invitations[0].link, "Kim")
    enter_waiting_room(patient)
    doctor.wait_for_function("(s) => document.querySelector(s).textContent === 'Kim is waiting.'", arg=STATUS)
    # The patient hears where they are in the queue.
    patient.wait_for_function("(s) => document.querySelector(s).textContent.startsWith('You are next.')", arg=STATUS)

    doctor.locator(".vc-member", has_text="Kim").get_by_role("button", name="Decline").click()
    patient.wait_for_selector("[data-view=ended]:not([hidden])")
    # The page says it in its heading, and focus moved there for screen readers.
    assert patient.evaluate("() => document.activeElement.matches('[data-end-title]')")
    assert patient.inner_text("[data-end-title]") == "The practice could not see you now"
    problems = findings_at_both_sizes(patient, "join-declined-en")
    assert problems == [], "\n".join(problems)
    doctor.context.close()
    patient.context.close()


@pytest.fixture
def in_a_call(browser, practice: Practice) -> Iterator[tuple[Any, Any]]:
    planned = practice.plan(in_minutes=5)
    doctor = practice.signed_in(browser, practice.people.doc, "en").new_page()
    patient_context = practice.context(browser, "en")
    patient_context.add_init_script(KEEP_PEER_CONNECTIONS)
    patient = patient_context.new_page()
    open_call(doctor, practice.url, planned.appointment.public_id)
    check_in(patient, planned.invitations[0].link, "Kim")
    enter_waiting_room(patient)
    # In the call page too, an arrival is said.
    doctor.wait_for_function("(s) => document.querySelector(s).textContent === 'Kim is waiting.'", arg=STATUS)
    admit(doctor, "Kim")
    patient.wait_for_function(
        "(s) => document.querySelector(s).textContent === 'You have been let in. The consultation starts.'",
        arg=STATUS,
    )
    in_call(doctor, patient)
    yield doctor, patient
    doctor.context.close()
    patient_context.close()


def test_chat_and_connection_changes_are_announced_but_not_the_readings(in_a_call) -> None:
    doctor, patient = in_a_call
    # A chat message appears in the chat's live region on the other side.
    assert patient.get_attribute("[data-chat-log]", "aria-live") == "polite"
    doctor.fill("[data-chat-input]", "How are you today?")
    doctor.press("[data-chat-input]", "Enter")
    patient.locator("[data-chat-log] li", has_text="How are you today?").wait_for()

    # The once-a-second readings are not said: while the connection line keeps its words, the status
    # keeps what it said last. (A busy machine may read "with gaps" for a while: that is a change of
    # state, and may be said, but only in the line's own words, never as figures.)
    doctor.wait_for_selector("[data-connection][data-quality]")
    said = doctor.inner_text(CALL_STATUS)
    doctor.evaluate(COUNT_READINGS)
    doctor.wait_for_function("() => window.__vcReadings >= 4", timeout=15000)
    lines = doctor.evaluate("() => window.__vcLines")
    spoken = doctor.evaluate("() => window.__vcSpoken")
    if len(set(lines)) == 1:
        assert spoken == [] and doctor.inner_text(CALL_STATUS) == said, (lines, spoken)
    assert set(spoken) <= set(lines), (lines, spoken)
    assert doctor.get_attribute("[data-connection]", "aria-live") == "off"  # the line itself is not read out

    # Nothing arrives from the patient any more: said once; and again when it is back.
    patient.evaluate(STOP_SENDING)
    doctor.wait_for_function(
        "(s) => document.querySelector(s).textContent === 'Connection interrupted …'", arg=CALL_STATUS, timeout=15000
    )
    patient.evaluate(SEND_AGAIN)
    doctor.wait_for_function(
        "(s) => /^Direct connection · picture and sound arrive (well|with gaps)$/"
        ".test(document.querySelector(s).textContent)",
        arg=CALL_STATUS,
        timeout=15000,
    )
    # The figures stay out of what is said.
    assert " ms" not in doctor.inner_text(CALL_STATUS)
