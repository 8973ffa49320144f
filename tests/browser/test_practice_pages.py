"""Screenshots of the practice's pages in German and English, desktop and phone; no script
errors, every form field labelled, and the dashboard's live list works by keyboard."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from tests.browser.conftest import DESKTOP, PHONE, screenshot
from tests.support.hosts import make_host_app
from tests.support.live import LiveServer
from tests.support.people import make_people
from tests.support.signal_client import session_cookie
from vc_plugin.access import Principal
from vc_plugin.schemas import AppointmentIn, ParticipantIn

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def practice(postgres_schema, tmp_path_factory):
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_schema)
    directory = tmp_path_factory.mktemp("practice")
    server = LiveServer(postgres_schema, {}, directory).start()
    host = make_host_app(postgres_schema, VC_PUBLIC_URL=server.url + "/")
    with host.app.app_context():
        people = make_people(host.state)
        start = host.state.clock.now() + timedelta(minutes=20)
        planned = host.state.appointments.plan(
            Principal.of(people.doc),
            AppointmentIn(
                starts_at=start,
                ends_at=start + timedelta(minutes=30),
                label="Kontrolle <b>Knie</b>",
                participants=[ParticipantIn(email="p@example.org")],
            ),
        )
        yield server, people, planned
    host.close()
    server.stop()


def signed_in(browser, server, person, locale, viewport):
    context = browser.new_context(locale=locale, viewport=viewport, is_mobile=viewport is PHONE)
    now = time.time()
    name, value = session_cookie(
        {"vc_user": {"pid": person.public_id, "role": person.role.value, "iat": now, "seen": now, "via": "oidc"}}
    ).split("=", 1)
    context.add_cookies([{"name": name, "value": value, "url": server.url}])
    return context


@pytest.mark.parametrize("locale", ["de-DE", "en-GB"])
@pytest.mark.parametrize(("size", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_practice_pages(browser, practice, locale, size, viewport):
    server, people, planned = practice
    context = signed_in(browser, server, people.doc, locale, viewport)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    lang = locale[:2]
    appointment = planned.appointment.public_id
    for name, path in [
        ("dashboard", "/vc/practice/"),
        ("appointments", "/vc/practice/appointments"),
        ("plan", "/vc/practice/appointments/new"),
        ("appointment", f"/vc/practice/appointments/{appointment}"),
        ("call", f"/vc/practice/appointments/{appointment}/call"),
    ]:
        page.goto(server.url + path)
        assert page.get_attribute("html", "lang") == lang
        if name == "call":
            page.wait_for_selector("[data-result=camera][data-state=ok]")
        screenshot(page, f"practice-{name}-{lang}-{size}")
        for field in page.locator("input:not([type=hidden]), select, textarea").all():
            assert field.evaluate("(node) => node.labels.length > 0 || node.hasAttribute('aria-label')"), name
        # A note with markup is shown as text, never as HTML.
        if name == "appointment":
            assert page.locator("dd", has_text="Kontrolle <b>Knie</b>").count() == 1
    assert errors == []
    context.close()


def test_staff_see_the_shared_queue_and_reach_it_by_keyboard(browser, practice):
    server, people, _planned = practice
    context = signed_in(browser, server, people.desk, "en-GB", DESKTOP)
    page = context.new_page()
    page.goto(server.url + "/vc/practice/")
    heading = page.get_by_role("heading", name="Waiting room of the organisation")
    heading.wait_for()
    # Keyboard only: the controls are reachable with Tab.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "vc-skip"
    screenshot(page, "practice-dashboard-staff-en-desktop")
    context.close()
