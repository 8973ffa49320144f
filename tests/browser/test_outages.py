"""A call survives real network outages: once a side's network is back, pictures, sound and chat
return within 5 s on both sides, and no relay dialog is left behind.

The browsers have a direct path through a routed server namespace (tests/support/netns.py);
an outage takes one side's interface really down (``ip link set … down``), as a lost Wi-Fi does,
so the browser sees its network go away and come back. See tests/support/outage_call.py for
what is measured and how; bench/outages.py runs the same with many repetitions.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.outage_call import OutageWorld, outage_world

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: The promise: the call is back this soon after the network is.
WITHIN = 5.0
#: How long to keep looking after the network is back, so that a slow recovery is reported with
#: its time rather than as a plain failure; short enough for CI.
BOUND = 15.0


@pytest.fixture(scope="module")
def world(playwright_instance, tmp_path_factory) -> Iterator[OutageWorld]:
    """One network, app server and pair of browsers for the module; each test has a call of its own."""
    with outage_world(playwright_instance, tmp_path_factory.mktemp("outages")) as world:
        yield world


@pytest.mark.parametrize(
    ("side", "seconds"),
    [("patient", 5), ("patient", 40), ("practitioner", 40)],
    ids=["patient-5s", "patient-40s", "practitioner-40s"],
)
def test_call_is_back_soon_after_the_network(world: OutageWorld, side: str, seconds: float) -> None:
    call = world.call()
    try:
        recovery = call.measure_recovery(side, seconds, bound=BOUND)
    finally:
        call.close()
    assert recovery.recovered_within(WITHIN), recovery.describe()
    assert not recovery.relay_dialog_after, recovery.describe()
    assert not recovery.notices_after, recovery.describe()
