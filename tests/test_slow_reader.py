"""A participant who stops reading is cut off; nobody else waits for them.

The server never queues without bound for one socket: once a client leaves more than 1 MiB
unread beyond what the network holds, its socket is cut off, and the sender and everyone else
carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support.hosts import make_host_app
from tests.support.live import LiveServer
from tests.support.people import make_people
from tests.support.planning import plan_soon
from tests.support.signal_client import SignalClient, check_in, practitioner_cookie

pytestmark = pytest.mark.slow

SDP = "v=0\r\n" + "a=x-filler:" + "y" * 49_000  # under the 60,000-character limit
OFFERS = 600  # 30 MB: far more than the kernel's socket buffers and the server's limit together


@pytest.fixture
def server(pg_url, redis_url, tmp_path, transport):
    config = {"VC_REDIS_URL": redis_url, "VC_WS_MESSAGES_PER_SECOND": 100_000, "VC_WS_BURST": 100_000}
    live = LiveServer(pg_url, config, tmp_path, signalling=transport).start()
    host = make_host_app(pg_url, VC_REDIS_URL=redis_url, VC_PUBLIC_URL=live.url + "/")
    with host.app.app_context():
        yield live, host, make_people(host.state)
    host.close()
    live.stop()


# The app's own transport (flask-sock) has the same limit, but under a full suite its cut-off was
# not seen within a minute in 1 run of 3 (a writer thread blocked in simple-websocket's send);
# until that is understood it is not claimed here (see the notes).
@pytest.mark.parametrize("transport", ["asyncio"])
def test_a_client_that_stops_reading_is_cut_off_and_holds_up_no_one(server):
    live, host, people = server
    planned = plan_soon(host, people)
    appointment, issued = planned.appointment.public_id, planned.invitations[0]
    cookie = check_in(live.url, issued.invitation.public_id, issued.code, name="Langsam")
    doctor_cookie = practitioner_cookie(people.doc)

    async def scenario() -> None:
        dashboard = await SignalClient.open(live.ws_url, "/vc/ws/practice", doctor_cookie)
        await dashboard.hello()
        # The patient's client reads at most 4 messages ahead and leaves the rest in the network,
        # whose buffers are made small: what a server holds for it does not depend on the machine.
        small = socket.socket()
        small.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        small.setblocking(False)
        await asyncio.get_running_loop().sock_connect(small, (live.host, live.signalling_port))
        patient = await connect(
            f"{live.ws_url}/vc/ws/room/{appointment}",
            sock=small,
            additional_headers={"Cookie": cookie},
            origin=live.ws_url.replace("ws://", "http://"),
            max_queue=4,
            max_size=2**20,
        )
        slow = SignalClient(patient)
        await slow.hello()
        patient_id = (await dashboard.receive("queue-update"))["member"]["id"]
        doctor = await SignalClient.open(live.ws_url, f"/vc/ws/room/{appointment}", doctor_cookie)
        await doctor.hello()
        await dashboard.send({"type": "admit", "appointment": appointment, "participant": patient_id})
        await doctor.receive("peer-joined")
        for _ in range(OFFERS):
            try:
                await doctor.send({"type": "offer", "to": patient_id, "sdp": SDP})
            except ConnectionClosed:
                pytest.fail("the sender was cut off instead of the slow reader")
        # The sender and the dashboard are answered at once, while the slow reader still reads nothing.
        await doctor.send({"type": "ping", "t": 1})
        assert (await doctor.receive("pong", timeout=10))["t"] == 1
        await dashboard.send({"type": "ping", "t": 2})
        assert (await dashboard.receive("pong", timeout=10))["t"] == 2
        # Now the patient reads: some offers, then the end of a socket the server gave up on.
        received = 0
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(60):
                while True:
                    if "offer" in await patient.recv():
                        received += 1
        assert 0 < received < OFFERS
        for client in (doctor, dashboard):
            with contextlib.suppress(ConnectionClosed):
                await client.close()

    asyncio.run(scenario())
    assert "Traceback" not in live.output, live.output[-3000:]
