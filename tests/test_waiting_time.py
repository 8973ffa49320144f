"""Waiting-time information (issue 17): an honest estimate for the waiting person, and the
practitioner's one-click "running late" that every one of their waiting rooms hears at once.

The estimate itself is plain arithmetic (tested with fixed numbers); presence keeps the announced
delay with an expiry by the app's clock; real servers on both signalling transports carry it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from redis import Redis

from tests.support.hosts import make_host_app
from tests.support.live import running
from tests.support.people import make_people
from tests.support.planning import plan_soon
from tests.support.signal_client import SignalClient, check_in, practitioner_cookie
from vc_plugin.adapters.presence import (
    STALE_AFTER,
    Ahead,
    Member,
    MemberRole,
    MemberState,
    MemoryPresence,
    RedisPresence,
    Room,
)
from vc_plugin.domain.waiting_time import estimate, expected_start

T = 1_800_000_000.0  # a fixed moment; nothing here reads the clock


def room(starts_in_minutes: int, length: int = 30, appointment: str = "a") -> Room:
    start = T + starts_in_minutes * 60
    return Room(appointment, 1, "doc", start, start + length * 60, start + 7200)


def test_the_planned_start_when_nothing_is_in_the_way():
    assert expected_start(room(10), None, 0) == T + 600
    assert estimate(room(10), None, 0, now=T).expected_in == 600


def test_earlier_consultations_with_people_come_first_and_a_delay_adds_on_top():
    mine, earlier = room(10, appointment="b"), room(-20, length=45, appointment="a")  # runs until T + 25 min
    assert expected_start(mine, earlier.ends_at, 0) == T + 25 * 60
    found = estimate(mine, earlier.ends_at, 15, now=T)
    assert (found.expected_in, found.late_minutes) == (40 * 60, 15)
    # An earlier one that ends before mine starts changes nothing.
    assert expected_start(mine, room(-30, length=20).ends_at, 0) == T + 600


def test_never_a_time_in_the_past():
    """Late arrivals and overrunning slots: the page counts from zero and then says it takes longer."""
    assert estimate(room(-40), None, 15, now=T).expected_in == 0


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_presence_keeps_the_delay_until_it_is_taken_back_or_runs_out(kind, redis_url):
    now = [T]
    if kind == "memory":
        presence = MemoryPresence(clock=lambda: now[0])
    else:
        client = Redis.from_url(redis_url)  # emptied by the fixture
        presence = RedisPresence(client, clock=lambda: now[0])
    assert presence.running_late("doc") == 0
    presence.set_running_late("doc", 15, until=T + 3600)
    assert (presence.running_late("doc"), presence.running_late("other")) == (15, 0)
    presence.set_running_late("doc", 0, until=T + 3600)
    assert presence.running_late("doc") == 0, "on time again"
    presence.set_running_late("doc", 30, until=T + 3600)
    if kind == "memory":
        now[0] = T + 3601
    else:
        # Redis counts real seconds, so the expiry is not waited for: it was set by our clock, an hour from T.
        assert 3590 <= client.ttl("vc:late:doc") <= 3601
        client.delete("vc:late:doc")  # what that expiry does
    assert presence.running_late("doc") == 0


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_presence_finds_until_when_earlier_rooms_with_people_run_in_one_question(kind, redis_url):
    """Only rooms of the same practitioner, starting earlier, with someone heard of recently count."""
    client = Redis.from_url(redis_url)  # emptied by the fixture
    presence = MemoryPresence(clock=lambda: T) if kind == "memory" else RedisPresence(client, clock=lambda: T)
    mine = room(30, appointment="mine")
    present = Member("p", MemberRole.PATIENT, "Frau Test", MemberState.WAITING, since=T)
    assert presence.ahead("doc", mine.starts_at, T) == Ahead(None, 0), "no rooms at all, not late"
    presence.set_running_late("doc", 15, until=T + 3600)
    assert presence.ahead("doc", mine.starts_at, T) == Ahead(None, 15), "the delay comes in the same question"
    assert presence.ahead("other", mine.starts_at, T).late_minutes == 0, "the practitioner's own delay only"
    rooms = {
        "busy": room(-20, length=40),  # until T + 20 min, someone waiting: counts
        "busier": room(0, length=45),  # until T + 45 min, someone waiting: counts, and ends last
        "empty": room(-10, length=90),  # nobody in it
        "silent": room(-10, length=100),  # its member was last heard of long ago
        "later": room(40, length=120),  # starts after mine
    }
    for appointment, planned in rooms.items():
        presence.open_room(replace(planned, appointment=appointment))
    presence.open_room(Room("colleague", 1, "other", T - 600, T + 1200, T + 9600))
    for appointment in ("busy", "busier", "later", "colleague"):
        presence.put(appointment, present, T)
    presence.put("silent", present, T - STALE_AFTER - 1)
    assert presence.ahead("doc", mine.starts_at, T) == Ahead(T + 45 * 60, 15)
    presence.update_room("busier", practitioner="other")  # handed over: a colleague's now
    assert presence.ahead("doc", mine.starts_at, T).busy_until == T + 20 * 60
    assert presence.ahead("other", mine.starts_at, T).busy_until == T + 45 * 60
    assert presence.ahead("doc", rooms["busy"].starts_at, T).busy_until is None, "nothing starts before the first"
    presence.close_room("busy")
    assert presence.ahead("doc", mine.starts_at, T).busy_until is None, "an ended consultation is in nobody's way"
    if kind == "redis":  # a room that expired by itself leaves no entry behind once it was asked about
        assert client.zscore("vc:starts:doc", "empty") is not None
        client.delete("vc:room:empty:meta")
        presence.ahead("doc", mine.starts_at, T)
        assert client.zscore("vc:starts:doc", "empty") is None
        assert client.zscore("vc:starts:doc", "later") is not None, "later rooms are not even read"
        assert client.ttl("vc:starts:doc") > 0


@pytest.fixture(scope="module")
def server(postgres_schema, redis_address, tmp_path_factory, transport):
    config = {"VC_REDIS_URL": redis_address}
    with running(postgres_schema, config, tmp_path_factory.mktemp("waiting-time"), transport=transport) as (live,):
        yield live


@pytest.fixture
def world(server, pg_url, redis_url):
    host = make_host_app(pg_url, VC_PUBLIC_URL=server.url + "/", VC_REDIS_URL=redis_url)
    with host.app.app_context():
        people = make_people(host.state)
        yield host, people, server
    host.close()


def plan(host, people, in_minutes: int):
    planned = plan_soon(host, people, in_minutes=in_minutes)
    issued = planned.invitations[0]
    return planned.appointment.public_id, issued.invitation.public_id, issued.code


@pytest.mark.slow
def test_running_late_reaches_every_waiting_room_and_the_dashboards(world):
    host, people, server = world
    doctor = practitioner_cookie(people.doc)

    async def scenario():
        first, second = plan(host, people, 5), plan(host, people, 20)
        dashboard = await SignalClient.open(server.ws_url, "/vc/ws/practice", doctor)
        assert (await dashboard.hello())["running_late"] == 0
        patients = []
        for appointment, invitation, code in (first, second):
            cookie = check_in(server.url, invitation, code, name="Frau Warten")
            client = await SignalClient.open(server.ws_url, f"/vc/ws/room/{appointment}", cookie)
            patients.append((client, await client.hello()))
        (early, early_welcome), (later, later_welcome) = patients
        assert 0 < early_welcome["expected_in"] <= 5 * 60 and early_welcome["late_minutes"] == 0
        # Someone waits for the earlier appointment: the later one starts no sooner than its end.
        assert later_welcome["expected_in"] > 34 * 60

        await dashboard.send({"type": "running-late", "minutes": 15})
        assert (await dashboard.receive("running-late"))["minutes"] == 15
        early_news, later_news = await early.receive("schedule"), await later.receive("schedule")
        assert early_news["late_minutes"] == later_news["late_minutes"] == 15
        assert 15 * 60 < early_news["expected_in"] <= 20 * 60
        reloaded = await SignalClient.open(server.ws_url, "/vc/ws/practice", doctor)
        assert (await reloaded.hello())["running_late"] == 15, "a new tab shows the choice"

        # Wrong senders and wrong values change nothing.
        await dashboard.send({"type": "running-late", "minutes": 500})
        assert (await dashboard.receive("error"))["code"] == "invalid"
        await early.send({"type": "running-late", "minutes": 0})
        assert (await early.receive("error"))["code"] == "not_allowed"
        desk = await SignalClient.open(server.ws_url, "/vc/ws/practice", practitioner_cookie(people.desk))
        await desk.hello()
        await desk.send({"type": "running-late", "minutes": 30})
        assert (await desk.receive("error"))["code"] == "not_allowed"
        doctor_room = await SignalClient.open(server.ws_url, f"/vc/ws/room/{first[0]}", doctor)
        await doctor_room.hello()
        await doctor_room.send({"type": "running-late", "minutes": 30})
        assert (await doctor_room.receive("error"))["code"] == "not_allowed"
        with pytest.raises(TimeoutError):
            await later.receive("schedule", timeout=1.0)

        # On time again, then the earlier consultation ends: the later patient may come sooner.
        await dashboard.send({"type": "running-late", "minutes": 0})
        assert (await later.receive("schedule"))["late_minutes"] == 0
        await dashboard.send({"type": "end", "appointment": first[0]})
        sooner = await later.receive("schedule")
        assert sooner["expected_in"] <= 20 * 60, "its own start again, no longer after the earlier one's end"
        for client in (early, later, dashboard, reloaded, desk, doctor_room):
            await client.close()

    asyncio.run(scenario())
