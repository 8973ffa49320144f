"""Every page in German and English, at desktop and phone size: a screenshot of each
(test-artifacts/screenshots/<page>-<lang>-<size>.png, one name per picture) and what each page
must do: no script error, the page in the chosen language, every field labelled, no sideways
scrolling on a phone, and no serious or critical WCAG 2.1 AA finding of axe-core (docs/accessibility.md).

The states are prepared once (appointments planned in the database, a second one that opens
tomorrow, one that is over) and visited in a fresh browser context per language and size.
Waiting room and call are live states: one consultation per language, photographed at both sizes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from tests.browser.conftest import (
    DESKTOP,
    PAGE_WIDTH,
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
    screenshot,
)
from tests.support.axe import serious_findings
from vc_plugin.domain.appointments import PlannedAppointment

pytestmark = [pytest.mark.browser, pytest.mark.slow]

UNLABELLED_FIELDS = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter((node) => !(node.labels.length || node.hasAttribute('aria-label') || node.hasAttribute('aria-labelledby')))
  .map((node) => node.id || node.name || node.outerHTML.slice(0, 80))"""


@dataclass
class Gallery:
    practice: Practice
    soon: PlannedAppointment  # check-in is open
    tomorrow: PlannedAppointment  # check-in not open yet
    over: PlannedAppointment  # the link has expired


@pytest.fixture(scope="module")
def gallery(postgres_schema, tmp_path_factory) -> Iterator[Gallery]:
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_schema)
    with running_practice(postgres_schema, tmp_path_factory.mktemp("gallery"), oidc=True) as practice:
        soon = practice.plan(label="Kontrolle <b>Knie</b>")
        tomorrow = practice.plan(in_minutes=26 * 60)
        over = practice.plan(in_minutes=10)
        over.appointment.starts_at -= timedelta(hours=3)
        over.appointment.ends_at -= timedelta(hours=3)
        practice.host.state.db.session.commit()
        yield Gallery(practice, soon, tomorrow, over)


class Photographer:
    """Takes each page's screenshot and notes what is wrong with it, so that one run shows every problem."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.problems: list[str] = []

    def watch(self, page: Any) -> Any:
        page.on("pageerror", lambda error: self.problems.append(f"{page.url}: {error}"))
        page.on(
            "response",
            lambda response: (
                self.problems.append(f"{response.status} for {response.url}")
                if response.status >= 400 and response.request.resource_type not in {"document"}
                else None
            ),
        )
        return page

    def take(self, page: Any, name: str, size: str) -> None:
        shot = f"{name}-{self.lang}-{size}"
        screenshot(page, shot)
        if page.get_attribute("html", "lang") != self.lang:
            self.problems.append(f"{shot}: html lang is {page.get_attribute('html', 'lang')}")
        unlabelled = page.evaluate(UNLABELLED_FIELDS)
        if unlabelled:
            self.problems.append(f"{shot}: fields without a label: {unlabelled}")
        width = page.evaluate(PAGE_WIDTH)
        if size == "phone" and width > PHONE["width"]:
            self.problems.append(f"{shot}: {width} px wide, wider than the phone ({PHONE['width']} px)")
        self.problems.extend(serious_findings(page, shot))

    def take_both(self, page: Any, name: str) -> None:
        """The same live state at desktop and phone size (the page is resized, not reloaded)."""
        for size, viewport in SIZES.items():
            page.set_viewport_size(viewport)
            self.take(page, name, size)
        page.set_viewport_size(DESKTOP)


@pytest.mark.parametrize("lang", ["de", "en"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_every_page(browser, gallery: Gallery, lang: str, size: str) -> None:
    practice, url = gallery.practice, gallery.practice.url
    viewport = SIZES[size]
    shots = Photographer(lang)

    visitor = practice.context(browser, lang, viewport)
    page = shots.watch(visitor.new_page())
    soon = gallery.soon.invitations[0]
    for name, path in [
        ("sign-in", "/vc/auth/sign-in"),
        ("signed-out", "/vc/auth/signed-out"),
        ("privacy", "/vc/privacy"),
        ("join-invalid", "/vc/join/NoSuchInvitation"),
        ("join-expired", f"/vc/join/{gallery.over.invitations[0].invitation.public_id}"),
        ("join-not-yet", f"/vc/join/{gallery.tomorrow.invitations[0].invitation.public_id}"),
        ("join-left", f"/vc/join/{soon.invitation.public_id}/left"),
        ("sign-in-rejected", "/vc/auth/callback?code=forged&state=forged"),
    ]:
        page.goto(url + path)
        shots.take(page, name, size)
    # Before check-in opens: the device test the invitation promises (issue 17, item 7).
    page.goto(f"{url}/vc/join/{gallery.tomorrow.invitations[0].invitation.public_id}")
    page.click("[data-early-start]")
    page.wait_for_selector("[data-result=camera][data-state=ok]")
    page.wait_for_selector("[data-choice=audioinput]:not([hidden])")
    shots.take(page, "join-not-yet-device-test", size)
    page.goto(soon.link)
    shots.take(page, "join-check-in", size)
    check_in(page, soon.link, "Kim")
    shots.take(page, "join-device-check", size)
    page.goto(f"{url}/vc/join/{soon.invitation.public_id}/privacy")
    page.get_by_text("Kim").first.wait_for()
    shots.take(page, "join-receipt", size)
    # Signed in at the provider, but without a role for video consultations.
    page.goto(url + "/vc/auth/sign-in")
    page.click("form[action$='/auth/oidc'] button[type=submit]")
    page.fill("input[name=login]", "nobody")
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r".*/vc/auth/callback\b.*"))
    shots.take(page, "no-role", size)
    visitor.close()

    people = practice.people
    doctor = practice.signed_in(browser, people.doc, lang, viewport)
    page = shots.watch(doctor.new_page())
    appointment = gallery.soon.appointment.public_id
    for name, path in [
        ("practice-dashboard", "/vc/practice/"),
        ("practice-appointments", "/vc/practice/appointments"),
        ("practice-appointments-past", "/vc/practice/appointments?view=past"),
        ("practice-appointment", f"/vc/practice/appointments/{appointment}"),
        ("error-not-found", "/vc/practice/appointments/NoSuchAppointment"),
        ("practice-plan", "/vc/practice/appointments/new"),
    ]:
        page.goto(url + path)
        shots.take(page, name, size)
        if name == "practice-appointment":  # a note with markup is shown as text, never as HTML
            assert page.locator("dd", has_text="Kontrolle <b>Knie</b>").count() == 1
    # Date and time fields look like the other fields (not the browser's bare defaults).
    looks = "(s) => { const c = getComputedStyle(document.querySelector(s)); return [c.minHeight, c.borderRadius]; }"
    assert [page.evaluate(looks, field) for field in ("#date", "#time")] == [page.evaluate(looks, "#label")] * 2
    assert page.evaluate(looks, "#label") == ["44px", "6px"]
    page.fill("#p0-email", f"gallery-{lang}-{size}@example.org")
    page.click("form[action$='/appointments/new'] button[type=submit]")
    page.locator(".vc-issued .vc-code").first.wait_for()
    shots.take(page, "practice-planned", size)
    page.goto(f"{url}/vc/practice/appointments/{appointment}/call")
    page.wait_for_selector("[data-result=camera][data-state=ok]")
    shots.take(page, "practice-call-check", size)
    doctor.close()

    for person, name, path in [
        (people.desk, "practice-dashboard-staff", "/vc/practice/"),
        (people.desk, "practice-plan-staff", "/vc/practice/appointments/new"),
        (people.boss, "admin", "/vc/admin/"),
    ]:
        context = practice.signed_in(browser, person, lang, viewport)
        page = shots.watch(context.new_page())
        page.goto(url + path)
        shots.take(page, name, size)
        context.close()

    assert shots.problems == [], "\n".join(shots.problems)


def sent_back(shots: Photographer, doctor: Any, patient: Any, name: str) -> None:
    """Issue 17: the patient asked to wait in the waiting room, the practitioner's list with Admit and the
    handover offered; then admitted again, back in the call."""
    doctor.locator("[data-in-call] li", has_text=name).locator("button[data-send-back]").click()
    patient.wait_for_selector("[data-sent-back]")
    patient.wait_for_selector("[data-view=waiting]:not([hidden])")
    doctor.locator("[data-waiting] li", has_text=name).wait_for()
    doctor.wait_for_selector("[data-handover-form]:not([hidden])")
    shots.take_both(patient, "join-sent-back")
    shots.take_both(doctor, "practice-call-sent-back")
    admit(doctor, name)
    in_call(doctor, patient)


@pytest.mark.parametrize("lang", ["de", "en"])
def test_waiting_room_and_call(browser, gallery: Gallery, lang: str) -> None:
    practice = gallery.practice
    shots = Photographer(lang)
    planned = practice.plan(in_minutes=5)
    doctor = shots.watch(practice.signed_in(browser, practice.people.doc, lang).new_page())
    patient = shots.watch(practice.context(browser, lang).new_page())
    open_dashboard(doctor, practice.url)

    check_in(patient, planned.invitations[0].link, "Kim")
    enter_waiting_room(patient)
    patient.wait_for_function("() => document.querySelector('[data-self-video]').videoWidth > 0")
    shots.take_both(patient, "join-waiting")
    patient.click("[data-self-camera]")  # the own picture, switched off before the call (issue 17, item 8)
    shots.take_both(patient, "join-waiting-camera-off")
    patient.click("[data-self-camera]")
    doctor.locator(".vc-member.vc-new", has_text="Kim").wait_for()
    shots.take_both(doctor, "practice-dashboard-arrival")

    open_call(doctor, practice.url, planned.appointment.public_id)
    shots.take_both(doctor, "practice-call-waiting")
    admit(doctor, "Kim")
    in_call(doctor, patient)
    for page in (doctor, patient):
        page.wait_for_selector("[data-connection][data-rtt]")
        page.fill("[data-chat-input]", "Guten Tag" if page is doctor else "Hello")
        page.press("[data-chat-input]", "Enter")
    patient.locator("[data-chat-log] li", has_text="Guten Tag").wait_for()
    doctor.locator("[data-chat-log] li", has_text="Hello").wait_for()
    shots.take_both(patient, "join-call")
    # On a phone, chat and files open over the video from the Chat button (issue 17, item 11).
    patient.set_viewport_size(PHONE)
    patient.click("[data-chat-toggle]")
    patient.wait_for_selector(".vc-side:visible")
    shots.take(patient, "join-call-chat", "phone")
    patient.click("[data-chat-close]")
    patient.set_viewport_size(DESKTOP)
    shots.take_both(doctor, "practice-call")
    sent_back(shots, doctor, patient, "Kim")

    doctor.click("[data-leave]")
    doctor.wait_for_selector("[data-end-dialog][open]")
    shots.take_both(doctor, "practice-call-end-question")
    doctor.click("[data-end-confirm]")
    patient.wait_for_selector("[data-view=ended]:not([hidden])")
    doctor.wait_for_selector("[data-after]:not([hidden])")
    shots.take_both(patient, "join-ended")
    shots.take_both(doctor, "practice-call-ended")
    # Reloaded, the patient's link says that the practice ended it; the appointment page offers to reopen.
    patient.reload()
    patient.wait_for_selector("[data-link-state=ended]")
    shots.take_both(patient, "join-link-ended")
    doctor.goto(f"{practice.url}/vc/practice/appointments/{planned.appointment.public_id}")
    doctor.wait_for_selector("form[data-reopen]")
    shots.take_both(doctor, "practice-appointment-ended")
    doctor.context.close()
    patient.context.close()
    assert shots.problems == [], "\n".join(shots.problems)
