"""Hostile names, notices, chat lines and file names in Chromium: shown as text in every view,
including the live queue and the call that scripts render, never turned into markup.

Every name a page can show carries ``<img … data-xss>``: the practitioners, the organisation, the
appointment's label, the patient, a notice, a chat line, a file. Each page must show the text, hold
no element that came from it, and report no Content-Security-Policy violation.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP
from tests.support.hosts import HostApp, make_host_app
from tests.support.live import LiveServer
from tests.support.people import People, make_people
from tests.support.signal_client import practitioner_cookie
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import AppointmentIn, ParticipantIn

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAYLOAD = "<img src=x onerror=alert(1) data-xss>"
#: Runs before the page's own scripts: records CSP violations (an inline handler that got through
#: into the DOM would be blocked, and reported here).
GUARD = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
window.__blobTypes = [];
const createObjectURL = URL.createObjectURL;
URL.createObjectURL = (object) => {
  if (object instanceof Blob) window.__blobTypes.push(object.type);
  return createObjectURL.call(URL, object);
};
"""
INERT = """() => ({
  injected: document.querySelectorAll("[data-xss], img[src='x']").length,
  violations: window.__violations,
  shown: document.body.textContent.includes(%s),
})"""


@pytest.fixture(scope="module")
def practice(
    postgres_schema: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, HostApp, People, Any]]:
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_schema)
    server = LiveServer(postgres_schema, {}, tmp_path_factory.mktemp("hostile-names")).start()
    host = make_host_app(postgres_schema, VC_PUBLIC_URL=server.url + "/")
    with host.app.app_context():
        people = make_people(host.state)
        for person in (people.doc, people.colleague, people.desk, people.boss):
            person.display_name = f"{PAYLOAD} {person.display_name}"
        people.doc.organisation.name = PAYLOAD
        host.state.db.session.commit()
        host.state.api_tokens.create("praxis-nord", PAYLOAD)
        start = host.state.clock.now() + timedelta(minutes=5)
        planned = host.state.appointments.plan(
            Principal.of(people.doc),
            AppointmentIn(
                starts_at=start, ends_at=start + timedelta(minutes=30), label=PAYLOAD, participants=[ParticipantIn()]
            ),
        )
        yield server, host, people, planned
    host.close()
    server.stop()


def context_for(browser: Any, server: LiveServer, person: Any | None, locale: str) -> Any:
    context = browser.new_context(locale=locale, viewport=DESKTOP)
    context.add_init_script(GUARD)
    if person is not None:
        name, value = practitioner_cookie(person).split("=", 1)
        context.add_cookies([{"name": name, "value": value, "url": server.url}])
    return context


class Inspector:
    """Checks pages as they go, and collects script errors on the way."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.views: list[str] = []

    def watch(self, page: Any) -> Any:
        page.on("pageerror", lambda error: self.problems.append(f"{page.url}: {error}"))
        page.on("dialog", lambda dialog: (self.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
        return page

    def inert(self, page: Any, view: str, text: str = PAYLOAD) -> None:
        state = page.evaluate(INERT % repr(text))
        assert state["injected"] == 0, f"{view}: markup from a name became an element"
        assert state["violations"] == [], f"{view}: {state['violations']}"
        assert state["shown"], f"{view} does not show {text!r} as text"
        self.views.append(view)


def test_hostile_text_stays_text_in_every_view(browser, practice, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, _host, people, planned = practice
    issued = planned.invitations[0]
    appointment = planned.appointment.public_id
    check = Inspector()
    patient = check.watch(context_for(browser, server, None, "en-GB").new_page())
    staff = check.watch(context_for(browser, server, people.desk, "de-DE").new_page())
    doctor = check.watch(context_for(browser, server, people.doc, "de-DE").new_page())
    boss = check.watch(context_for(browser, server, people.boss, "de-DE").new_page())

    # Check-in shows the practitioner's name; the patient calls herself <img …>.
    patient.goto(f"{server.url}/vc/join/{issued.invitation.public_id}#code={issued.code}")
    check.inert(patient, "check-in page")
    patient.fill("#name", PAYLOAD)
    patient.check("input[name=consent]")
    patient.click("#vc-check-in button[type=submit]")
    patient.wait_for_selector("[data-result=camera][data-state=ok]")
    patient.click("[data-ready]")
    patient.wait_for_selector("[data-view=waiting]:not([hidden])")
    check.inert(patient, "waiting room")

    # The live queue, rendered by dashboard.js: the patient, the practitioner's name, colleagues to hand over to.
    staff.goto(f"{server.url}/vc/practice/")
    staff.locator("[data-rooms] .vc-member").wait_for()
    check.inert(staff, "staff's live queue")
    assert staff.locator("[data-rooms] .vc-member-name").first.text_content() == PAYLOAD
    staff.locator("[data-rooms] summary").first.click()
    staff.locator("[data-rooms] input[type=text]").first.fill(PAYLOAD)
    staff.locator("[data-rooms] form button[type=submit]").first.click()
    patient.wait_for_selector("[data-notice-box]:not([hidden])")
    assert patient.text_content("[data-notice]") == PAYLOAD
    check.inert(patient, "notice in the waiting room")
    doctor.goto(f"{server.url}/vc/practice/")
    doctor.locator("[data-rooms] .vc-member").wait_for()
    check.inert(doctor, "practitioner's live queue")

    # The practitioner's call page lists who waits (practitioner_call.js), then the call itself.
    doctor.goto(f"{server.url}/vc/practice/appointments/{appointment}/call")
    doctor.wait_for_selector("[data-result=camera][data-state=ok]")
    doctor.click("[data-start]")
    doctor.wait_for_selector("[data-call]:not([hidden])")
    waiting = doctor.locator("[data-waiting] li", has_text=PAYLOAD)
    waiting.wait_for()
    check.inert(doctor, "call page, waiting list")
    waiting.locator("button.vc-primary").click()
    patient.wait_for_selector("[data-view=call]:not([hidden])")
    patient.locator("figcaption", has_text=f"{PAYLOAD} Dr. Maria Berg").wait_for(timeout=30000)
    doctor.locator("figcaption", has_text=PAYLOAD).wait_for(timeout=30000)
    check.inert(patient, "patient's call, tile of the practitioner", f"{PAYLOAD} Dr. Maria Berg")
    check.inert(doctor, "practitioner's call, tile of the patient")

    # Chat and a file over the data channel.
    patient.fill("[data-chat-input]", PAYLOAD)
    patient.get_by_role("button", name="Send", exact=True).click()
    doctor.locator("[data-chat-log] li", has_text=PAYLOAD).wait_for(timeout=20000)
    check.inert(doctor, "chat line")
    upload = tmp_path / f"{PAYLOAD}.txt"
    upload.write_text("Befund")
    patient.set_input_files("[data-file-input]", str(upload))
    patient.get_by_role("button", name="Send file").click()
    received = doctor.locator("[data-files] li[data-sha256]")
    received.wait_for(timeout=30000)
    check.inert(doctor, "received file", f"{PAYLOAD}.txt")
    assert received.get_by_role("link").get_attribute("download") == f"{PAYLOAD}.txt"
    # The sender said text/plain; whatever it says, the link is a download, never a page of our origin.
    assert doctor.evaluate("() => window.__blobTypes") == ["application/octet-stream"]

    # Pages rendered by the server.
    for page, path, view in (
        (doctor, f"/vc/practice/appointments/{appointment}", "appointment page"),
        (doctor, "/vc/practice/appointments", "appointment list"),
        (staff, "/vc/practice/appointments/new", "planning form"),
        (boss, "/vc/admin/", "organisation page"),
    ):
        page.goto(server.url + path)
        check.inert(page, view)

    assert check.problems == [], "\n".join(check.problems)
    assert len(check.views) == 14
    for page in (patient, staff, doctor, boss):
        page.context.close()
