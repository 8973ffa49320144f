"""The patient's devices (issue 17, items 7, 8 and 10), in real Chromium with fake devices: the device
test before check-in opens (no code, no connection to the practice), the choice of camera, microphone
and speakers carried into the call, and the own picture in the waiting room with the camera switch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (
    CHROMIUM_ARGS,
    DESKTOP,
    Practice,
    admit,
    check_in,
    enter_waiting_room,
    in_call,
    launch,
    open_call,
    running_practice,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# A browser like Safari: it cannot choose where sound plays (no setSinkId). Installed before the page's scripts.
NO_SINK_CHOICE = "delete HTMLMediaElement.prototype.setSinkId; delete AudioContext.prototype.setSinkId;"
SECOND = 1  # the second device of a kind in Chromium's fake list
LOCAL_DEVICE = """(kind) => {
  const track = document.querySelector('video[data-local]').srcObject.getTracks().find((t) => t.kind === kind);
  return track ? track.getSettings().deviceId : null;
}"""


@pytest.fixture(scope="module")
def world(postgres_schema, tmp_path_factory) -> Iterator[Practice]:
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_schema)
    with running_practice(postgres_schema, tmp_path_factory.mktemp("devices")) as practice:
        yield practice


@pytest.fixture(scope="module")
def two_cameras(playwright_instance) -> Iterator[Any]:
    """A computer with two cameras, three microphones and three speakers (Chromium's fake devices)."""
    args = [arg for arg in CHROMIUM_ARGS if arg != "--use-fake-device-for-media-stream"]
    browser = launch(playwright_instance, *args, "--use-fake-device-for-media-stream=device-count=2")
    yield browser
    browser.close()


def choices(page: Any) -> dict[str, bool]:
    return {kind: page.is_visible(f"[data-choice={kind}]") for kind in ("videoinput", "audioinput", "audiooutput")}


def test_the_device_test_runs_before_check_in_opens_without_code_or_connection(browser, world):
    """Item 7: the page shown before the waiting room opens offers the test the invitation promises."""
    issued = world.plan(in_minutes=180).invitations[0]
    page = world.context(browser, "en").new_page()
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    response = page.goto(issued.link.split("#")[0])  # no code: the test needs none
    expect(page.locator("h1")).to_contain_text("Your appointment starts on")
    # Camera and microphone allowed on this page only while it is the early test; screen sharing never.
    policy = response.headers["permissions-policy"]
    assert "camera=(self), microphone=(self), display-capture=()" in policy, policy
    # Nothing is asked of camera or microphone before the person chooses to test them.
    assert page.is_hidden("[data-early-check]")
    assert page.evaluate("() => document.querySelector('[data-preview]').srcObject") is None
    page.click("[data-early-start]")
    expect(page.locator("[data-result=camera]")).to_have_attribute("data-state", "ok")
    expect(page.locator("[data-result=microphone]")).to_have_attribute("data-state", "ok")
    expect(page.locator("[data-result=stun]")).not_to_have_attribute("data-state", "pending")
    page.wait_for_function("() => Number(document.querySelector('[data-level]').dataset.heard || 0) > 0")
    assert page.locator("[data-result=server]").count() == 0  # no practice server is asked
    expect(page.locator("[data-choice=audioinput]")).to_be_visible()
    assert choices(page) == {"videoinput": False, "audioinput": True, "audiooutput": True}  # one camera only
    page.click("[data-test-sound]")
    expect(page.locator("[data-test-sound]")).to_be_enabled()
    # No connection that could relay anything, no call to the practice's API: only the page and its files.
    assert sockets == []
    after_load = [url for url in requests if "/static/" not in url and not url.startswith("data:")]
    assert after_load == [issued.link.split("#")[0]], after_load
    # Negative: once check-in is open, the same link's page (code, name, consent) may use no camera.
    open_now = page.goto(world.plan(in_minutes=5).invitations[0].link)
    assert "camera=(), microphone=()" in open_now.headers["permissions-policy"]
    assert page.locator("[data-early-start]").count() == 0
    page.context.close()


def test_the_early_page_in_german_and_a_browser_without_speaker_choice(browser, world):
    """Negative: where the browser cannot choose the speakers, no list is offered and the words say what to do."""
    issued = world.plan(in_minutes=180).invitations[0]
    context = world.context(browser, "de")
    context.add_init_script(NO_SINK_CHOICE)
    page = context.new_page()
    page.goto(issued.link)
    expect(page.locator("#vc-early-title")).to_have_text("Kamera und Mikrofon jetzt testen")
    page.click("[data-early-start]")
    expect(page.locator("[data-choice=audioinput]")).to_be_visible()
    assert choices(page)["audiooutput"] is False
    expect(page.locator("[data-speaker-elsewhere]")).to_be_visible()
    expect(page.locator("[data-speaker-elsewhere]")).to_contain_text("in den Toneinstellungen Ihres Geräts")
    assert page.is_hidden("[data-speaker-here]") and page.is_hidden("[data-speaker-hint]")
    page.context.close()


def test_the_chosen_devices_go_into_the_call_and_the_camera_can_stay_off(browser, two_cameras, world):
    """Item 8: camera, microphone and speakers chosen in the check are the ones used in the call; the
    waiting room shows the own picture (mirrored, muted), and the camera switched off there stays off."""
    planned = world.plan(in_minutes=5)
    patient = two_cameras.new_context(locale="en-GB", viewport=DESKTOP).new_page()
    check_in(patient, planned.invitations[0].link, "Alex")
    expect(patient.locator("[data-choice=videoinput]")).to_be_visible()
    assert choices(patient) == {"videoinput": True, "audioinput": True, "audiooutput": True}
    wanted = {}
    for kind, select in (
        ("videoinput", "[data-camera-select]"),
        ("audioinput", "[data-microphone-select]"),
        ("audiooutput", "[data-speaker-select]"),
    ):
        wanted[kind] = patient.locator(f"{select} option").nth(SECOND).get_attribute("value")
        patient.select_option(select, wanted[kind])
    patient.wait_for_function(
        """([camera, microphone]) => {
          const stream = document.querySelector('[data-preview]').srcObject;
          return stream && stream.getVideoTracks()[0]?.getSettings().deviceId === camera
            && stream.getAudioTracks()[0]?.getSettings().deviceId === microphone;
        }""",
        arg=[wanted["videoinput"], wanted["audioinput"]],
    )
    expect(patient.locator("[data-speaker-here]")).to_be_visible()

    enter_waiting_room(patient)
    own = patient.locator("[data-self-video]")
    expect(own).to_be_visible()
    patient.wait_for_function("() => document.querySelector('[data-self-video]').videoWidth > 0")
    assert own.evaluate("(video) => video.muted && getComputedStyle(video).transform !== 'none'")
    button = patient.locator("[data-self-camera]")
    expect(button).to_have_attribute("aria-pressed", "false")
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    expect(button).to_have_text("Camera on")
    expect(patient.locator("[data-self-off]")).to_be_visible()

    doctor = world.signed_in(browser, world.people.doc, "de").new_page()
    open_call(doctor, world.url, planned.appointment.public_id)
    admit(doctor, "Alex")
    in_call(patient)
    # The practitioner sees the camera is off; the patient's call button says so too.
    expect(doctor.locator("[data-camera-off-badge]")).to_be_visible()
    expect(patient.locator("[data-camera-off]")).to_have_attribute("aria-pressed", "true")
    expect(patient.locator("[data-camera-off]")).to_have_text("Camera on")
    assert patient.evaluate(LOCAL_DEVICE, "video") == wanted["videoinput"]
    assert patient.evaluate(LOCAL_DEVICE, "audio") == wanted["audioinput"]
    patient.wait_for_function(
        "(sink) => document.querySelector('video[data-remote]').sinkId === sink", arg=wanted["audiooutput"]
    )
    # Switched on in the call: the practitioner sees the picture again.
    patient.click("[data-camera-off]")
    expect(doctor.locator("[data-camera-off-badge]")).to_be_hidden()
    # A reload goes back into the call with the same three devices, not the defaults.
    patient.reload()
    in_call(patient)
    assert patient.evaluate(LOCAL_DEVICE, "video") == wanted["videoinput"]
    assert patient.evaluate(LOCAL_DEVICE, "audio") == wanted["audioinput"]
    patient.wait_for_function(
        "(sink) => document.querySelector('video[data-remote]').sinkId === sink", arg=wanted["audiooutput"]
    )
    doctor.context.close()
    patient.context.close()


def test_a_remembered_device_that_is_gone_gives_the_defaults_not_half_a_call(browser, world):
    """Negative: the camera and microphone chosen earlier in this tab were unplugged since; the check
    falls back to the default ones (both work), not to sound alone."""
    planned = world.plan(in_minutes=5)
    context = world.context(browser, "en")
    context.add_init_script(
        "sessionStorage.setItem('vc-devices', JSON.stringify({videoinput: 'unplugged', audioinput: 'unplugged'}))"
    )
    patient = context.new_page()
    check_in(patient, planned.invitations[0].link, "Sam")
    expect(patient.locator("[data-result=camera]")).to_have_attribute("data-state", "ok")
    expect(patient.locator("[data-result=microphone]")).to_have_attribute("data-state", "ok")
    patient.wait_for_function("() => document.querySelector('[data-preview]').srcObject?.getTracks().length === 2")
    context.close()


def test_without_choices_the_call_uses_the_default_speakers_and_the_camera_is_on(browser, world):
    """Negative: nothing chosen, nothing switched off: the default devices and a camera that is on."""
    planned = world.plan(in_minutes=5)
    patient = world.context(browser, "en").new_page()
    check_in(patient, planned.invitations[0].link, "Kim")
    enter_waiting_room(patient)
    expect(patient.locator("[data-self-video]")).to_be_visible()
    expect(patient.locator("[data-self-off]")).to_be_hidden()
    doctor = world.signed_in(browser, world.people.doc, "de").new_page()
    open_call(doctor, world.url, planned.appointment.public_id)
    admit(doctor, "Kim")
    in_call(patient, doctor)
    expect(patient.locator("[data-camera-off]")).to_have_attribute("aria-pressed", "false")
    assert doctor.is_hidden("[data-camera-off-badge]")
    assert patient.evaluate("() => document.querySelector('video[data-remote]').sinkId") == ""
    # The waiting room's picture is let go once the call shows the own picture in its tile.
    assert patient.evaluate("() => document.querySelector('[data-self-video]').srcObject") is None
    doctor.context.close()
    patient.context.close()


def test_without_a_camera_the_waiting_room_stays_the_main_button_and_shows_no_own_picture(playwright_instance, world):
    """Item 10's other side: a computer with microphones but no camera can still talk, so the waiting
    room stays the main button; the waiting room then offers no own picture and no camera switch.
    (Camera and microphone both missing: test_call_behaviour.py makes "Try again" the main button.)"""
    args = [arg for arg in CHROMIUM_ARGS if arg != "--use-fake-device-for-media-stream"]
    no_camera = launch(playwright_instance, *args, "--use-fake-device-for-media-stream=device-count=0")
    try:
        page = no_camera.new_context(locale="en-GB", viewport=DESKTOP).new_page()
        page.goto(world.plan(in_minutes=5).invitations[0].link)
        page.fill("#name", "Sam")
        page.check("input[name=consent]")
        page.click("#vc-check-in button[type=submit]")
        expect(page.locator("[data-result=microphone]")).to_have_attribute("data-state", "ok")
        expect(page.locator("[data-result=camera]")).to_have_attribute("data-state", "fail")
        expect(page.locator("[data-choice=audioinput]")).to_be_visible()
        assert page.is_hidden("[data-choice=videoinput]")
        assert "vc-primary" in (page.get_attribute("[data-ready]", "class") or "")
        assert "vc-primary" not in (page.get_attribute("[data-retry]", "class") or "")
        enter_waiting_room(page)
        expect(page.locator("[data-position]")).not_to_be_empty()
        assert page.is_hidden("[data-self-view]") and page.is_hidden("[data-self-camera]")
    finally:
        no_camera.close()
