"""Socket tickets in real Chromium: every socket opens with one, a ticket the app refuses ends the
page's connection (no retrying forever), and a ticket request lost on the network is tried again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.browser.conftest import Practice, check_in, enter_waiting_room, running_practice, watch

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TICKETS = "**/vc/socket-ticket"
#: Far beyond signal.js's first waits (250 and 500 ms): a retry would have come within it.
QUIET_SECONDS = 3.0
RECONNECTING = "reconnecting"  # in what the waiting room shows meanwhile (in English)


@pytest.fixture(scope="module")
def world(postgres_schema, tmp_path_factory) -> Iterator[Practice]:
    from tests.conftest import _empty_postgres

    _empty_postgres(postgres_schema)
    with running_practice(postgres_schema, tmp_path_factory.mktemp("tickets")) as practice:
        yield practice


def _waiting_patient(browser, world: Practice, name: str):
    page = world.context(browser, "en").new_page()
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    check_in(page, world.plan().invitations[0].link, name)
    enter_waiting_room(page)
    return page, sockets


def _network_gone(page) -> None:
    """As when the device loses its network: the page gives its socket up and tries again."""
    page.evaluate("window.dispatchEvent(new Event('offline'))")


def test_a_refused_ticket_ends_the_connection_for_good(browser, world):
    page, sockets = _waiting_patient(browser, world, "Toni Ticket")
    problems = watch(page)
    assert sockets and all("?ticket=" in url for url in sockets), sockets
    asked: list[str] = []

    def refuse(route) -> None:
        asked.append(route.request.post_data or "")
        route.fulfill(status=410, content_type="application/json", body='{"error": "gone"}')

    page.route(TICKETS, refuse)
    opened = len(sockets)
    _network_gone(page)
    page.wait_for_selector("[data-view=ended]:not([hidden])")
    assert page.text_content("[data-end-title]") == "This invitation has expired"
    assert '"socket"' in asked[0] and "/vc/ws/room/" in asked[0]
    time.sleep(QUIET_SECONDS)
    assert len(asked) == 1, "a refused ticket is not asked for again"
    assert len(sockets) == opened, "no socket without a ticket"
    assert [p for p in problems if "Failed to load resource" not in p] == [], "no script error (the 410 is logged)"


def test_a_pass_gone_reloads_the_page_and_a_stale_csrf_token_asks_for_a_reload(browser, world):
    """401: the page loads again (and would then show the check-in or the sign-in); 400: it says
    so in the status line and stops, rather than reloading in a loop."""
    page, _ = _waiting_patient(browser, world, "Kai Reload")
    answers = [401]

    def refuse(route) -> None:
        route.fulfill(status=answers.pop(0) if answers else 400, content_type="application/json", body="{}")

    page.route(TICKETS, refuse)
    with page.expect_navigation():
        _network_gone(page)
    assert answers == [], "the 401 was the reason"
    page.wait_for_function(  # loaded again: its first ticket gets the 400
        "(words) => document.querySelector('[data-status]').textContent.includes(words)", arg="please reload"
    )
    assert not page.is_visible("[data-view=waiting]")


def test_a_ticket_lost_on_the_network_is_asked_for_again(browser, world):
    page, sockets = _waiting_patient(browser, world, "Robin Retry")
    lost: list[int] = []

    def lose(route) -> None:
        lost.append(1)
        route.abort("internetdisconnected")

    page.route(TICKETS, lose)
    opened = len(sockets)
    _network_gone(page)
    deadline = time.monotonic() + 20
    while len(lost) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert len(lost) >= 2, "the page tries again after a lost ticket request"
    assert len(sockets) == opened
    page.unroute(TICKETS)
    deadline = time.monotonic() + 30
    while len(sockets) == opened and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert len(sockets) > opened and "?ticket=" in sockets[-1]
    page.wait_for_function(  # back in its place: the waiting room says where, not "reconnecting"
        "(word) => !document.querySelector('[data-position]').textContent.includes(word)", arg=RECONNECTING
    )
    assert page.is_visible("[data-view=waiting]")
