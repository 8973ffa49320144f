"""Browser fixtures: Debian's Chromium driven by Playwright, with fake camera and microphone,
and the steps that tests share (a running practice, signing in, checking in, starting a call)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.hosts import HostApp, make_host_app
from tests.support.live import LiveServer
from tests.support.oidc import CLIENT_ID, CLIENT_SECRET, OidcProvider, client_metadata
from tests.support.people import People, make_people
from tests.support.signal_client import practitioner_cookie
from vc_plugin.core.models import AppointmentKind, Practitioner
from vc_plugin.domain.access import Principal
from vc_plugin.domain.appointments import PlannedAppointment
from vc_plugin.domain.inputs import AppointmentIn, ParticipantIn

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--auto-select-desktop-capture-source=Entire screen",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        raise RuntimeError("Debian's chromium is not installed: run scripts/test-services (apt install chromium)")
    return path


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator:
    """Per module: Playwright's sync API holds an event loop that other tests' asyncio.run() must not meet."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


def launch(playwright, *extra: str, executable: str | None = None):
    return playwright.chromium.launch(
        executable_path=executable or chromium_path(), args=[*CHROMIUM_ARGS, *extra], headless=True
    )


@pytest.fixture(scope="module")
def browser(playwright_instance) -> Iterator:
    browser = launch(playwright_instance)
    yield browser
    browser.close()


_WRITTEN: set[str] = set()


def screenshot(page, name: str) -> Path:
    """A full-page screenshot; each name once per run, so that no test overwrites another's picture."""
    assert name not in _WRITTEN, f"the screenshot {name} was already written in this run: give it its own name"
    _WRITTEN.add(name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


LOCALES = {"de": "de-DE", "en": "en-GB"}
SIZES = {"desktop": DESKTOP, "phone": PHONE}
REMOTE_VIDEO_PLAYS = """() => {
  const video = document.querySelector('video[data-remote]');
  return Boolean(video && video.videoWidth > 0 && !video.paused);
}"""
# Test-only instrumentation, installed before the page's scripts: keeps every RTCPeerConnection
# in window.__vcPcs, so that tests can read getStats() or stop a sender as a broken device would.
KEEP_PEER_CONNECTIONS = """(() => {
  const Original = window.RTCPeerConnection;
  window.__vcPcs = [];
  window.RTCPeerConnection = class extends Original {
    constructor(...args) { super(...args); window.__vcPcs.push(this); }
  };
})();"""
# Counts the frames the remote <video> has shown so far (advancing = a live picture).
REMOTE_FRAMES = """() => {
  const video = document.querySelector('video[data-remote]');
  return video ? video.getVideoPlaybackQuality().totalVideoFrames : 0;
}"""
# Compared with the phone's width, not innerWidth: a mobile browser widens its layout viewport to wide content.
PAGE_WIDTH = "() => document.scrollingElement.scrollWidth"


@dataclass
class Practice:
    """A running app (gunicorn on PostgreSQL), the same app in this process to plan with, and its people."""

    server: LiveServer
    host: HostApp
    people: People
    provider: OidcProvider | None = None

    @property
    def url(self) -> str:
        return self.server.url

    def plan(
        self,
        *,
        by: Practitioner | None = None,
        in_minutes: int = 20,
        participants: int = 1,
        kind: AppointmentKind = AppointmentKind.SINGLE,
        label: str | None = None,
    ) -> PlannedAppointment:
        start = self.host.state.clock.now() + timedelta(minutes=in_minutes)
        return self.host.state.appointments.plan(
            Principal.of(by or self.people.doc),
            AppointmentIn(
                starts_at=start,
                ends_at=start + timedelta(minutes=30),
                kind=kind,
                label=label,
                participants=[ParticipantIn() for _ in range(participants)],
            ),
        )

    def context(self, browser: Any, lang: str = "de", viewport: dict[str, int] = DESKTOP) -> Any:
        return browser.new_context(locale=LOCALES[lang], viewport=viewport, is_mobile=viewport is PHONE)

    def signed_in(self, browser: Any, person: Practitioner, lang: str = "de", viewport: dict = DESKTOP) -> Any:
        return signed_in(browser, self.server, person, LOCALES[lang], viewport)

    def waiting(self, browser: Any, planned: PlannedAppointment, *names: str, lang: str = "en") -> list[Any]:
        """One page per name, each checked in with the next invitation and waiting in the waiting room."""
        pages = []
        for issued, name in zip(planned.invitations, names, strict=True):
            page = self.context(browser, lang).new_page()
            check_in(page, issued.link, name)
            enter_waiting_room(page)
            pages.append(page)
        return pages


def signed_in(browser: Any, server: LiveServer, person: Practitioner, locale: str, viewport: dict[str, int]) -> Any:
    """A browser context with the session cookie of ``person``, as after an OIDC sign-in."""
    context = browser.new_context(locale=locale, viewport=viewport, is_mobile=viewport is PHONE)
    name, value = practitioner_cookie(person).split("=", 1)
    context.add_cookies([{"name": name, "value": value, "url": server.url}])
    return context


@contextmanager
def running_practice(database_url: str, directory: Path, *, oidc: bool = False, **config: Any) -> Iterator[Practice]:
    server = LiveServer(database_url, config, directory)
    provider = OidcProvider([client_metadata(server.url)], directory).start() if oidc else None
    if provider is not None:
        server.config.update(
            VC_OIDC_ISSUER=provider.issuer,
            VC_OIDC_CLIENT_ID=CLIENT_ID,
            VC_OIDC_CLIENT_SECRET=CLIENT_SECRET,
            VC_OIDC_ORGANISATION_CLAIM="organisation",
        )
    server.start()
    host = make_host_app(database_url, VC_PUBLIC_URL=server.url + "/")
    try:
        with host.app.app_context():
            yield Practice(server, host, make_people(host.state), provider)
    finally:
        host.close()
        server.stop()
        if provider is not None:
            provider.stop()


def watch(page: Any) -> list[str]:
    """Script errors and failed requests of ``page``, collected as they happen."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    page.on("console", lambda note: problems.append(f"{page.url}: {note.text}") if note.type == "error" else None)
    return problems


def resize(page: Any, viewport: dict[str, int]) -> None:
    """The new size, once the page has it and has drawn a frame in it: measured right after
    ``set_viewport_size`` a busy renderer may still answer with part of the old layout."""
    page.set_viewport_size(viewport)
    page.wait_for_function(
        """([width, height]) => window.innerWidth === width && window.innerHeight === height
          && new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))""",
        arg=[viewport["width"], viewport["height"]],
    )


def open_dashboard(page: Any, url: str) -> None:
    """The dashboard, once its live list has arrived (arrivals from now on are highlighted)."""
    page.goto(url + "/vc/practice/")
    page.wait_for_selector("[data-rooms]:not([aria-busy])", state="attached")


def check_in(page: Any, link: str, name: str) -> None:
    """The patient opens the link (code in the fragment), gives a name, agrees; the device check passes."""
    page.goto(link)
    page.fill("#name", name)
    page.check("input[name=consent]")
    page.click("#vc-check-in button[type=submit]")
    page.wait_for_selector("[data-result=camera][data-state=ok]")


def enter_waiting_room(page: Any) -> None:
    page.click("[data-ready]")
    page.wait_for_selector("[data-view=waiting]:not([hidden])")


def open_call(page: Any, url: str, appointment: str) -> None:
    """The practitioner opens the call page and starts the consultation (waiting people are listed)."""
    page.goto(f"{url}/vc/practice/appointments/{appointment}/call")
    page.wait_for_selector("[data-result=camera][data-state=ok]")
    page.click("[data-start]")
    page.wait_for_selector("[data-call]:not([hidden])")


def admit(doctor: Any, name: str) -> None:
    doctor.locator("[data-waiting] li", has_text=name).locator("button.vc-primary").click()


def in_call(*pages: Any, peers: int = 1) -> None:
    """Every page shows the picture of ``peers`` others, playing."""
    for page in pages:
        page.wait_for_function(
            """(count) => {
              const videos = [...document.querySelectorAll('video[data-remote]')];
              return videos.length === count && videos.every((v) => v.videoWidth > 0 && !v.paused);
            }""",
            arg=peers,
            timeout=30000,
        )
