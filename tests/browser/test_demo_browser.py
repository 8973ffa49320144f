"""The demo on embedded defaults (Flask's server, SQLite, no Redis, console mail) carries a whole
consultation: the development sign-in, planning, check-in, admission, video both ways."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.browser.conftest import DESKTOP, screenshot
from tests.support.processes import Process, free_port, port_open, python, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def demo(tmp_path):
    port = free_port()
    process = Process(
        python("-m", "vc_plugin.demo", "--port", str(port), "--instance", str(tmp_path / "instance")),
        log=tmp_path / "demo.log",
    )
    wait_for(lambda: port_open(port), 30, what="demo")
    yield f"http://127.0.0.1:{port}", process
    process.stop()


def test_a_consultation_on_the_demo(browser, demo):
    url, process = demo
    errors: list[str] = []
    sockets: list = []

    def watched(page):  # type: ignore[no-untyped-def]
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("websocket", lambda socket: sockets.append(socket))  # noqa: PLW0108 - Playwright wants a Python function
        return page

    doctor = watched(browser.new_context(locale="de-DE", viewport=DESKTOP).new_page())
    doctor.goto(url + "/vc/")
    doctor.get_by_role("button", name="Dr. Demo Praxis").click()
    doctor.goto(url + "/vc/practice/appointments/new")
    start = datetime.now(ZoneInfo("Europe/Berlin")) + timedelta(minutes=2)
    doctor.fill("#date", start.strftime("%Y-%m-%d"))
    doctor.fill("#time", start.strftime("%H:%M"))
    doctor.get_by_role("button", name="Planen und Einladungen senden").click()
    link = doctor.locator(".vc-copy").first.input_value()
    assert re.match(rf"{re.escape(url)}/vc/join/[\w-]+#code=[A-Z0-9-]{{11}}$", link)

    patient = watched(browser.new_context(locale="de-DE", viewport=DESKTOP).new_page())
    patient.goto(link)
    patient.fill("#name", "Demo-Patientin")
    patient.check("input[name=consent]")
    patient.get_by_role("button", name="Weiter zum Geräte-Test").click()
    patient.wait_for_selector("[data-result=camera][data-state=ok]")
    patient.get_by_role("button", name="Ins Wartezimmer").click()

    doctor.goto(url + "/vc/practice/")
    doctor.locator(".vc-member", has_text="Demo-Patientin").get_by_role("link").first.click()
    doctor.wait_for_selector("[data-result=camera][data-state=ok]")
    doctor.get_by_role("button", name="Sprechstunde beginnen").click()
    for page in (doctor, patient):
        page.wait_for_function(
            "() => { const v = document.querySelector('video[data-remote]'); return v && v.videoWidth > 0 }",
            timeout=30000,
        )
    screenshot(doctor, "demo-call-de-desktop")

    # Hanging up leaves no "Invalid frame header" in the console (issue 17, item 13): Flask's
    # development server used to write an HTTP response into the closed WebSocket.
    doctor.get_by_role("button", name="Für alle beenden").click()
    doctor.get_by_role("dialog").get_by_role("button", name="Für alle beenden").click()
    patient.get_by_role("heading", name="Die Sprechstunde ist beendet").wait_for()
    doctor.get_by_role("heading", name="Die Sprechstunde ist beendet").wait_for()
    rooms = [socket for socket in sockets if "/ws/room/" in socket.url]
    assert len(rooms) >= 2, [socket.url for socket in sockets]
    for socket in rooms:
        if not socket.is_closed():
            socket.wait_for_event("close", timeout=15000)
    assert not [text for text in errors if "WebSocket" in text or "frame" in text], errors
    assert "Traceback" not in process.output
