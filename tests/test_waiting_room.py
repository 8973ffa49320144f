"""The waiting room's remaining commands with a real server: decline (for good), leave, a full
room; presence expiring in Redis; and the in-process presence store on its own."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from redis import Redis

from tests.support.hosts import make_host_app
from tests.support.live import running
from tests.support.people import make_people
from tests.support.planning import Issued, plan_group, plan_soon
from tests.support.signal_client import SignalClient, check_in, practitioner_cookie
from vc_plugin.adapters.bus import LocalBus, RedisBus
from vc_plugin.adapters.presence import (
    STALE_AFTER,
    Ahead,
    AheadOf,
    Arriving,
    CheckInRecord,
    Entered,
    Member,
    MemberRole,
    MemberState,
    MemoryPresence,
    RedisPresence,
    Room,
    index_of_practitioner,
)
from vc_plugin.adapters.tombstones import MemoryTombstones
from vc_plugin.domain.access import Principal
from vc_plugin.domain.entrance import Entrance, Joined, JoinRequest
from vc_plugin.domain.revocation import Claim, Reason, appointment_scope, invitation_scope
from vc_plugin.domain.topics import dashboard_topics
from vc_plugin.domain.waiting_time import estimate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(postgres_schema, redis_address, tmp_path_factory, transport):
    config = {"VC_REDIS_URL": redis_address, "VC_MAX_PARTICIPANTS": 3}
    with running(postgres_schema, config, tmp_path_factory.mktemp("waiting-room"), transport=transport) as (live,):
        yield live


@pytest.fixture
def world(server, pg_url, redis_url):
    host = make_host_app(pg_url, VC_PUBLIC_URL=server.url + "/", VC_REDIS_URL=redis_url, VC_MAX_PARTICIPANTS=3)
    with host.app.app_context():
        people = make_people(host.state)
        doctor = practitioner_cookie(people.doc)
        yield host, people, server, doctor
    host.close()


async def patient_arrives(server, appointment, issued: Issued, dashboard, name):
    cookie = check_in(server.url, issued.invitation, issued.code, name=name)
    client = await SignalClient.open(server.ws_url, f"/vc/ws/room/{appointment}", cookie)
    await client.hello()
    while True:  # other news (the practitioner joining, admissions) may come first
        update = await dashboard.receive("queue-update")
        if update["op"] == "arrived" and update["member"]["name"] == name:
            return client, cookie, update["member"]["id"]


def test_a_declined_patient_is_sent_away_for_this_check_in(world):
    host, people, server, doctor = world
    appointment, [issued] = plan_group(host, people, 1)

    async def scenario() -> None:
        dashboard = await SignalClient.open(server.ws_url, "/vc/ws/practice", doctor)
        await dashboard.hello()
        patient, cookie, member = await patient_arrives(server, appointment, issued, dashboard, "Herr Weg")
        await dashboard.send({"type": "decline", "appointment": appointment, "participant": member})
        assert (await patient.receive("declined"))["type"] == "declined"
        left = await dashboard.receive("queue-update")
        assert left == {"type": "queue-update", "op": "left", "appointment": appointment, "member_id": member}
        # The same check-in (a reload, a reconnect) is turned away at once, and the queue hears nothing.
        again = await SignalClient.open(server.ws_url, f"/vc/ws/room/{appointment}", cookie)
        await again.send({"type": "hello"})
        assert (await again.receive())["type"] == "declined"
        with pytest.raises(TimeoutError):
            await dashboard.receive("queue-update", timeout=1.0)
        # A new check-in with the code may wait again (the practice decides once more).
        fresh, _, other = await patient_arrives(server, appointment, issued, dashboard, "Herr Weg")
        assert other != member
        await dashboard.send({"type": "decline", "appointment": appointment, "participant": "nobody"})
        assert (await dashboard.receive("error"))["code"] == "unknown_participant"
        for client in (fresh, again, patient, dashboard):
            await client.close()

    asyncio.run(scenario())


def test_leave_and_a_full_room(world):
    host, people, server, doctor = world
    # Planned for three patients before the operator lowered VC_MAX_PARTICIPANTS to three people.
    book = host.state.appointments
    book._settings = book._settings.model_copy(update={"max_participants": 4})
    appointment, invitations = plan_group(host, people, 3)
    redis = Redis.from_url(host.state.settings.redis_url)

    async def scenario() -> None:
        dashboard = await SignalClient.open(server.ws_url, "/vc/ws/practice", doctor)
        await dashboard.hello()
        leaver, _, leaver_id = await patient_arrives(server, appointment, invitations[0], dashboard, "Person 0")
        stayer, _, stayer_id = await patient_arrives(server, appointment, invitations[1], dashboard, "Person 1")
        # Presence lives in Redis with an expiry no later than the planned end plus the grace period.
        ends_at = host.state.appointments.get(Principal.of(people.doc), appointment).ends_at.timestamp()
        keys = [k.decode() for k in redis.scan_iter(match=f"vc:room:{appointment}:*")]
        assert sorted(k.rsplit(":", 1)[1] for k in keys) == ["members", "meta", "seen"]
        for key in keys:
            left_seconds = redis.ttl(key)
            assert 0 < left_seconds <= ends_at + 60 * 60 - time.time() + 2, (key, left_seconds)

        await leaver.send({"type": "leave"})
        assert (await leaver.receive("left"))["type"] == "left"
        gone = await dashboard.receive("queue-update")
        assert gone["op"] == "left" and gone["member_id"] == leaver_id
        assert redis.hget(f"vc:room:{appointment}:members", leaver_id) is None

        room = await SignalClient.open(server.ws_url, f"/vc/ws/room/{appointment}", doctor)
        await room.hello()
        await dashboard.send({"type": "admit", "appointment": appointment, "participant": stayer_id})
        await stayer.receive("admitted")
        again, _, again_id = await patient_arrives(server, appointment, invitations[0], dashboard, "Person 2")
        await dashboard.send({"type": "admit", "appointment": appointment, "participant": again_id})
        await again.receive("admitted")
        extra, _, extra_id = await patient_arrives(server, appointment, invitations[2], dashboard, "Person 3")
        await dashboard.send({"type": "admit", "appointment": appointment, "participant": extra_id})
        assert (await dashboard.receive("error"))["code"] == "room_full"
        for client in (extra, again, room, stayer, leaver, dashboard):
            await client.close()

    try:
        asyncio.run(scenario())
    finally:
        redis.close()


# --- the embedded presence store --------------------------------------------------------------------


class Ticker:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_memory_presence_keeps_order_expires_rooms_and_forgets_the_silent():
    clock = Ticker()
    store = MemoryPresence(clock=clock)
    t0 = clock.now
    store.open_room(Room("a1", 7, "doc", t0, t0 + 1800, t0 + 5400))
    store.put("a1", Member("p1", "patient", "Frau Eins", "waiting", t0), t0)
    store.put("a1", Member("p2", "patient", "Herr Zwei", "waiting", t0 + 1), t0 + 1)
    assert [m.id for m in sorted(store.members("a1", t0 + 2), key=lambda m: m.since)] == ["p1", "p2"]
    assert store.rooms_of(index_of_practitioner("doc")) == ["a1"]
    assert store.update("a1", "p2", state="admitted").state == "admitted"
    store.update_room("a1", notice="10 Minuten später", declined=("p9",))
    store.open_room(Room("a1", 7, "doc", t0, t0 + 1800, t0 + 5400))
    reopened = store.room("a1")
    assert reopened.notice == "10 Minuten später" and reopened.declined == ("p9",), "reopening keeps both"

    # A member not heard of for STALE_AFTER no longer counts; much later the purge forgets it.
    store.touch("a1", "p2", t0 + STALE_AFTER)
    assert [m.id for m in store.members("a1", t0 + STALE_AFTER + 1)] == ["p2"]
    assert store.purge_stale(t0 + 5 * STALE_AFTER) == 1, "p2 was heard of later"
    assert store.purge_stale(t0 + 6 * STALE_AFTER) == 1
    assert store.get("a1", "p1") is None and store.get("a1", "p2") is None

    # The room itself expires at the planned end plus grace, with its index entries.
    clock.now = t0 + 5400
    assert store.room("a1") is None and store.rooms_of(index_of_practitioner("doc")) == []
    assert store.remove("a1", "p1") is None


@contextlib.contextmanager
def round_trips(redis: Redis) -> Iterator[list[object]]:
    """The connections the client takes from its pool meanwhile: one per command, pipeline or script."""
    asked: list[object] = []
    real = redis.connection_pool.get_connection

    def counting(*args: object, **kwargs: object) -> object:
        asked.append(args)
        return real(*args, **kwargs)

    redis.connection_pool.get_connection = counting  # type: ignore[method-assign]
    try:
        yield asked
    finally:
        redis.connection_pool.get_connection = real  # type: ignore[method-assign]


def store_of(kind: str, redis_url: str) -> tuple[MemoryPresence | RedisPresence, Ticker, Redis]:
    """A presence store of that kind on an empty Redis (the fixture's), and its clock: Redis's own
    time, since Redis expires keys by its own clock."""
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    clock = Ticker()
    if kind == "memory":
        return MemoryPresence(clock=clock), clock, redis
    clock.now = float(redis.time()[0])
    return RedisPresence(redis, clock=clock), clock, redis


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_one_touch_for_many_members_keeps_them_and_creates_nothing_for_closed_rooms(kind, redis_url):
    """The signalling server's sweep: one call for every member of the process."""
    store, clock, redis = store_of(kind, redis_url)
    t0 = clock.now
    store.open_room(Room("a1", 7, "doc", t0, t0 + 1800, t0 + 5400))
    store.put("a1", Member("p1", "patient", "Frau Eins", "waiting", t0), t0)
    store.put("a1", Member("p2", "patient", "Herr Zwei", "waiting", t0), t0)
    store.touch_many([("a1", "p1"), ("gone", "p9"), ("a1", "nobody")], t0 + STALE_AFTER)
    assert [m.id for m in store.members("a1", t0 + STALE_AFTER + 1)] == ["p1"], "p2 was not heard of"
    assert store.get("a1", "nobody") is None and store.room("gone") is None
    if kind == "redis":
        assert sorted(k.decode() for k in redis.scan_iter("vc:room:*")) == [
            "vc:room:a1:members",
            "vc:room:a1:meta",
            "vc:room:a1:seen",
        ]
        assert redis.hget("vc:room:a1:seen", "nobody") is None
        redis.flushdb()


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_room_is_opened_once_and_a_reopening_keeps_what_happened_in_it(kind, redis_url):
    """The handshake's ``room_or_open``: the stored room if there is one (one Redis question), else
    the given one, opened with its expiry and index entries; ``open_room`` overwrites the planned
    part but keeps the notice and who was sent away."""
    store, clock, redis = store_of(kind, redis_url)
    t0 = clock.now
    planned = Room("a1", 7, "doc", t0, t0 + 1800, t0 + 5400, practitioner_name="Dr. A")
    assert store.room_or_open(planned) == planned and store.room("a1") == planned
    assert store.rooms_of(index_of_practitioner("doc")) == ["a1"]
    store.update_room("a1", notice="10 Minuten später", declined=("p9",))
    later = replace(planned, practitioner_name="Dr. B", relay_only=True)
    stored = store.room_or_open(later)
    assert stored == replace(planned, notice="10 Minuten später", declined=("p9",)), "an open room is not rewritten"
    store.open_room(later)
    assert store.room("a1") == replace(later, notice="10 Minuten später", declined=("p9",))
    if kind == "redis":
        at = int(planned.expires_at) + 1
        for key in ("vc:room:a1:meta", "vc:index:" + index_of_practitioner("doc"), "vc:starts:doc"):
            assert redis.expiretime(key) == at, key
        assert redis.zscore("vc:starts:doc", "a1") == t0
    store.close_room("a1")
    assert store.room("a1") is None
    assert store.room_or_open(later) == later and store.room("a1") == later, "a closed room opens afresh"


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_entering_tells_who_is_present_in_the_same_step_and_never_reopens_a_room(kind, redis_url):
    store, clock, redis = store_of(kind, redis_url)
    t0 = clock.now
    store.open_room(Room("a1", 7, "doc", t0, t0 + 1800, t0 + 5400))
    store.put("a1", Member("silent", "patient", "Herr Still", "waiting", t0 - STALE_AFTER), t0 - STALE_AFTER)
    store.put("a1", Member("p1", "patient", "Frau Eins", "waiting", t0), t0)
    present = store.enter("a1", Member("p2", "patient", "Herr Zwei", "waiting", t0 + 1), t0 + 1).present
    assert sorted(m.id for m in present) == ["p1", "p2"], "the silent member is not counted"
    assert present == store.members("a1", t0 + 1)
    store.close_room("a1")
    assert store.enter("a1", Member("p3", "patient", "Frau Drei", "waiting", t0 + 2), t0 + 2) == Entered([])
    assert store.room("a1") is None and store.get("a1", "p3") is None
    if kind == "redis":
        assert list(redis.scan_iter("vc:room:a1:*")) == [], "no key for a closed room"


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_an_arrival_hears_of_a_revocation_in_its_own_step_and_does_not_enter(kind, redis_url):
    """Presence reads the tombstones the bus writes: ``arriving`` says a claim was revoked (on Redis
    without a round trip of its own), and ``enter`` puts nobody whose claims are older than the
    revocation, in the same step as the entry. Claims from after it, or of other scopes, enter."""
    store, clock, redis = store_of(kind, redis_url)
    if kind == "memory":
        stones = MemoryTombstones()
        store, bus = MemoryPresence(clock=clock, tombstones=stones), LocalBus(stones)
    else:
        bus = RedisBus(redis)
    t0 = clock.now
    store.open_room(Room("a1", 7, "doc", t0, t0 + 1800, t0 + 5400))
    member = Member("p1", "patient", "Frau Eins", "waiting", t0)
    before = (("a:a1", t0), ("i:inv-1", t0))
    assert store.arriving("a1", "p1", "inv-1", before).revoked is None
    bus.revoke(["i:inv-1"], t0 + 5, "new_code", keep_seconds=60, channel="revocations", message="-")
    asked: list[object] = []
    if kind == "redis":
        real = redis.connection_pool.get_connection
        redis.connection_pool.get_connection = lambda *a, **k: asked.append(a) or real(*a, **k)  # type: ignore[method-assign]
    found = store.arriving("a1", "p1", "inv-1", before)
    if kind == "redis":
        assert len(asked) == 1, "one round trip, the tombstones included"
        redis.connection_pool.get_connection = real  # type: ignore[method-assign]
    assert found.revoked == "new_code" and found.room is not None
    assert store.enter("a1", member, t0 + 6, before) == Entered([], "new_code")
    assert store.get("a1", "p1") is None and store.members("a1", t0 + 6) == [], "nobody entered"
    other = (("a:a1", t0), ("i:inv-2", t0))
    after = (("a:a1", t0 + 10), ("i:inv-1", t0 + 10))
    for claims in (other, after):
        assert store.arriving("a1", "p1", "inv-1", claims).revoked is None
    assert [m.id for m in store.enter("a1", member, t0 + 11, after).present] == ["p1"]
    bus.close()
    if kind == "redis":
        redis.flushdb()


def test_revoked_while_arriving_nobody_enters_and_no_dashboard_hears_of_it(state, people):
    """Between the socket's first read and its entry, the invitation got a new code: the member is
    not put into the room, no dashboard is told of an arrival, and the arrival says why."""
    planned = plan_soon(state, people)
    waiting_room = state.waiting_room
    room = waiting_room.room_for(planned.appointment)
    heard: list[str] = []
    for topic in dashboard_topics(room.practitioner, room.organisation):
        state.bus.subscribe(topic, heard.append)
    template = Member(id="p1", role=MemberRole.PATIENT, name="Frau Spät", state=MemberState.WAITING, since=0)
    opened = state.clock.now().timestamp() - 1
    claims = (Claim(appointment_scope(room.appointment), opened), Claim(invitation_scope("inv-1"), opened))
    state.revoker.revoke([invitation_scope("inv-1")], Reason.NEW_CODE)
    arrival = waiting_room.arrive(room, template, None, "socket", None, claims=claims)
    assert arrival.revoked == Reason.NEW_CODE.value and arrival.present == []
    assert waiting_room.presence.get(room.appointment, "p1") is None
    assert heard == [], "no dashboard heard of an arrival"
    later = (Claim(appointment_scope(room.appointment), opened + 10),)
    assert waiting_room.arrive(room, template, None, "socket", None, claims=later).revoked is None
    assert len(heard) == 2 and waiting_room.presence.get(room.appointment, "p1") is not None


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_an_arrival_reads_room_member_and_check_in_as_the_single_reads_would(kind, redis_url):
    """``hello``'s first step (``PresenceStore.arriving``): the same answers as ``room``, ``get`` and
    ``check_in``, for a room that is there and one that is not, and on Redis in one round trip."""
    store, clock, redis = store_of(kind, redis_url)
    t0 = clock.now
    room = Room("a1", 7, "doc", t0, t0 + 1800, t0 + 5400, practitioner_name="Dr. A")
    store.open_room(room)
    member = Member("p1", "patient", "Frau Eins", "waiting", t0)
    store.put("a1", member, t0)
    record = CheckInRecord("inv-1", "p1", "Frau Eins", t0 + 3600, "tag")
    store.hold_check_in(record)
    with round_trips(redis) as asked:
        found = store.arriving("a1", "p1", "inv-1")
    if kind == "redis":
        assert len(asked) == 1, "one round trip"
    assert found.room == store.room("a1") == room
    assert found.earlier == store.get("a1", "p1") and found.earlier is not None and found.earlier.name == "Frau Eins"
    assert found.check_in == store.check_in("inv-1") == record
    assert store.arriving("a1", "p2", None) == Arriving(room, None, None)
    assert store.arriving("gone", "p1", "inv-2") == Arriving(None, None, None)
    if kind == "redis":
        redis.flushdb()


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_an_arrival_asks_what_is_ahead_in_the_same_round_trip(kind, redis_url):
    """The estimate's question (``ahead``) goes with the arrival's reads: the same answer as asked
    alone, still one round trip on Redis, and still answered after Redis forgot its scripts."""
    store, clock, redis = store_of(kind, redis_url)
    t0 = clock.now
    earlier = Room("a0", 7, "doc", t0 - 600, t0 + 900, t0 + 4500)
    mine = Room("a1", 7, "doc", t0, t0 + 1800, t0 + 5400)
    for room in (earlier, mine):
        store.open_room(room)
    store.put("a0", Member("p0", "patient", "Herr Null", "admitted", t0), t0)  # someone in the earlier call
    store.set_running_late("doc", 10, t0 + 3600)
    question = AheadOf("doc", mine.starts_at, t0)
    alone = store.ahead("doc", mine.starts_at, t0)
    assert alone == Ahead(earlier.ends_at, 10)
    with round_trips(redis) as asked:
        found = store.arriving("a1", "p1", None, (), question)
    if kind == "redis":
        assert len(asked) == 1, "one round trip"
    assert found == Arriving(mine, None, None, None, alone)
    assert store.arriving("a1", "p1", None).ahead is None, "not asked, not answered"
    if kind == "redis":
        redis.script_flush()
        assert store.arriving("a1", "p1", None, (), question).ahead == alone
        assert store.arriving("a1", "p1", None, (), question).ahead == alone  # loaded again
        redis.flushdb()


def test_a_patients_estimate_counts_the_rooms_of_whoever_holds_the_appointment_now(state):
    """``hello`` asks what is ahead along with the arrival, for the practitioner the handshake saw;
    after a handover in between, the estimate asks again, for the colleague now in charge."""
    presence, now = state.presence, state.clock.now().timestamp()
    mine = Room("hold-1", 1, "doc-a", now + 60, now + 1800, now + 5400, practitioner_name="Dr. A")
    for practitioner, busy_until in (("doc-a", now + 600), ("doc-b", now + 1200)):
        earlier = Room(f"early-{practitioner}", 1, practitioner, now - 600, busy_until, now + 5400)
        presence.open_room(earlier)
        presence.put(earlier.appointment, Member(f"in-{practitioner}", "patient", "X", "admitted", now), now)
    presence.open_room(mine)
    entrance = Entrance(state.waiting_room)

    def estimate_for(member_id: str) -> int:
        patient = Member(member_id, MemberRole.PATIENT, "Frau Drei", MemberState.WAITING, 0)
        joined = entrance.join(JoinRequest(mine, patient, None, f"socket-{member_id}", (), None))
        assert isinstance(joined, Joined) and joined.estimate is not None
        return joined.estimate.expected_in

    assert estimate_for("p1") == state.waiting_room.estimate(mine).expected_in
    assert estimate_for("p1") == estimate(mine, now + 600, 0, now).expected_in  # doc-a's earlier call
    presence.update_room("hold-1", practitioner="doc-b", practitioner_name="Dr. B")
    assert estimate_for("p2") == estimate(replace(mine, practitioner="doc-b"), now + 1200, 0, now).expected_in
