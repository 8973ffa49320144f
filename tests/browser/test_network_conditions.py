"""Networks that are not simply up or down: a lossy link, and a firewall between the two sides.

The two browsers sit in network namespaces with a routed, direct path (tests/support/netns.py).
nftables rules inside the namespaces really drop packets: a share of them at random (a weak
mobile connection), or everything forwarded between the two sides (a firewall that blocks the
direct path while the server stays reachable).

- A weak connection lowers the picture by itself and offers sound only; the person decides,
  and sound only really stops the pictures both ways while the sound goes on.
- Without a relay server there is no question with "No" as its only answer: the page says plainly
  that no direct connection is possible and what to try; and once the path is open, that notice
  goes away by itself.
- With a relay, the question comes while signalling works; the dialog closes itself when the
  direct connection recovers, and a "no" does not leave its alert behind.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.support.axe import serious_findings
from tests.support.outage_call import OutageCall, OutageWorld, outage_world

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FRAMES = """() => Promise.all(window.__vcPcs.filter((pc) => pc.connectionState !== 'closed').map(async (pc) => {
  let frames = 0; let audio = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded || 0;
    if (s.type === 'inbound-rtp' && s.kind === 'audio') audio += s.packetsReceived || 0;
  });
  return { frames, audio };
})).then((all) => all.reduce((a, b) => ({ frames: a.frames + b.frames, audio: a.audio + b.audio }),
  { frames: 0, audio: 0 }))"""


def nft(world: OutageWorld, role: str, *commands: str) -> None:
    for command in commands:
        subprocess.run(world.network.run(role, ["nft", *command.split()]), check=True, capture_output=True)


@contextmanager
def lossy(world: OutageWorld, role: str, percent: int) -> Iterator[None]:
    """Drop ``percent`` of the UDP packets (media) into and out of ``role``'s namespace."""
    nft(
        world,
        role,
        "add table inet vcloss",
        "add chain inet vcloss out { type filter hook output priority 0 ; }",
        "add chain inet vcloss in { type filter hook input priority 0 ; }",
        f"add rule inet vcloss out meta l4proto udp numgen random mod 100 < {percent} drop",
        f"add rule inet vcloss in meta l4proto udp numgen random mod 100 < {percent} drop",
    )
    try:
        yield
    finally:
        nft(world, role, "delete table inet vcloss")


def block_direct_path(world: OutageWorld) -> None:
    """A firewall between the two sides: the server forwards nothing, but both still reach it."""
    nft(
        world,
        "server",
        "add table inet vcwall",
        "add chain inet vcwall forward { type filter hook forward priority 0 ; policy drop ; }",
    )


def open_direct_path(world: OutageWorld) -> None:
    nft(world, "server", "delete table inet vcwall")


def counters(page: Any) -> dict[str, int]:
    return page.evaluate(FRAMES)


def advancing(page: Any, kind: str, by: int, timeout: float = 15000) -> None:
    start = counters(page)[kind]
    page.wait_for_function(f"async (start) => (await ({FRAMES})()).{kind} > start + {by}", arg=start, timeout=timeout)


def standing_still(page: Any, kind: str, seconds: float = 3) -> None:
    """Nothing of ``kind`` arrives for ``seconds`` (after a moment for what was under way)."""
    page.wait_for_timeout(1000)
    start = counters(page)[kind]
    page.wait_for_timeout(seconds * 1000)
    assert counters(page)[kind] - start <= 2, f"{kind} still arriving"


@pytest.fixture(scope="module")
def no_relay(playwright_instance, tmp_path_factory) -> Iterator[OutageWorld]:
    with outage_world(playwright_instance, tmp_path_factory.mktemp("weak"), relay=False) as world:
        yield world


@pytest.fixture(scope="module")
def with_relay(playwright_instance, tmp_path_factory) -> Iterator[OutageWorld]:
    with outage_world(playwright_instance, tmp_path_factory.mktemp("walled"), relay=True) as world:
        yield world


@pytest.fixture
def weak_call(no_relay: OutageWorld) -> Iterator[OutageCall]:
    call = no_relay.call()
    yield call
    call.close()


def test_a_weak_connection_lowers_the_picture_and_offers_sound_only(no_relay, weak_call):
    patient, doctor = weak_call.pages["patient"], weak_call.pages["doctor"]
    assert patient.is_hidden("[data-weak]")
    with lossy(no_relay, "patient", 25):
        patient.wait_for_selector("[data-weak]:not([hidden])", timeout=30000)
        assert patient.get_attribute("[data-connection]", "data-quality") == "poor"
        loss = float(patient.get_attribute("[data-connection]", "data-loss"))
        assert loss > 8, loss  # over the last seconds: the loss of now, not since the call began
        assert "sound only" in patient.inner_text("[data-weak]")
        assert not serious_findings(patient, "weak connection notice")  # axe (WCAG 2.1 AA)
        # Lowered by itself: half the resolution, capped bit rate, on what the patient sends.
        scaled = patient.evaluate("""() => window.__vcPcs.filter((pc) => pc.connectionState !== 'closed')
          .flatMap((pc) => pc.getSenders()).filter((s) => s.track && s.track.kind === 'video')
          .map((s) => s.getParameters().encodings[0].scaleResolutionDownBy)""")
        assert scaled == [2], scaled
        patient.click("[data-sound-only]")
        patient.wait_for_selector("[data-audio-only]:not([hidden])")
        assert not serious_findings(patient, "sound only notice")
        doctor.wait_for_selector("[data-peer] [data-camera-off-badge]:not([hidden])", timeout=10000)
        assert doctor.inner_text("[data-peer] [data-camera-off-badge]") == "sound only"
    # Sound only holds after the network is good again, until the person decides otherwise.
    standing_still(doctor, "frames")
    standing_still(patient, "frames")  # the practitioner stopped sending pictures to the patient too
    advancing(doctor, "audio", 50)
    advancing(patient, "audio", 50)
    assert patient.is_hidden("[data-weak]")

    patient.click("[data-picture-back]")
    advancing(doctor, "frames", 20)
    advancing(patient, "frames", 20)
    doctor.wait_for_selector("[data-peer] [data-camera-off-badge][hidden]", state="attached")
    patient.wait_for_selector("[data-connection][data-quality=good]", timeout=20000)


def test_the_quality_line_says_when_nothing_arrives_and_forgets_the_outage_afterwards(no_relay, weak_call):
    """During an outage no "Direct · 1 ms · 0 % loss"; afterwards the loss of now, not since the start."""
    patient, doctor = weak_call.pages["patient"], weak_call.pages["doctor"]
    doctor.wait_for_selector("[data-connection][data-quality=good]", timeout=15000)
    with no_relay.network.outage("patient", 10):
        doctor.wait_for_selector("[data-connection][data-quality=lost]", timeout=5000)
        assert doctor.inner_text("[data-connection]") == "Connection interrupted …"
        doctor.wait_for_selector("[data-peer][data-frozen=true]", timeout=5000)  # the still picture says so
    for page in (patient, doctor):
        page.wait_for_selector("[data-connection][data-quality=good]", timeout=20000)
        # A tile that never stood still has no mark at all: "not frozen" is the claim, and moving frames.
        page.wait_for_selector("[data-peer]:not([data-frozen=true])", state="attached", timeout=20000)
        advancing(page, "frames", 10, timeout=20000)
    # Ten seconds of nothing are about a third of this call so far: counted since the start of the
    # call, the loss would still be far above 5 % now.
    doctor.wait_for_function(
        "() => Number(document.querySelector('[data-connection]').dataset.loss) < 5", timeout=15000
    )


def test_without_a_relay_the_page_says_plainly_that_no_direct_path_exists(no_relay):
    block_direct_path(no_relay)
    try:
        call = no_relay.call(established=False)
        patient, doctor = call.pages["patient"], call.pages["doctor"]
        for page in (patient, doctor):
            page.wait_for_selector("[data-no-direct]:not([hidden])", timeout=45000)
            assert not page.evaluate("() => document.querySelector('[data-relay-dialog]').open")
        assert "no relay server" in patient.inner_text("[data-no-direct]")
        assert "mobile data" in patient.inner_text("[data-no-direct]")
    finally:
        open_direct_path(no_relay)
    # The firewall is gone: the call connects by itself, and the notice with it.
    for page in (patient, doctor):
        page.wait_for_selector("[data-no-direct][hidden]", state="attached", timeout=30000)
    advancing(doctor, "frames", 20)
    advancing(patient, "frames", 20)
    call.close()


@pytest.mark.parametrize("answer", ["none", "no"])
def test_the_relay_question_leaves_when_the_direct_path_comes_back(with_relay, answer):
    block_direct_path(with_relay)
    try:
        call = with_relay.call(established=False)
        patient, doctor = call.pages["patient"], call.pages["doctor"]
        for page in (patient, doctor):
            page.wait_for_selector("[data-relay-dialog][open]", timeout=45000)
        if answer == "no":
            patient.get_by_role("button", name="No", exact=True).click()
            patient.wait_for_selector("[data-relay-declined]:not([hidden])")
    finally:
        open_direct_path(with_relay)
    for page in (patient, doctor):
        page.wait_for_function("() => !document.querySelector('[data-relay-dialog]').open", timeout=30000)
    patient.wait_for_selector("[data-relay-declined][hidden]", state="attached", timeout=30000)
    advancing(doctor, "frames", 20)
    advancing(patient, "frames", 20)
    # Direct, not through the relay nobody agreed to.
    patient.wait_for_selector("[data-connection][data-path=direct]", timeout=10000)
    call.close()
