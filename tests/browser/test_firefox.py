"""Firefox ESR as a first-class browser: a Firefox patient with a Chromium practitioner, and a call
between two Firefox windows. Debian's firefox-esr is driven over WebDriver BiDi
(tests/support/firefox.py) with fake camera and microphone; Chromium by Playwright as elsewhere.

Each call is checked on both sides with RTCPeerConnection.getStats(): video frames decoded and audio
packets received, more and more of them; chat both ways; a file each way with the same SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import (
    DESKTOP,
    Practice,
    admit,
    check_in,
    enter_waiting_room,
    in_call,
    open_call,
    running_practice,
    screenshot,
    watch,
)
from tests.support.firefox import Firefox, FirefoxPage
from tests.support.signal_client import practitioner_cookie

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT_MS = 45_000  # generous: two browsers and gunicorn share a busy two-core machine
FILE_BYTES = 300 * 1024  # about twenty data-channel chunks
# Test-only instrumentation, run before the page's own scripts: remember every RTCPeerConnection
# the page makes, so that the test can read its statistics.
REMEMBER_PEER_CONNECTIONS = """() => {
  const Native = window.RTCPeerConnection;
  if (!Native || window.__vcPcs) return;
  window.__vcPcs = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      window.__vcPcs.push(this);
    }
  };
}"""
# What arrived over the page's connected peer connections: video frames decoded, audio packets.
MEDIA_RECEIVED = """async () => {
  const totals = { connections: 0, framesDecoded: 0, audioPackets: 0 };
  for (const pc of window.__vcPcs || []) {
    if (pc.connectionState !== 'connected') continue;
    totals.connections += 1;
    (await pc.getStats()).forEach((entry) => {
      if (entry.type !== 'inbound-rtp') return;
      if (entry.kind === 'video') totals.framesDecoded += entry.framesDecoded || 0;
      if (entry.kind === 'audio') totals.audioPackets += entry.packetsReceived || 0;
    });
  }
  return totals;
}"""
CHAT_ARRIVED = """(text) => [...document.querySelectorAll('[data-chat-log] li:not(.vc-mine)')]
  .some((line) => line.textContent.includes(text))"""
# The SHA-256 the page computed over a file it received (null until it has them all).
RECEIVED_FILE = """(name) => {
  const item = [...document.querySelectorAll('[data-files] li[data-incoming][data-sha256]')]
    .find((node) => node.textContent.includes(name));
  return item ? { sha256: item.dataset.sha256, size: Number(item.dataset.size) } : null;
}"""
SENT_FILE = """(name) => {
  const item = [...document.querySelectorAll('[data-files] li[data-outgoing][data-sha256]')]
    .find((node) => node.dataset.outgoing === name);
  return item ? item.dataset.sha256 : null;
}"""


@pytest.fixture(scope="module")
def world(postgres_schema, tmp_path_factory) -> Iterator[Practice]:
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_schema)
    with running_practice(postgres_schema, tmp_path_factory.mktemp("firefox-practice")) as practice:
        yield practice


@pytest.fixture(scope="module")
def firefox(tmp_path_factory) -> Iterator[Firefox]:
    """One Firefox for the module; each page gets a window and user context of its own."""
    with Firefox(log_dir=tmp_path_factory.mktemp("firefox")) as browser:
        yield browser


def eventually(read: Callable[[], Any], accept: Callable[[Any], bool], seconds: float, what: str) -> Any:
    """Reads until ``accept`` takes the value (a condition, never a fixed sleep); bounded by ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {seconds} s waiting for {what}; last seen: {value}")
        time.sleep(0.2)


def media_flows(page: Any, who: str) -> None:
    """Video frames are decoded and audio packets arrive, and both keep growing: the call is live."""
    first = eventually(
        lambda: page.evaluate(MEDIA_RECEIVED),
        lambda seen: seen["connections"] >= 1 and seen["framesDecoded"] > 0 and seen["audioPackets"] > 0,
        WAIT_MS / 1000,
        f"{who} to receive video and audio",
    )
    eventually(
        lambda: page.evaluate(MEDIA_RECEIVED),
        lambda seen: seen["framesDecoded"] > first["framesDecoded"] and seen["audioPackets"] > first["audioPackets"],
        WAIT_MS / 1000,
        f"{who} to keep receiving video and audio (first {first})",
    )


def chat(sender: Any, receiver: Any, text: str) -> None:
    sender.fill("[data-chat-input]", text)
    sender.click("[data-chat-form] button[type=submit]")
    receiver.wait_for_function(CHAT_ARRIVED, arg=text, timeout=WAIT_MS)


def send_file(sender: Any, receiver: Any, folder: Path, name: str) -> None:
    """Random bytes from ``sender`` arrive intact at ``receiver``: both pages show the same SHA-256."""
    payload = os.urandom(FILE_BYTES)
    path = folder / name
    path.write_bytes(payload)
    sender.set_input_files("[data-file-input]", str(path))
    sender.click("[data-file-form] button[type=submit]")
    digest = hashlib.sha256(payload).hexdigest()
    sender.wait_for_function(SENT_FILE, arg=name, timeout=WAIT_MS)
    receiver.wait_for_function(RECEIVED_FILE, arg=name, timeout=WAIT_MS)
    received = receiver.evaluate(RECEIVED_FILE, name)
    assert sender.evaluate(SENT_FILE, name) == received["sha256"] == digest
    assert received["size"] == FILE_BYTES


def the_call_works(doctor: Any, patient: Any, folder: Path) -> None:
    """Media both ways by the statistics, chat both ways, a file each way."""
    media_flows(doctor, "the practitioner")
    media_flows(patient, "the patient")
    for page in (doctor, patient):  # the page's own statistics find the path too (Firefox has no transport entry)
        page.wait_for_selector("[data-connection][data-path=direct]", state="attached", timeout=WAIT_MS)
    chat(doctor, patient, "Guten Tag, hören Sie mich?")
    chat(patient, doctor, "Yes, loud and clear.")
    send_file(doctor, patient, folder, "befund.bin")
    send_file(patient, doctor, folder, "photo.bin")


def firefox_page(firefox: Firefox, locale: str, **options: Any) -> FirefoxPage:
    return firefox.new_page(locale=locale, viewport=DESKTOP, init_script=REMEMBER_PEER_CONNECTIONS, **options)


def test_a_firefox_patient_and_a_chromium_practitioner(browser, firefox, world, tmp_path):
    planned = world.plan(in_minutes=5)
    context = world.signed_in(browser, world.people.doc, "de")
    context.add_init_script(f"({REMEMBER_PEER_CONNECTIONS})()")
    doctor = context.new_page()
    problems = watch(doctor)
    patient = firefox_page(firefox, "en-GB")
    try:
        check_in(patient, planned.invitations[0].link, "Alex Firefox")
        assert patient.evaluate("() => document.documentElement.lang") == "en"
        enter_waiting_room(patient)
        open_call(doctor, world.url, planned.appointment.public_id)
        admit(doctor, "Alex Firefox")
        in_call(doctor, patient)
        the_call_works(doctor, patient, tmp_path)
        screenshot(patient, "firefox-join-call-en-desktop")
        assert problems == []
        assert patient.errors == []
    finally:
        patient.close()
        context.close()


def test_a_call_between_two_firefox_windows(firefox, world, tmp_path):
    planned = world.plan(in_minutes=5)
    name, value = practitioner_cookie(world.people.doc).split("=", 1)
    doctor = firefox_page(firefox, "de-DE", cookies=[(name, value, world.url)])
    patient = firefox_page(firefox, "de-DE")
    try:
        check_in(patient, planned.invitations[0].link, "Kim Firefox")
        enter_waiting_room(patient)
        open_call(doctor, world.url, planned.appointment.public_id)
        doctor.click("button.vc-primary", within="[data-waiting] li", has_text="Kim Firefox")
        in_call(doctor, patient)
        the_call_works(doctor, patient, tmp_path)
        screenshot(doctor, "firefox-practice-call-de-desktop")
        assert doctor.errors == []
        assert patient.errors == []
    finally:
        doctor.close()
        patient.close()
