"""The whole journey in two Chromium contexts: sign-in, planning, invitation, check-in, device
check, waiting room, admission, video both ways, chat, a 1 MB file, screen share, end.
(Every page in both languages and sizes: test_gallery.py.)"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.browser.conftest import DESKTOP, REMOTE_VIDEO_PLAYS, screenshot
from tests.support.live import LiveServer
from tests.support.oidc import CLIENT_ID, CLIENT_SECRET, OidcProvider, client_metadata
from tests.support.processes import wait_for
from tests.support.smtp import SmtpServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def deployment(pg_url, tmp_path):
    smtp = SmtpServer().start()
    server = LiveServer(pg_url, {}, tmp_path)
    provider = OidcProvider([client_metadata(server.url)], tmp_path).start()
    server.config.update(
        VC_OIDC_ISSUER=provider.issuer,
        VC_OIDC_CLIENT_ID=CLIENT_ID,
        VC_OIDC_CLIENT_SECRET=CLIENT_SECRET,
        VC_OIDC_ORGANISATION_CLAIM="organisation",
        VC_SMTP_URL=smtp.url,
    )
    server.start()
    yield server, smtp
    server.stop()
    provider.stop()
    smtp.stop()


def sign_in_as_doctor(page, server) -> None:
    page.goto(f"{server.url}/vc/")
    page.get_by_role("button", name="Mit dem Konto Ihrer Organisation anmelden").click()
    page.fill("input[name=login]", "doc")
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r".*/vc/practice/$"))


def plan_for_patient(page, server, email: str) -> None:
    start = datetime.now(ZoneInfo("Europe/Berlin")) + timedelta(minutes=3)
    page.goto(f"{server.url}/vc/practice/appointments/new")
    screenshot(page, "journey-practice-plan-de-desktop")
    page.fill("#date", start.strftime("%Y-%m-%d"))
    page.fill("#time", start.strftime("%H:%M"))
    page.fill("#p0-email", email)
    page.select_option("#p0-language", "en")
    page.get_by_role("button", name="Planen und Einladungen senden").click()
    page.get_by_role("heading", name="Termin geplant").wait_for()
    screenshot(page, "journey-practice-planned-de-desktop")


def invitation_link(smtp, email: str) -> str:
    wait_for(lambda: any(email in recipients for recipients, _ in smtp.received()), 20, what="invitation mail")
    [message] = [m for recipients, m in smtp.received() if email in recipients]
    text = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"(http://\S+/vc/join/\S+#code=[A-Z0-9-]+)", text).group(1)


def test_the_whole_journey(browser, deployment, tmp_path):
    server, smtp = deployment
    doctor_context = browser.new_context(locale="de-DE", viewport=DESKTOP)
    patient_context = browser.new_context(locale="en-GB", viewport=DESKTOP)
    doctor, patient = doctor_context.new_page(), patient_context.new_page()
    problems: list[str] = []
    ours = server.url.split("/")[2]

    def from_our_page(request) -> bool:
        return request.frame.url.split("/")[2:3] == [ours]

    def on_console(page, message) -> None:
        if message.type == "error" and page.url.startswith(server.url):
            problems.append(f"{page.url}: {message.text}")

    for page in (doctor, patient):
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda message, page=page: on_console(page, message))
        page.on(
            "requestfailed",
            lambda request: problems.append(f"failed: {request.url}") if from_our_page(request) else None,
        )
    # Our pages make no third-party request (the test's identity provider has pages of its own).
    requested: set[str] = set()
    for context in (doctor_context, patient_context):
        context.on(
            "request",
            lambda request: (
                requested.add(request.url.split("/")[2])
                if from_our_page(request) and not request.is_navigation_request()
                else None
            ),
        )

    sign_in_as_doctor(doctor, server)
    screenshot(doctor, "journey-practice-dashboard-de-desktop")
    plan_for_patient(doctor, server, "alex.patient@example.org")
    link = invitation_link(smtp, "alex.patient@example.org")
    code = link.split("#code=")[1]

    # The patient: link with the code in the fragment, name, consent.
    patient.goto(link)
    assert patient.input_value("#code") == code
    assert "#code" not in patient.url  # the fragment is removed from the address bar
    screenshot(patient, "journey-join-check-in-en-desktop")
    patient.fill("#name", "Alex Patient")
    patient.check("input[name=consent]")
    patient.get_by_role("button", name="Continue to the device check").click()

    # Device and network check, then the waiting room.
    patient.wait_for_selector("[data-result=camera][data-state=ok]")
    patient.wait_for_selector("[data-result=microphone][data-state=ok]")
    patient.wait_for_selector("[data-result=server][data-state=ok]")
    patient.wait_for_function("() => Number(document.querySelector('[data-level]').dataset.heard || 0) > 0")
    patient.wait_for_function("() => document.querySelector('[data-preview]').videoWidth > 0")
    screenshot(patient, "journey-join-device-check-en-desktop")
    patient.get_by_role("button", name="Go to the waiting room").click()
    patient.get_by_role("heading", name="Waiting room").wait_for()
    patient.wait_for_selector("[data-view=waiting]:not([hidden])")
    assert "You are next" in patient.inner_text("[data-position]")
    screenshot(patient, "journey-join-waiting-en-desktop")

    # The practitioner sees the arrival live, sends a message, admits.
    doctor.goto(f"{server.url}/vc/practice/")
    arrival = doctor.locator("[data-rooms] .vc-member", has_text="Alex Patient")
    arrival.wait_for()
    doctor.locator("[data-rooms] summary", has_text="Nachricht ans Wartezimmer").first.click()  # folded away
    doctor.locator("[data-rooms] input[type=text]").first.fill("Ich komme gleich.")
    doctor.get_by_role("button", name="Nachricht senden").first.click()
    patient.wait_for_selector("[data-notice-box]:not([hidden])")
    assert "Ich komme gleich." in patient.inner_text("[data-notice]")
    screenshot(doctor, "journey-practice-queue-de-desktop")
    arrival.get_by_role("link", name="Aufnehmen und Gespräch beginnen").click()
    doctor.wait_for_selector("[data-result=camera][data-state=ok]")
    doctor.get_by_role("button", name="Sprechstunde beginnen").click()

    # Video both ways.
    patient.wait_for_selector("[data-view=call]:not([hidden])")
    doctor.wait_for_function(REMOTE_VIDEO_PLAYS, timeout=30000)
    patient.wait_for_function(REMOTE_VIDEO_PLAYS, timeout=30000)
    doctor.wait_for_function("() => /Direkte Verbindung/.test(document.querySelector('[data-connection]').textContent)")
    screenshot(patient, "journey-join-call-en-desktop")
    screenshot(doctor, "journey-practice-call-de-desktop")

    # Chat, both ways; nothing passes the server (checked in the server log below).
    patient.fill("[data-chat-input]", "Hello, can you hear me?")
    patient.get_by_role("button", name="Send", exact=True).click()
    doctor.locator("[data-chat-log] li", has_text="Hello, can you hear me?").wait_for()
    doctor.fill("[data-chat-input]", "Ja, sehr gut.")
    doctor.get_by_role("button", name="Senden", exact=True).click()
    patient.locator("[data-chat-log] li", has_text="Ja, sehr gut.").wait_for()

    # A 1 MB file arrives intact.
    payload = os.urandom(1024 * 1024)
    upload = tmp_path / "befund.pdf"
    upload.write_bytes(payload)
    patient.set_input_files("[data-file-input]", str(upload))
    patient.get_by_role("button", name="Send file").click()
    received = doctor.locator("[data-files] li[data-sha256]")
    received.wait_for(timeout=30000)
    assert received.get_attribute("data-sha256") == hashlib.sha256(payload).hexdigest()
    assert received.get_attribute("data-size") == str(len(payload))
    assert received.get_by_role("link", name="Herunterladen").get_attribute("download") == "befund.pdf"

    # Screen share replaces the camera picture the patient sees.
    before = patient.evaluate("() => document.querySelector('video[data-remote]').videoWidth")
    doctor.get_by_role("button", name="Bildschirm teilen").click()
    doctor.wait_for_selector("[data-share][aria-pressed=true]")
    patient.wait_for_function(
        f"() => document.querySelector('video[data-remote]').videoWidth !== {before}", timeout=20000
    )
    screenshot(patient, "journey-join-call-screen-share-en-desktop")

    # The practitioner ends the consultation for everyone, after a question; "keep talking" ends nothing.
    doctor.get_by_role("button", name="Für alle beenden").click()
    question = doctor.get_by_role("dialog", name="Die Sprechstunde für alle beenden?")
    question.wait_for()
    assert doctor.evaluate("() => document.activeElement.hasAttribute('data-end-cancel')")
    question.get_by_role("button", name="Weitersprechen").click()
    question.wait_for(state="hidden")
    assert patient.locator("section[data-view=call]").is_visible()
    doctor.get_by_role("button", name="Für alle beenden").click()
    question.get_by_role("button", name="Für alle beenden").click()
    patient.get_by_role("heading", name="The consultation has ended").wait_for()
    doctor.get_by_role("heading", name="Die Sprechstunde ist beendet").wait_for()
    screenshot(patient, "journey-join-ended-en-desktop")

    assert problems == [], "\n".join(problems)
    assert requested == {ours}, requested
    log = server.process.output
    for secret in (
        "Hello, can you hear me?",
        "Alex Patient",
        "alex.patient@example.org",
        "a=fingerprint",
        "candidate:",
    ):
        assert secret not in log, f"{secret!r} reached the server log"
    doctor_context.close()
    patient_context.close()
