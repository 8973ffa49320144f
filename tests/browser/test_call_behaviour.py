"""What people do in the waiting room and the call, in two or three real Chromium contexts with
fake camera and microphone: mute and camera off as the other side sees them, the connection
indicator, the file size limit and progress, the dashboard's quiet alert and "send away", a group
of three, switching the language on the check-in and room pages, and a dropped connection.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import (
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    Practice,
    admit,
    check_in,
    chromium_path,
    enter_waiting_room,
    in_call,
    open_call,
    open_dashboard,
    resize,
    running_practice,
    screenshot,
)
from tests.support.axe import serious_findings
from vc_plugin.core.models import AppointmentKind

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FILE_LIMIT = 512 * 1024
# Mean brightness (0–255) of the remote picture: the fake camera shows green shapes, a disabled track black.
REMOTE_BRIGHTNESS = """() => {
  const video = document.querySelector('video[data-remote]');
  const canvas = document.createElement('canvas');
  canvas.width = 32;
  canvas.height = 18;
  const context = canvas.getContext('2d');
  context.drawImage(video, 0, 0, canvas.width, canvas.height);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0;
  for (let i = 0; i < pixels.length; i += 4) sum += pixels[i] + pixels[i + 1] + pixels[i + 2];
  return sum / (pixels.length / 4) / 3;
}"""
LOCAL_TRACKS_ENABLED = """(kind) => document.querySelector('video[data-local]').srcObject
  .getTracks().filter((track) => track.kind === kind).map((track) => track.enabled)"""
# Every text the waiting room's position line shows, recorded by the page itself (changes can be brief).
RECORD_POSITIONS = """() => {
  const line = document.querySelector('[data-position]');
  window.vcPositions = [line.textContent];
  new MutationObserver(() => window.vcPositions.push(line.textContent))
    .observe(line, { childList: true, characterData: true, subtree: true });
}"""


@pytest.fixture(scope="module")
def world(postgres_schema, tmp_path_factory) -> Iterator[Practice]:
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_schema)
    directory = tmp_path_factory.mktemp("behaviour")
    with running_practice(postgres_schema, directory, VC_FILE_TRANSFER_MAX_BYTES=FILE_LIMIT) as practice:
        yield practice


@pytest.fixture(scope="module")
def two_in_a_call(browser, world: Practice) -> Iterator[tuple[Any, Any]]:
    """The practitioner (German) and a patient (English) in one call, shared by the tests below."""
    planned = world.plan(in_minutes=5)
    doctor = world.signed_in(browser, world.people.doc, "de").new_page()
    patient = world.context(browser, "en").new_page()
    check_in(patient, planned.invitations[0].link, "Alex")
    enter_waiting_room(patient)
    open_call(doctor, world.url, planned.appointment.public_id)
    # Alone before letting anyone in: said plainly, not "connecting …" (issue 17, item 5).
    assert doctor.inner_text("[data-connection]") == "Außer Ihnen ist noch niemand im Gespräch."
    admit(doctor, "Alex")
    in_call(doctor, patient)
    yield doctor, patient
    doctor.context.close()
    patient.context.close()


def test_mute_and_camera_off_reach_the_other_side(two_in_a_call):
    doctor, patient = two_in_a_call
    assert patient.evaluate(REMOTE_BRIGHTNESS) > 20

    patient.click("[data-mute]")
    assert patient.get_attribute("[data-mute]", "aria-pressed") == "true"
    assert patient.inner_text("[data-mute]") == "Unmute"
    # The sent track is the local one: muted means it sends silence, the camera keeps going.
    assert patient.evaluate(LOCAL_TRACKS_ENABLED, "audio") == [False]
    assert patient.evaluate(LOCAL_TRACKS_ENABLED, "video") == [True]

    doctor.click("[data-camera-off]")
    assert doctor.get_attribute("[data-camera-off]", "aria-pressed") == "true"
    assert doctor.inner_text("[data-camera-off]") == "Kamera an"
    assert doctor.evaluate(LOCAL_TRACKS_ENABLED, "video") == [False]
    patient.wait_for_function(f"() => ({REMOTE_BRIGHTNESS})() < 5")  # the patient now sees black

    doctor.click("[data-camera-off]")
    patient.click("[data-mute]")
    assert doctor.inner_text("[data-camera-off]") == "Kamera aus"
    assert patient.evaluate(LOCAL_TRACKS_ENABLED, "audio") == [True]
    patient.wait_for_function(f"() => ({REMOTE_BRIGHTNESS})() > 20")


def test_the_connection_indicator_speaks_plain_words_and_keeps_figures_in_a_tooltip(two_in_a_call):
    """No "ms" or "percent loss" for a worried patient (issue 17, words); the figures stay for whoever asks."""
    doctor, patient = two_in_a_call
    for page, expected in (
        (doctor, r"Direkte Verbindung · Bild und Ton kommen gut an"),
        (patient, r"Direct connection · picture and sound arrive well"),
    ):
        page.wait_for_selector("[data-connection][data-rtt]")
        text = page.inner_text("[data-connection]")
        assert re.fullmatch(expected, text) and "ms" not in text and "%" not in text, text
        assert re.fullmatch(r"\d+ ms · [\d.,]+ %", page.get_attribute("[data-connection]", "title") or "")
        assert page.get_attribute("[data-connection]", "data-path") == "direct"
        assert 0 <= int(page.get_attribute("[data-connection]", "data-rtt")) < 1000


def test_files_over_the_limit_are_refused_and_progress_reaches_the_end(two_in_a_call, tmp_path):
    doctor, patient = two_in_a_call
    # Our own translated picker; the browser's ("Choose File") is hidden but still the labelled input.
    assert doctor.inner_text("label[for=vc-file-input]") == "Datei auswählen"
    assert doctor.get_by_label("Datei auswählen").evaluate("(node) => node.type") == "file"
    box = doctor.locator("[data-file-input]").bounding_box()
    assert box is not None and box["width"] <= 1 and box["height"] <= 1
    assert doctor.inner_text("[data-file-limit]") == "Dateien bis 512 KB; sie gehen direkt an die andere Seite."

    too_large = tmp_path / "aufnahme.bin"
    too_large.write_bytes(os.urandom(FILE_LIMIT + 1))
    doctor.set_input_files("[data-file-input]", str(too_large))
    assert doctor.inner_text("[data-file-chosen]").startswith("aufnahme.bin")
    doctor.click("[data-file-form] button[type=submit]")
    doctor.wait_for_selector("[data-file-error]:not([hidden])")
    assert doctor.inner_text("[data-file-error]") == "Die Datei ist zu groß: höchstens 512 KB."
    assert doctor.inner_text("[data-file-chosen]") == "Keine Datei ausgewählt"
    assert doctor.locator("[data-files] li").count() == 0

    payload = os.urandom(300 * 1024)  # about twenty chunks
    report = tmp_path / "report.pdf"
    report.write_bytes(payload)
    patient.set_input_files("[data-file-input]", str(report))
    patient.click("[data-file-form] button[type=submit]")
    sent = patient.locator("[data-files] li[data-sha256]")
    received = doctor.locator("[data-files] li[data-sha256]")
    sent.wait_for()
    received.wait_for()
    digest = hashlib.sha256(payload).hexdigest()
    assert sent.get_attribute("data-sha256") == received.get_attribute("data-sha256") == digest
    for item in (sent, received):
        assert item.locator("progress").evaluate("(bar) => [bar.value, bar.max]") == [len(payload), len(payload)]
    assert received.get_by_role("link", name="Herunterladen").get_attribute("download") == "report.pdf"
    # Nothing was refused on the way, and the earlier refusal left nothing at the patient's.
    assert patient.locator("[data-chat-log] .vc-chat-notice").count() == 0


def test_a_language_switch_during_the_call_comes_back_into_it(two_in_a_call):
    doctor, patient = two_in_a_call
    patient.click("form.vc-language button")
    patient.wait_for_function("() => document.documentElement.lang === 'de'")
    # Straight back into the call (no second device check), in German, with picture and chat.
    patient.wait_for_selector("[data-view=call]:not([hidden])")
    assert patient.inner_text("[data-mute]") == "Stummschalten"
    in_call(patient)
    patient.fill("[data-chat-input]", "Wieder da")
    patient.press("[data-chat-input]", "Enter")
    doctor.locator("[data-chat-log] li", has_text="Wieder da").wait_for()
    doctor.wait_for_function(f"() => ({REMOTE_BRIGHTNESS})() > 20")


def test_the_dashboard_shows_an_arrival_quietly_and_can_send_away(browser, world):
    planned = world.plan()
    doctor = world.signed_in(browser, world.people.doc, "en").new_page()
    open_dashboard(doctor, world.url)
    calm_title = doctor.title()
    patient = world.context(browser, "de").new_page()
    check_in(patient, planned.invitations[0].link, "Kim")
    enter_waiting_room(patient)

    arrival = doctor.locator(".vc-member", has_text="Kim")
    arrival.wait_for()
    assert "vc-new" in arrival.get_attribute("class")
    assert arrival.evaluate("(node) => getComputedStyle(node).outlineStyle") == "solid"
    doctor.wait_for_function("(calm) => document.title === '(1) ' + calm", arg=calm_title)
    assert doctor.inner_text("#vc-queue [data-status]") == "Kim is waiting."
    # Quiet: no sound, and no browser notification unless asked for.
    assert doctor.evaluate("() => document.querySelectorAll('audio').length") == 0
    assert doctor.evaluate("() => Notification.permission") == "default"

    arrival.get_by_role("button", name="Decline").click()
    patient.get_by_role("heading", name="Die Praxis konnte Sie jetzt nicht empfangen").wait_for()
    arrival.wait_for(state="detached")
    doctor.wait_for_function("(calm) => document.title === calm", arg=calm_title)
    doctor.context.close()
    patient.context.close()


def test_three_in_a_group_see_each_other_in_a_grid(browser, world):
    planned = world.plan(kind=AppointmentKind.GROUP, participants=2)
    doctor = world.signed_in(browser, world.people.doc, "de").new_page()
    patients = world.waiting(browser, planned, "Alex", "Kim")
    open_call(doctor, world.url, planned.appointment.public_id)
    admit(doctor, "Alex")
    admit(doctor, "Kim")
    everyone = [
        ("practice-group-call-de", doctor),
        ("join-group-call-alex-en", patients[0]),
        ("join-group-call-kim-en", patients[1]),
    ]
    in_call(*(page for _, page in everyone), peers=2)
    for name, page in everyone:
        assert page.get_attribute("[data-tiles]", "data-count") == "3"
        for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            resize(page, viewport)
            boxes = [tile.bounding_box() for tile in page.locator(".vc-tile").all()]
            for i, a in enumerate(boxes):
                for b in boxes[i + 1 :]:
                    overlap_x = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
                    overlap_y = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
                    assert overlap_x <= 1 or overlap_y <= 1, f"{name}: tiles overlap at {size} size"
            screenshot(page, f"{name}-{size}")
        page.set_viewport_size(DESKTOP)
    for _, page in everyone:
        page.context.close()


def test_a_language_switch_on_the_check_in_page_keeps_code_and_name(browser, world):
    issued = world.plan().invitations[0]
    page = world.context(browser, "en").new_page()
    sent: list[str] = []
    page.on("request", lambda request: sent.append(f"{request.url} {request.post_data or ''}"))

    def switch_language(to: str) -> None:
        with page.expect_navigation():  # until the reloaded page's scripts have run
            page.click("form.vc-language button")
        assert page.get_attribute("html", "lang") == to

    # The code from the link's fragment, a typed name: both survive the switch; the consent does not.
    page.goto(issued.link)
    page.fill("#name", "Kim Müller")
    page.check("input[name=consent]")
    switch_language("de")
    assert page.input_value("#code") == issued.code
    assert page.input_value("#name") == "Kim Müller"
    assert not page.is_checked("input[name=consent]")  # agreed to the text in the language it is read in
    # A code typed by hand (link without the fragment) survives too, and back again.
    page.goto(issued.link.split("#")[0])
    assert page.input_value("#code") == ""
    page.fill("#code", issued.code.lower())
    page.fill("#name", "Kim")
    switch_language("en")
    assert (page.input_value("#code"), page.input_value("#name")) == (issued.code.lower(), "Kim")
    # Kept only for the reload: nothing is left in the tab, nothing went to the server.
    assert page.evaluate("() => sessionStorage.length") == 0
    page.check("input[name=consent]")
    page.click("#vc-check-in button[type=submit]")
    page.wait_for_selector("[data-result=camera][data-state=ok]")
    code_in = [entry for entry in sent if issued.code in entry.upper() and "csrf_token=" not in entry]
    assert code_in == [], code_in  # only the check-in itself (a form with its CSRF token) carried the code
    assert sum(1 for entry in sent if issued.code in entry.upper()) == 1
    assert issued.code not in world.server.process.output
    page.context.close()


def test_a_language_switch_in_the_waiting_room_keeps_the_place(browser, world):
    planned = world.plan(kind=AppointmentKind.GROUP, participants=2)
    first = world.context(browser, "en").new_page()
    check_in(first, planned.invitations[0].link, "Alex")
    enter_waiting_room(first)
    assert first.inner_text("[data-position]").startswith("You are next.")
    second = world.context(browser, "de").new_page()
    check_in(second, planned.invitations[1].link, "Kim")
    enter_waiting_room(second)
    assert second.inner_text("[data-position]").startswith("Sie sind Nummer 2 im Wartezimmer.")

    first.click("form.vc-language button")
    first.wait_for_function("() => document.documentElement.lang === 'de'")
    first.wait_for_selector("[data-view=waiting]:not([hidden])")  # without a second device check
    position = first.inner_text("[data-position]")
    assert re.fullmatch(r"Sie sind als Nächstes an der Reihe\. Geplanter Beginn: \d\d:\d\d Uhr\.", position), position
    assert first.inner_text("body").count("Bitte bleiben Sie auf dieser Seite") == 1
    first.context.close()
    second.context.close()


def test_the_waiting_room_reconnects_after_a_drop_and_keeps_the_place(browser, world):
    planned = world.plan(kind=AppointmentKind.GROUP, participants=2)
    first = world.context(browser, "en").new_page()
    connections: list[tuple[Any, Any]] = []

    def through_the_server(route: Any) -> None:
        connections.append((route, route.connect_to_server()))

    first.route_web_socket(re.compile(r"/vc/ws/room/"), through_the_server)
    check_in(first, planned.invitations[0].link, "Alex")
    enter_waiting_room(first)
    second = world.context(browser, "en").new_page()
    check_in(second, planned.invitations[1].link, "Kim")
    enter_waiting_room(second)
    assert second.inner_text("[data-position]").startswith("You are number 2 in the waiting room.")

    # The network drops the first person's connection (both ends see it close, as after a network change).
    first.evaluate(RECORD_POSITIONS)
    page_side, server_side = connections[-1]
    server_side.close(code=1001, reason="")
    page_side.close(code=4000, reason="")
    first.wait_for_function(
        "() => window.vcPositions.length >= 3 && window.vcPositions.at(-1).startsWith('You are next.')"
    )
    positions = first.evaluate("() => window.vcPositions")
    assert any(text.startswith("Connection lost; reconnecting") for text in positions), positions
    assert len(connections) == 2  # a new connection, not the old one
    first.context.close()
    second.context.close()


def test_without_camera_and_microphone_trying_again_is_the_main_button(playwright_instance, browser, world):
    """A computer with no camera and no microphone (a Chromium without fake devices): the check says so,
    "Try again" is the main button and the waiting room only the second choice (issue 17, item 10)."""
    args = [arg for arg in CHROMIUM_ARGS if arg != "--use-fake-device-for-media-stream"]
    bare = playwright_instance.chromium.launch(executable_path=chromium_path(), args=args, headless=True)
    try:
        page = bare.new_context(locale="en-GB", viewport=DESKTOP).new_page()
        page.goto(world.plan().invitations[0].link)
        page.fill("#name", "Alex")
        page.check("input[name=consent]")
        page.click("#vc-check-in button[type=submit]")
        page.wait_for_selector("[data-result=microphone][data-state=fail]")
        assert not serious_findings(page, "device check without camera and microphone")  # axe (WCAG 2.1 AA)
        assert "vc-primary" in (page.get_attribute("[data-retry]", "class") or "")
        assert "vc-primary" not in (page.get_attribute("[data-ready]", "class") or "")
        assert page.is_enabled("[data-ready]"), "the waiting room stays reachable"
    finally:
        bare.close()

    # With working devices it is the other way round.
    page = world.context(browser, "en").new_page()
    check_in(page, world.plan().invitations[0].link, "Alex")
    assert "vc-primary" in (page.get_attribute("[data-ready]", "class") or "")
    assert "vc-primary" not in (page.get_attribute("[data-retry]", "class") or "")
    page.context.close()


def test_an_arrival_for_another_appointment_shows_quietly_in_the_call(browser, world):
    """Issue 17, item 2: in a call, someone arriving for another of the practitioner's appointments
    appears as one visible line (no sound), and goes when they leave."""
    colleague = world.people.colleague  # nobody of the earlier tests waits for them
    current, later = world.plan(by=colleague, in_minutes=5), world.plan(by=colleague, in_minutes=25)
    doctor = world.signed_in(browser, colleague, "en").new_page()
    open_call(doctor, world.url, current.appointment.public_id)
    line = doctor.locator("[data-elsewhere]")
    assert line.is_hidden()
    patient = world.context(browser, "en").new_page()
    check_in(patient, later.invitations[0].link, "Sam")
    enter_waiting_room(patient)
    line.wait_for(state="visible", timeout=15000)
    assert re.fullmatch(r"Waiting for your other appointments: \S.*, one person", line.inner_text()), line.inner_text()
    assert "Sam" not in doctor.locator("[data-waiting]").inner_text(), "this appointment's own list stays its own"
    patient.click("[data-leave-waiting]")
    line.wait_for(state="hidden", timeout=15000)
    patient.context.close()
    doctor.context.close()
