"""What the call shows must be true: who is really there, whose microphone and camera are off,
whether the picture is live, and a practitioner's reload comes straight back into the call.

Real Chromium contexts with fake camera and microphone; every wait is bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import (
    KEEP_PEER_CONNECTIONS,
    REMOTE_FRAMES,
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

MEMBERS = """() => [...document.querySelectorAll('[data-rooms] [data-member]')].map((row) => ({
  name: row.querySelector('.vc-member-name').textContent, presence: row.dataset.presence }))"""


@pytest.fixture(scope="module")
def practice(postgres_schema, tmp_path_factory) -> Iterator[Practice]:
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_schema)
    with running_practice(postgres_schema, tmp_path_factory.mktemp("truth")) as running:
        yield running


def frames_advance(page: Any, by: int = 15, timeout: int = 15000) -> None:
    """The remote picture is live: new frames arrive, not only a picture that stands still."""
    start = page.evaluate(REMOTE_FRAMES)
    page.wait_for_function(f"(start) => ({REMOTE_FRAMES})() > start + {by}", arg=start, timeout=timeout)


def test_a_closed_tab_is_offline_at_once_and_the_same_link_on_another_device_replaces_it(browser, practice):
    planned = practice.plan(in_minutes=5)
    link = planned.invitations[0].link
    dashboard = practice.signed_in(browser, practice.people.doc, "de").new_page()
    open_dashboard(dashboard, practice.url)
    first_device = practice.context(browser, "de")
    phone = first_device.new_page()
    check_in(phone, link, "Frau Zwei Geräte")
    enter_waiting_room(phone)
    dashboard.wait_for_function(
        f"() => JSON.stringify(({MEMBERS})()) === JSON.stringify([{{name: 'Frau Zwei Geräte', presence: 'online'}}])"
    )

    first_device.close()  # the tab is closed, no "leave"
    dashboard.wait_for_selector("[data-rooms] [data-member][data-presence=offline]", timeout=2000)
    assert "Verbindung verloren" in dashboard.inner_text("[data-rooms] [data-member]")

    laptop = practice.context(browser, "de").new_page()
    check_in(laptop, link, "Frau Zwei Geräte")
    enter_waiting_room(laptop)
    # One entry, the one who is actually there: the old device's entry is gone, not beside it.
    dashboard.wait_for_function(
        f"() => JSON.stringify(({MEMBERS})()) === JSON.stringify([{{name: 'Frau Zwei Geräte', presence: 'online'}}])"
    )
    doctor = practice.signed_in(browser, practice.people.doc, "de").new_page()
    open_call(doctor, practice.url, planned.appointment.public_id)
    admit(doctor, "Frau Zwei Geräte")
    in_call(doctor, laptop)
    for page in (dashboard, doctor, laptop):
        page.context.close()


@pytest.fixture
def in_a_call(browser, practice: Practice) -> Iterator[tuple[Any, Any]]:
    planned = practice.plan(in_minutes=5)
    doctor = practice.signed_in(browser, practice.people.doc, "de").new_page()
    patient_context = practice.context(browser, "en")
    patient_context.add_init_script(KEEP_PEER_CONNECTIONS)
    patient = patient_context.new_page()
    check_in(patient, planned.invitations[0].link, "Alex")
    enter_waiting_room(patient)
    open_call(doctor, practice.url, planned.appointment.public_id)
    admit(doctor, "Alex")
    in_call(doctor, patient)
    yield doctor, patient
    doctor.context.close()
    patient.context.close()


def test_a_practitioners_reload_returns_to_the_running_call(in_a_call):
    doctor, patient = in_a_call
    doctor.reload()
    # Straight back into the call: no second device check, no "Start" to press.
    doctor.wait_for_selector("[data-call]:not([hidden])", timeout=15000)
    assert doctor.is_hidden("[data-check]")
    assert doctor.is_enabled("[data-start]") is False
    in_call(doctor, patient)
    frames_advance(doctor)
    frames_advance(patient)  # not a picture frozen at the moment of the reload


def test_the_other_side_sees_microphone_off_camera_off_and_a_still_picture(in_a_call):
    doctor, patient = in_a_call
    tile = "[data-tiles] [data-peer]"
    assert doctor.is_hidden(f"{tile} [data-microphone-off]")
    patient.click("[data-mute]")
    doctor.wait_for_selector(f"{tile} [data-microphone-off]:not([hidden])", timeout=5000)
    assert doctor.inner_text(f"{tile} [data-microphone-off]") == "Mikrofon aus"

    patient.click("[data-camera-off]")
    doctor.wait_for_selector(f"{tile} [data-camera-off-badge]:not([hidden])", timeout=5000)
    assert doctor.inner_text(f"{tile} [data-camera-off-badge]") == "Kamera aus"
    # A camera switched off is not a broken connection: no "reconnecting" on its black picture.
    doctor.wait_for_timeout(3000)  # longer than the frozen-picture threshold (2.5 s)
    assert doctor.get_attribute(tile, "data-frozen") != "true"

    patient.click("[data-camera-off]")
    patient.click("[data-mute]")
    doctor.wait_for_selector(f"{tile} [data-camera-off-badge][hidden]", state="attached", timeout=5000)
    doctor.wait_for_selector(f"{tile} [data-microphone-off][hidden]", state="attached", timeout=5000)

    # The patient's device stops delivering pictures although the camera counts as on.
    patient.evaluate("""() => Promise.all(window.__vcPcs.flatMap((pc) => pc.getSenders())
      .filter((sender) => sender.track && sender.track.kind === 'video')
      .map((sender) => { window.__vcStopped = sender.track; return sender.replaceTrack(null); }))""")
    doctor.wait_for_selector(f"{tile}[data-frozen=true]", timeout=5000)
    assert "Verbindung wird wiederhergestellt" in doctor.inner_text(f"{tile} [data-state]")
    patient.evaluate("""() => Promise.all(window.__vcPcs.flatMap((pc) => pc.getSenders())
      .filter((sender) => !sender.track && sender.track !== undefined)
      .map((sender) => sender.replaceTrack(window.__vcStopped)))""")
    doctor.wait_for_selector(f"{tile}[data-frozen=false]", timeout=10000)
    assert doctor.inner_text(f"{tile} [data-state]") == ""


def test_a_peer_connection_the_browser_gave_up_is_replaced_by_a_fresh_one(in_a_call):
    """Not every failure comes from the network: a closed peer connection is replaced, and the
    other side takes the fresh one (its id and certificate are new) instead of waiting forever."""
    doctor, patient = in_a_call
    patient.evaluate("() => window.__vcPcs.forEach((pc) => pc.close())")
    patient.wait_for_function("() => window.__vcPcs.some((pc) => pc.connectionState === 'connected')", timeout=20000)
    in_call(doctor, patient)
    frames_advance(doctor)
    frames_advance(patient)
    assert patient.evaluate("() => window.__vcPcs.length") >= 2
