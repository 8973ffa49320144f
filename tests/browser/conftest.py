"""Browser fixtures: Debian's Chromium driven by Playwright, with fake camera and microphone."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

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


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
