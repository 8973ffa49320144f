"""The signalling server's own Redis connection (``RedisLink``) and the steps it carries.

Against real redis-servers: the test Redis, private ones that a test stops, restarts or gives a
password, and two stand-ins that never answer or answer nonsense. Every step the loop takes over
the link must come out as the same step run through redis-py does.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.support.redis_server import RedisServer
from vc_plugin.adapters import redis_channels, redis_connect
from vc_plugin.adapters.bus import RedisBus
from vc_plugin.adapters.presence import AheadOf, CheckInRecord, Member, MemberRole, MemberState, RedisPresence, Room
from vc_plugin.adapters.redis_channels import RedisChannels
from vc_plugin.adapters.redis_link import RedisLink
from vc_plugin.adapters.steps import ScriptMissing, Step, Steps
from vc_plugin.web.asyncio_sockets import SignallingHub


def _on_loop(work: Callable[[asyncio.AbstractEventLoop], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        return await work(asyncio.get_running_loop())

    return asyncio.run(main())


def test_replies_come_in_order_to_each_caller_with_errors_in_place(redis_url: str) -> None:
    Redis.from_url(redis_url).set("word", "hello")

    async def work(loop: asyncio.AbstractEventLoop) -> Any:
        link = RedisLink(redis_url, loop)
        try:
            return await asyncio.gather(
                link.execute([("GET", "word"), ("INCR", "word"), ("STRLEN", "word")]),
                link.execute([("EVALSHA", "0" * 40, 0)]),
                *(link.execute([("INCRBY", "n", i)]) for i in range(1, 51)),
            )
        finally:
            link.close()

    first, script, *counts = _on_loop(work)
    assert first[0] == b"hello" and first[2] == 5
    assert isinstance(first[1], ResponseError) and "not an integer" in str(first[1])
    assert isinstance(script[0], NoScriptError)
    assert [reply for [reply] in counts] == [i * (i + 1) // 2 for i in range(1, 51)]


def test_the_database_and_password_of_the_url_are_used(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        admin = Redis.from_url(server.url)
        admin.acl_setuser("signalling", enabled=True, passwords=["+door"], keys=["~*"], commands=["+@all"])
        admin.config_set("requirepass", "gate")
        base = f"127.0.0.1:{server.port}"

        async def work(loop: asyncio.AbstractEventLoop) -> None:
            for url, key in (
                (f"redis://:gate@{base}/3", "by-password"),
                (f"redis://signalling:door@{base}/4", "by-user"),
            ):
                link = RedisLink(url, loop)
                try:
                    assert await link.execute([("SET", key, "1")]) == [b"OK"]
                finally:
                    link.close()
            wrong = RedisLink(f"redis://:wrong@{base}/0", loop)
            with pytest.raises(RedisConnectionError):
                await wrong.execute([("GET", "x")])

        _on_loop(work)
        owner = Redis.from_url(f"redis://:gate@{base}/0")
        assert owner.execute_command("SELECT", 3) and owner.get("by-password") == b"1"
        assert Redis.from_url(f"redis://:gate@{base}/4").get("by-user") == b"1"
        assert Redis.from_url(f"redis://:gate@{base}/0").dbsize() == 0
    finally:
        server.stop()


def test_a_lost_connection_fails_its_callers_and_the_next_command_connects_again(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:

        async def work(loop: asyncio.AbstractEventLoop) -> None:
            link = RedisLink(server.url, loop)
            try:
                assert await link.execute([("SET", "k", "before")]) == [b"OK"]
                # A command that waits for a while, so the restart catches it unanswered (whether or
                # not Redis read it before it was killed).
                pending = asyncio.ensure_future(link.execute([("BLPOP", "nothing", 0)]))  # 0: for ever
                await asyncio.sleep(0)  # written
                await asyncio.to_thread(server.restart)
                with pytest.raises(RedisConnectionError):
                    await pending
                assert await link.execute([("GET", "k"), ("SET", "k", "after")]) == [None, b"OK"]
            finally:
                link.close()

        _on_loop(work)
        assert Redis.from_url(server.url).get("k") == b"after"
    finally:
        server.stop()


def test_nothing_listening_is_a_connection_error(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    url = server.url
    server.stop()

    async def work(loop: asyncio.AbstractEventLoop) -> None:
        link = RedisLink(url, loop)
        with pytest.raises(RedisConnectionError, match="could not connect"):
            await link.execute([("PING",)])

    _on_loop(work)


async def _stand_in(answer: bytes | None) -> tuple[asyncio.Server, str]:
    """A server that reads commands and answers each read with ``answer`` (None: never)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(4096):
            if answer is not None:
                writer.write(answer)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"redis://127.0.0.1:{port}/0"


def test_a_redis_that_does_not_answer_fails_the_caller_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_connect, "REPLY_TIMEOUT", 0.3)

    async def work(loop: asyncio.AbstractEventLoop) -> None:
        server, url = await _stand_in(None)
        link = RedisLink(url, loop)
        try:
            with pytest.raises(RedisTimeoutError):
                await asyncio.wait_for(link.execute([("PING",)]), 10)
        finally:
            link.close()
            server.close()

    _on_loop(work)


def test_an_answer_that_is_not_resp_drops_the_connection() -> None:
    async def work(loop: asyncio.AbstractEventLoop) -> None:
        server, url = await _stand_in(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        link = RedisLink(url, loop)
        try:
            with pytest.raises(RedisConnectionError, match="not RESP"):
                await asyncio.wait_for(link.execute([("PING",)]), 10)
        finally:
            link.close()
            server.close()

    _on_loop(work)


# --- steps: the same over the link as through redis-py ------------------------------------------------


def _room(appointment: str, starts_at: float) -> Room:
    return Room(
        appointment=appointment,
        organisation=1,
        practitioner="doc",
        starts_at=starts_at,
        ends_at=starts_at + 1800,
        expires_at=starts_at + 7200,
        practitioner_name="Dr. Rao",
    )


def _member(member_id: str, since: float) -> Member:
    return Member(id=member_id, role=MemberRole.PATIENT, name="Ada", state=MemberState.WAITING, since=since)


def _over_link(redis_url: str, step: Any) -> Any:
    async def work(loop: asyncio.AbstractEventLoop) -> Any:
        link = RedisLink(redis_url, loop)
        try:
            return step.parse(await link.execute(step.commands))
        finally:
            link.close()

    return _on_loop(work)


def test_an_arrival_reads_the_same_over_the_link_as_through_redis_py(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()  # of its own: no other test flushes its scripts meanwhile
    try:
        _arrival_both_ways(server.url)
    finally:
        server.stop()


def _arrival_both_ways(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    now = 1_900_000_000.0
    presence = RedisPresence(redis, clock=lambda: now)
    earlier, room = _room("a-early", now - 600), _room("a-now", now)
    presence.open_room(earlier)
    presence.open_room(room)
    presence.put(earlier.appointment, _member("m-early", now - 500), now)
    presence.put(room.appointment, _member("m-1", now - 10), now)
    presence.hold_check_in(CheckInRecord(invitation="inv", member="m-1", name="Ada", expires_at=now + 600))
    presence.set_running_late("doc", 10, now + 600)
    ahead_of = AheadOf("doc", room.starts_at, now)
    claims = (("appointment:a-now", now - 60),)

    step = presence.arriving_step(room.appointment, "m-1", "inv", claims, ahead_of)
    through_redis_py = step.run()  # first: redis-py loads the scripts Redis does not have yet
    over_link = _over_link(redis_url, step)
    assert over_link == through_redis_py
    assert over_link.room == room and over_link.earlier is not None and over_link.check_in is not None
    assert over_link.ahead is not None and over_link.ahead.busy_until == earlier.ends_at
    assert over_link.ahead.late_minutes == 10

    entering = _member("m-2", now)
    step = presence.enter_step(room.appointment, entering, now)
    entered = _over_link(redis_url, step)
    assert sorted(m.id for m in entered.present) == ["m-1", "m-2"]
    assert entered == presence.enter_step(room.appointment, entering, now).run()


def test_a_script_redis_lost_is_missing_over_the_link_and_loaded_again_through_redis_py(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()  # of its own: SCRIPT FLUSH empties a whole server
    try:
        redis = Redis.from_url(server.url)
        now = 1_900_000_000.0
        presence = RedisPresence(redis, clock=lambda: now)
        room = _room("a-now", now)
        presence.open_room(room)
        for step in (
            presence.arriving_step(room.appointment, "m-1", None, (), AheadOf("doc", now, now)),
            presence.enter_step(room.appointment, _member("m-1", now), now),
        ):
            redis.script_flush()
            with pytest.raises(ScriptMissing):
                _over_link(server.url, step)
            assert step.run() is not None  # redis-py loads the script and runs it
            assert _over_link(server.url, step) == step.run()  # and then the link finds it too
    finally:
        server.stop()


def test_a_publishing_step_reaches_subscribers_in_order(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    bus = RedisBus(redis)
    listener = redis.pubsub()
    listener.subscribe("vc:bus:one", "vc:bus:two")
    try:
        for _ in range(2):  # both subscriptions confirmed before anything is published
            confirmed = listener.get_message(timeout=10)
            assert confirmed is not None and confirmed["type"] == "subscribe"
        step = bus.publishing([("one", "first"), ("two", "second"), ("one", "third")])
        _over_link(redis_url, step)
        step.run()  # and once through redis-py
        heard = []
        deadline = time.monotonic() + 10
        while len(heard) < 6 and time.monotonic() < deadline:
            message = listener.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is not None:  # None: nothing yet, or a subscription's confirmation
                heard.append((message["channel"], message["data"]))
        once = [(b"vc:bus:one", b"first"), (b"vc:bus:two", b"second"), (b"vc:bus:one", b"third")]
        assert heard == once + once
    finally:
        listener.close()
        bus.close()


# --- the signalling server's driver -------------------------------------------------------------------


def test_the_hub_sends_commands_over_the_link_and_everything_else_to_its_threads(app, state, redis_url, tmp_path):
    gone = RedisServer(tmp_path).start()
    gone_url = gone.url
    gone.stop()

    def parse_script(replies: list[Any]) -> str:
        if isinstance(replies[0], NoScriptError):
            raise ScriptMissing
        return "ran"

    def steps() -> Steps[tuple[Any, ...]]:
        loop_part = yield Step(
            run=lambda: "blocking",
            commands=(("SET", "k", "v"), ("GET", "k")),
            parse=lambda replies: (threading.current_thread().name, replies),
        )
        thread_part = yield Step(run=lambda: threading.current_thread().name)
        missing = yield Step(run=lambda: "loaded again", commands=(("EVALSHA", "0" * 40, 0),), parse=parse_script)
        return loop_part, thread_part, missing

    async def scenario(url: str) -> tuple[Any, ...]:
        hub = SignallingHub(app, state, asyncio.get_running_loop(), threads=1)
        hub.link = RedisLink(url, hub.loop)
        try:
            return await hub.drive(steps())  # type: ignore[no-any-return]
        finally:
            hub.close()

    loop_part, thread_part, missing = asyncio.run(scenario(redis_url))
    assert loop_part == (threading.current_thread().name, [b"OK", b"v"])
    assert thread_part.startswith("vc-signalling")
    assert missing == "loaded again"
    # Redis away from the link: each step with commands is done the blocking way (redis-py retries).
    loop_part, _, missing = asyncio.run(scenario(gone_url))
    assert loop_part == "blocking" and missing == "loaded again"


# --- the bus's channels on the loop ----------------------------------------------------------------------


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the bound"
        await asyncio.sleep(0.01)


class _Ears:
    def __init__(self) -> None:
        self.heard: list[tuple[str, str]] = []
        self.came_back = 0

    def channels(self, url: str, loop: asyncio.AbstractEventLoop) -> RedisChannels:
        def came_back() -> None:
            self.came_back += 1

        return RedisChannels(
            url, loop, prefix="vc:bus:", heard=lambda t, m: self.heard.append((t, m)), came_back=came_back
        )


def _subscribers(redis: Redis, channel: str) -> int:
    return int(redis.pubsub_numsub(channel)[0][1])


def _calls(redis: Redis, command: str) -> int:
    return int(redis.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_channels_hear_what_they_subscribed_and_nothing_after_leaving(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()  # of its own: PUBSUB NUMSUB and the command counts are server-wide
    redis = Redis.from_url(server.url)
    ears = _Ears()

    async def work(loop: asyncio.AbstractEventLoop) -> None:
        channels = ears.channels(server.url, loop)
        channels.start()
        try:
            channels.subscribe(["room:a", "member:a:1"])
            channels.unsubscribe(["member:a:1"])  # left in the same turn: never asked for
            channels.subscribe(["room:b"])
            await _until(lambda: _subscribers(redis, "vc:bus:room:b") == 1)
            assert _subscribers(redis, "vc:bus:member:a:1") == 0 and _subscribers(redis, "vc:bus:room:a") == 1
            # Connected now: a topic taken and left, and one left and taken again, in one turn cost nothing.
            subscribes, unsubscribes = _calls(redis, "subscribe"), _calls(redis, "unsubscribe")
            channels.subscribe(["member:a:2"])
            channels.unsubscribe(["member:a:2", "room:a"])
            channels.subscribe(["room:a"])
            await asyncio.sleep(0)  # the end of this turn
            assert (_calls(redis, "subscribe"), _calls(redis, "unsubscribe")) == (subscribes, unsubscribes)
            redis.publish("vc:bus:room:a", "hello ä")
            redis.publish("vc:bus:member:a:1", "not for us")
            redis.publish("vc:bus:member:a:2", "nor this")
            redis.publish("vc:bus:room:b", "second")
            await _until(lambda: len(ears.heard) == 2)
            channels.unsubscribe(["room:a"])
            await _until(lambda: _subscribers(redis, "vc:bus:room:a") == 0)
            redis.publish("vc:bus:room:a", "after leaving")
            redis.publish("vc:bus:room:b", "third")
            await _until(lambda: len(ears.heard) == 3)
        finally:
            channels.close()

    try:
        _on_loop(work)
    finally:
        server.stop()
    assert ears.heard == [("room:a", "hello ä"), ("room:b", "second"), ("room:b", "third")]
    assert ears.came_back == 0


def test_channels_come_back_after_a_redis_restart_subscribed_as_before(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    ears = _Ears()
    try:

        async def work(loop: asyncio.AbstractEventLoop) -> None:
            channels = ears.channels(server.url, loop)
            channels.start()
            try:
                channels.subscribe(["room:a"])
                await _until(lambda: _subscribers(Redis.from_url(server.url), "vc:bus:room:a") == 1)
                await asyncio.to_thread(server.restart)
                await _until(lambda: ears.came_back == 1)
                redis = Redis.from_url(server.url)
                assert _subscribers(redis, "vc:bus:room:a") == 1
                redis.publish("vc:bus:room:a", "after the restart")
                await _until(lambda: len(ears.heard) == 1)
            finally:
                channels.close()

        _on_loop(work)
    finally:
        server.stop()
    assert ears.heard == [("room:a", "after the restart")] and ears.came_back == 1


def test_channels_refused_by_redis_keep_trying_without_saying_they_came_back(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    ears = _Ears()
    try:
        Redis.from_url(server.url).config_set("requirepass", "gate")
        wrong = f"redis://:wrong@127.0.0.1:{server.port}/0"

        owner = Redis.from_url(f"redis://:gate@127.0.0.1:{server.port}/0")
        connections_before = int(owner.info("stats")["total_connections_received"])

        async def work(loop: asyncio.AbstractEventLoop) -> None:
            channels = ears.channels(wrong, loop)
            channels.start()
            channels.subscribe(["room:a"])
            try:
                await _until(lambda: int(owner.info("stats")["total_connections_received"]) >= connections_before + 3)
            finally:
                channels.close()

        _on_loop(work)
        assert _subscribers(Redis.from_url(f"redis://:gate@127.0.0.1:{server.port}/0"), "vc:bus:room:a") == 0
    finally:
        server.stop()
    assert ears.came_back == 0 and ears.heard == []


def test_channels_drop_a_connection_that_stops_answering_and_connect_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_channels, "HEALTH_CHECK_SECONDS", 0.2)
    ears = _Ears()

    async def work(loop: asyncio.AbstractEventLoop) -> int:
        accepted = 0

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal accepted
            accepted += 1
            while await reader.read(4096):
                pass  # reads SUBSCRIBE and PING, answers nothing
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        channels = ears.channels(f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0", loop)
        channels.start()
        channels.subscribe(["room:a"])
        try:
            await _until(lambda: accepted >= 2)
        finally:
            channels.close()
            server.close()
        return accepted

    assert _on_loop(work) >= 2
    assert ears.came_back == 0  # never subscribed, so never back


def test_a_command_that_cannot_be_packed_fails_alone(redis_url: str) -> None:
    async def work(loop: asyncio.AbstractEventLoop) -> list[Any]:
        link = RedisLink(redis_url, loop)
        try:
            assert await link.execute([("SET", "word", "before")]) == [b"OK"]
            with pytest.raises(TypeError):
                await link.execute([("SET", "word", {"not": "packable"})])
            assert await link.execute([]) == []
            return await link.execute([("GET", "word"), ("ECHO", "in step")])
        finally:
            link.close()

    assert _on_loop(work) == [b"before", b"in step"]


def test_error_replies_read_as_redis_py_names_them() -> None:
    import hiredis
    from redis.exceptions import BusyLoadingError

    loading = redis_connect.reply_error(hiredis.ReplyError("LOADING Redis is loading the dataset in memory"))
    assert isinstance(loading, BusyLoadingError) and isinstance(loading, RedisConnectionError)  # retried
    assert isinstance(redis_connect.reply_error(hiredis.ReplyError("NOSCRIPT No matching script")), NoScriptError)
    plain = redis_connect.reply_error(hiredis.ReplyError("WRONGTYPE Operation against a key"))
    assert type(plain) is ResponseError
    assert redis_connect.error_code(plain) == "WRONGTYPE"  # what may be logged: not the rest of the text


def test_tls_is_checked_unless_the_url_says_otherwise() -> None:
    import ssl

    from redis.connection import parse_url

    strict = redis_connect._tls(parse_url("rediss://redis.example:6380/0"))
    assert strict.verify_mode is ssl.CERT_REQUIRED and strict.check_hostname
    lax = redis_connect._tls(parse_url("rediss://redis.example:6380/0?ssl_cert_reqs=none"))
    assert lax.verify_mode is ssl.CERT_NONE and not lax.check_hostname
