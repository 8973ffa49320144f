"""The waiting room and signalling with real servers and aiortc peers, on one process and on two."""

from __future__ import annotations

import asyncio

import pytest
from redis import Redis

from tests.support.hosts import make_host_app
from tests.support.live import running
from tests.support.people import make_people
from tests.support.planning import plan_soon
from tests.support.signal_client import Peer, SignalClient, check_in, practitioner_cookie
from vc_plugin.core.models import Appointment, AppointmentState

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def servers(postgres_schema, redis_address, tmp_path_factory, transport):
    """Two app processes on one Redis and one PostgreSQL, for all tests of the module."""
    config = {"VC_REDIS_URL": redis_address}
    with running(
        postgres_schema, config, tmp_path_factory.mktemp("signaling"), transport=transport, names=("first", "second")
    ) as pair:
        yield pair


@pytest.fixture
def world(servers, pg_url, redis_url):
    """The two processes, and a host app in the test for planning."""
    first, second = servers
    host = make_host_app(pg_url, VC_REDIS_URL=redis_url, VC_PUBLIC_URL=first.url + "/")
    with host.app.app_context():
        people = make_people(host.state)
        yield host, people, first, second
    host.close()


async def call(host, people, patient_server, practitioner_server, redis_url):
    planned = plan_soon(host, people)
    appointment = planned.appointment.public_id
    issued = planned.invitations[0]
    cookie = check_in(patient_server.url, issued.invitation.public_id, issued.code, name="Frau Müller")

    dashboard = await SignalClient.open(practitioner_server.ws_url, "/vc/ws/practice", practitioner_cookie(people.doc))
    queue = await dashboard.hello()
    assert queue["type"] == "queue" and queue["rooms"] == []

    patient = await SignalClient.open(patient_server.ws_url, f"/vc/ws/room/{appointment}", cookie)
    welcome = await patient.hello()
    assert welcome["type"] == "welcome" and welcome["state"] == "waiting" and welcome["position"] == 1
    assert welcome["you"]["name"] == "Frau Müller" and welcome["iceServers"] == []
    assert welcome["appointment"]["practitioner_name"] == "Dr. Maria Berg"

    arrived = await dashboard.receive("queue-update")
    assert arrived["op"] == "arrived" and arrived["member"]["name"] == "Frau Müller"
    patient_id = arrived["member"]["id"]

    await dashboard.send({"type": "notice", "appointment": appointment, "text": "Ich komme 5 Minuten später."})
    assert (await patient.receive("notice"))["text"] == "Ich komme 5 Minuten später."

    doctor = await SignalClient.open(
        practitioner_server.ws_url, f"/vc/ws/room/{appointment}", practitioner_cookie(people.doc)
    )
    doctor_welcome = await doctor.hello()
    assert doctor_welcome["state"] == "admitted" and doctor_welcome["peers"] == []
    doctor_id = doctor_welcome["you"]["id"]

    await dashboard.send({"type": "admit", "appointment": appointment, "participant": patient_id})
    admitted = await patient.receive("admitted")
    assert [p["id"] for p in admitted["peers"]] == [doctor_id]
    assert (await doctor.receive("peer-joined"))["peer"]["id"] == patient_id

    patient_peer, doctor_peer = Peer(patient), Peer(doctor)
    try:
        await asyncio.gather(patient_peer.call(doctor_id), doctor_peer.answer_call())
        await asyncio.gather(patient_peer.wait_open(), doctor_peer.wait_open())
        patient_peer.channel.send("Guten Tag")
        assert await asyncio.wait_for(doctor_peer.received.get(), 10) == "Guten Tag"
        doctor_peer.channel.send("Hallo")
        assert await asyncio.wait_for(patient_peer.received.get(), 10) == "Hallo"
        assert patient_peer.path() == "direct"
    finally:
        await patient_peer.close()
        await doctor_peer.close()

    await dashboard.send({"type": "end", "appointment": appointment})
    await patient.receive("ended")
    await doctor.receive("ended")
    for client in (patient, doctor, dashboard):
        await client.close()
    redis = Redis.from_url(redis_url)
    await asyncio.sleep(0.5)
    assert list(redis.scan_iter("vc:room:*")) == [], "presence must be gone when the session ends"
    assert "Müller" not in repr([redis.dump(k) for k in redis.scan_iter("*")])
    host.state.db.session.expire_all()
    assert host.state.db.session.get(Appointment, planned.appointment.id).state is AppointmentState.ENDED


def test_call_on_one_process(world, redis_url):
    host, people, first, _ = world
    asyncio.run(call(host, people, first, first, redis_url))
    if first.signalling == "asyncio":  # the operator is told the port, and no address
        assert f"Signalling server listening on port {first.signalling_port}\n" in first.output


def test_call_across_two_processes(world, redis_url):
    host, people, first, second = world
    asyncio.run(call(host, people, first, second, redis_url))


def test_resume_puts_the_patient_back_in_the_same_place(world):
    host, people, first, second = world

    async def scenario():
        planned = plan_soon(host, people, kind="group", participants=2)
        appointment = planned.appointment.public_id
        cookies = [
            check_in(first.url, i.invitation.public_id, i.code, name=n)
            for i, n in zip(planned.invitations, ("Erste", "Zweite"), strict=True)
        ]
        one = await SignalClient.open(first.ws_url, f"/vc/ws/room/{appointment}", cookies[0])
        welcome = await one.hello()
        two = await SignalClient.open(first.ws_url, f"/vc/ws/room/{appointment}", cookies[1])
        assert (await two.hello())["position"] == 2
        await one.close()  # the network drops
        back = await SignalClient.open(second.ws_url, f"/vc/ws/room/{appointment}", cookies[0])
        again = await back.hello(resume=welcome["resume"])
        assert again["position"] == 1 and again["you"]["id"] == welcome["you"]["id"]
        # The socket is lost again before its welcome arrived: the token before the newest still works.
        await back.close()
        lost = await SignalClient.open(first.ws_url, f"/vc/ws/room/{appointment}", cookies[0])
        assert (await lost.hello(resume=welcome["resume"]))["position"] == 1
        await lost.close()
        # Two generations back it does not: a newcomer, at the end of the queue.
        back = await SignalClient.open(first.ws_url, f"/vc/ws/room/{appointment}", cookies[0])
        assert (await back.hello(resume=welcome["resume"]))["position"] == 2
        # A reloaded dashboard sees the same queue, in the same order.
        dashboard = await SignalClient.open(second.ws_url, "/vc/ws/practice", practitioner_cookie(people.doc))
        queue = await dashboard.hello()
        [room] = queue["rooms"]
        assert [m["name"] for m in room["members"]] == ["Zweite", "Erste"]
        for client in (back, two, dashboard):
            await client.close()

    asyncio.run(scenario())


def test_a_closed_socket_shows_offline_at_once_and_a_return_clears_it(world):
    """Presence tells the truth: offline on every dashboard when the socket closes (not after a
    timeout), also for a dashboard opened later; back online with the resume; and the late close
    of a socket that a newer one replaced does not mark the person offline again."""
    host, people, first, second = world

    async def scenario():
        planned = plan_soon(host, people)
        appointment = planned.appointment.public_id
        issued = planned.invitations[0]
        cookie = check_in(first.url, issued.invitation.public_id, issued.code, name="Frau Offline")
        dashboard = await SignalClient.open(second.ws_url, "/vc/ws/practice", practitioner_cookie(people.doc))
        await dashboard.hello()
        patient = await SignalClient.open(first.ws_url, f"/vc/ws/room/{appointment}", cookie)
        welcome = await patient.hello()
        arrived = await dashboard.receive("queue-update")
        assert arrived["op"] == "arrived" and arrived["member"]["offline"] is False

        await patient.close()  # the tab is closed
        offline = await dashboard.receive("queue-update", timeout=2)
        assert offline["op"] == "offline" and offline["member_id"] == welcome["you"]["id"]
        later = await SignalClient.open(first.ws_url, "/vc/ws/practice", practitioner_cookie(people.doc))
        [room] = (await later.hello())["rooms"]
        assert [(m["name"], m["offline"]) for m in room["members"]] == [("Frau Offline", True)]

        # Back on another process with the resume token: online again, same place.
        old = await SignalClient.open(first.ws_url, f"/vc/ws/room/{appointment}", cookie)
        again = await old.hello(resume=welcome["resume"])
        back = await dashboard.receive("queue-update")
        assert back["op"] == "arrived" and back["member"]["offline"] is False
        newer = await SignalClient.open(second.ws_url, f"/vc/ws/room/{appointment}", cookie)
        await newer.hello(resume=again["resume"])
        assert (await old.receive("error"))["code"] == "replaced"
        await old.close()
        # The newer socket hears "replaced" on the member's channel too, and knows it is not meant:
        # it is still open for what comes on that channel after it ("admitted").
        await dashboard.send({"type": "admit", "appointment": appointment, "participant": welcome["you"]["id"]})
        assert (await newer.receive("admitted"))["type"] == "admitted"
        assert [m for m in newer.inbox if m["type"] == "error"] == []
        fresh = await SignalClient.open(second.ws_url, "/vc/ws/practice", practitioner_cookie(people.doc))
        [room] = (await fresh.hello())["rooms"]
        assert [m["offline"] for m in room["members"]] == [False], "a replaced socket's close is no news"
        for client in (newer, dashboard, later, fresh):
            await client.close()

    asyncio.run(scenario())


def test_group_mesh_and_staff_queue(world):
    host, people, first, second = world

    async def scenario():
        planned = plan_soon(host, people, kind="group", participants=2)
        appointment = planned.appointment.public_id
        cookies = [
            check_in(first.url, i.invitation.public_id, i.code, name=f"Gast {n}")
            for n, i in enumerate(planned.invitations)
        ]
        staff = await SignalClient.open(second.ws_url, "/vc/ws/practice", practitioner_cookie(people.desk))
        assert (await staff.hello())["type"] == "queue"
        guests = []
        for cookie in cookies:
            guest = await SignalClient.open(first.ws_url, f"/vc/ws/room/{appointment}", cookie)
            await guest.hello()
            guests.append(guest)
        seen = []
        while len(seen) < len(guests):  # arrivals; other news of the room (none expected) is not what this asks
            update = await staff.receive("queue-update")
            if update["op"] == "arrived":
                seen.append(update)
        assert {u["member"]["name"] for u in seen} == {"Gast 0", "Gast 1"}
        ids = [u["member"]["id"] for u in seen]
        # Staff may not admit (they never hold the call) …
        await staff.send({"type": "admit", "appointment": appointment, "participant": ids[0]})
        assert (await staff.receive("error"))["code"] == "not_allowed"
        # … but the practitioner admits both; the second newcomer learns of the first.
        dashboard = await SignalClient.open(first.ws_url, "/vc/ws/practice", practitioner_cookie(people.doc))
        await dashboard.hello()
        by_name = {u["member"]["name"]: u["member"]["id"] for u in seen}
        await dashboard.send({"type": "admit", "appointment": appointment, "participant": by_name["Gast 0"]})
        await guests[0].receive("admitted")
        await dashboard.send({"type": "admit", "appointment": appointment, "participant": by_name["Gast 1"]})
        second_admitted = await guests[1].receive("admitted")
        assert [p["name"] for p in second_admitted["peers"]] == ["Gast 0"]
        joined = await guests[0].receive("peer-joined")
        assert joined["peer"]["name"] == "Gast 1"
        a, b = Peer(guests[1]), Peer(guests[0])
        try:
            await asyncio.gather(a.call(by_name["Gast 0"]), b.answer_call())
            await asyncio.gather(a.wait_open(), b.wait_open())
        finally:
            await a.close()
            await b.close()
        for client in (*guests, staff, dashboard):
            await client.close()

    asyncio.run(scenario())


def test_staff_hand_a_waiting_patient_to_a_colleague(world):
    host, people, first, second = world

    async def scenario():
        planned = plan_soon(host, people)
        appointment = planned.appointment.public_id
        issued = planned.invitations[0]
        cookie = check_in(first.url, issued.invitation.public_id, issued.code, name="Übergabe")
        colleague = await SignalClient.open(second.ws_url, "/vc/ws/practice", practitioner_cookie(people.colleague))
        assert (await colleague.hello())["rooms"] == []
        patient = await SignalClient.open(first.ws_url, f"/vc/ws/room/{appointment}", cookie)
        await patient.hello()
        staff = await SignalClient.open(second.ws_url, "/vc/ws/practice", practitioner_cookie(people.desk))
        await staff.hello()
        # Another organisation's practitioner is no target.
        await staff.send({"type": "handover", "appointment": appointment, "practitioner": people.south.public_id})
        assert (await staff.receive("error"))["code"] == "unknown_practitioner"
        await staff.send({"type": "handover", "appointment": appointment, "practitioner": people.colleague.public_id})
        assert (await patient.receive("handed-over"))["practitioner_name"] == "Dr. Jonas Kurz"
        update = await colleague.receive("queue-update")
        assert update["op"] == "handover" and [m["name"] for m in update["room"]["members"]] == ["Übergabe"]
        host.state.db.session.expire_all()
        assert host.state.db.session.get(Appointment, planned.appointment.id).practitioner_id == people.colleague.id
        # The former practitioner may no longer admit; the new one may.
        doctor = await SignalClient.open(first.ws_url, "/vc/ws/practice", practitioner_cookie(people.doc))
        await doctor.hello()
        patient_id = update["room"]["members"][0]["id"]
        await doctor.send({"type": "admit", "appointment": appointment, "participant": patient_id})
        assert (await doctor.receive("error"))["code"] == "not_allowed"
        await colleague.send({"type": "admit", "appointment": appointment, "participant": patient_id})
        await patient.receive("admitted")
        for client in (patient, staff, colleague, doctor):
            await client.close()

    asyncio.run(scenario())


def test_the_practitioner_sees_what_the_device_check_found(world):
    """Issue 17, item 6: the waiting person's camera and microphone result reaches every dashboard
    (on another process too), survives a reconnect that does not repeat the check, and a newer check
    replaces it."""
    host, people, first, second = world

    async def scenario():
        planned = plan_soon(host, people)
        appointment = planned.appointment.public_id
        issued = planned.invitations[0]
        cookie = check_in(first.url, issued.invitation.public_id, issued.code, name="Frau Gerät")
        dashboard = await SignalClient.open(second.ws_url, "/vc/ws/practice", practitioner_cookie(people.doc))
        await dashboard.hello()
        patient = await SignalClient.open(first.ws_url, f"/vc/ws/room/{appointment}", cookie)
        welcome = await patient.hello(devices={"camera": True, "microphone": False})
        arrived = (await dashboard.receive("queue-update"))["member"]
        assert (arrived["camera"], arrived["microphone"]) == (True, False)

        await patient.close()
        await dashboard.receive("queue-update")  # offline
        back = await SignalClient.open(second.ws_url, f"/vc/ws/room/{appointment}", cookie)
        again = await back.hello(resume=welcome["resume"])  # a reload: no new check
        member = (await dashboard.receive("queue-update"))["member"]
        assert (member["camera"], member["microphone"]) == (True, False), "kept, not forgotten or made up"
        await back.close()
        await dashboard.receive("queue-update")
        fixed = await SignalClient.open(first.ws_url, f"/vc/ws/room/{appointment}", cookie)
        await fixed.hello(resume=again["resume"], devices={"camera": True, "microphone": True})
        member = (await dashboard.receive("queue-update"))["member"]
        assert (member["camera"], member["microphone"]) == (True, True)
        later = await SignalClient.open(first.ws_url, "/vc/ws/practice", practitioner_cookie(people.doc))
        [room] = (await later.hello())["rooms"]
        assert [(m["camera"], m["microphone"]) for m in room["members"]] == [(True, True)]
        for client in (fixed, dashboard, later):
            await client.close()

    asyncio.run(scenario())
