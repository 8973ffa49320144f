"""The three adapters, each in both implementations, against real services."""

from __future__ import annotations

import io
import threading
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from redis import Redis

from tests.support import tasks
from tests.support.hosts import make_host_app
from tests.support.processes import free_port, wait_for
from tests.support.smtp import SmtpServer
from tests.support.workers import run_worker
from vc_plugin.adapters.bus import LocalBus, RedisBus
from vc_plugin.adapters.jobs import JobSpec
from vc_plugin.adapters.mail import ConsoleMailer, MailDeliveryError, SmtpMailer
from vc_plugin.adapters.rq_jobs import RQJobQueue
from vc_plugin.adapters.thread_jobs import ThreadJobQueue

# --- jobs ----------------------------------------------------------------------------------------


def test_thread_queue_runs_retries_and_reports_final_failure(host, tmp_path):
    queue = host.state.jobs
    assert isinstance(queue, ThreadJobQueue)
    done, flaky, hopeless = (str(tmp_path / name) for name in ("done", "flaky", "hopeless"))
    queue.enqueue(JobSpec(tasks.record, (done, "hello")))
    queue.enqueue(JobSpec(tasks.fail_times, (flaky, 2), retries=2, backoff=(0,)))
    queue.enqueue(
        JobSpec(
            tasks.fail_times,
            (hopeless, 5),
            retries=1,
            backoff=(0,),
            on_final_failure=tasks.note_final_failure,
        )
    )
    assert queue.wait_idle(10)
    assert Path(done).read_text() == "hello\n"
    assert Path(flaky).read_text() == "succeeded after 3\n"
    assert Path(hopeless).read_text() == "final failure\n"
    assert Path(hopeless + ".attempts").read_text() == "2"


@pytest.mark.slow
def test_rq_queue_with_a_real_worker_process(pg_url, redis_url, tmp_path, clock):
    host = make_host_app(pg_url, clock=clock, VC_REDIS_URL=redis_url)
    try:
        queue = host.state.jobs
        context = host.app.app_context()
        context.push()
        assert isinstance(queue, RQJobQueue)
        done, flaky, hopeless = (str(tmp_path / name) for name in ("done", "flaky", "hopeless"))
        ok_id = queue.enqueue(JobSpec(tasks.record, (done, "hello"), job_id="vc-test-ok"))
        queue.enqueue(JobSpec(tasks.fail_times, (flaky, 1), retries=2, backoff=(0,)))
        failed_id = queue.enqueue(
            JobSpec(
                tasks.fail_times,
                (hopeless, 9),
                retries=1,
                backoff=(0,),
                on_final_failure=tasks.note_final_failure,
            )
        )
        worker = run_worker(pg_url, {"VC_REDIS_URL": redis_url}, tmp_path / "worker.log", timeout=60)
        assert Path(done).read_text() == "hello\n"
        assert Path(flaky).read_text() == "succeeded after 2\n"
        assert Path(hopeless).read_text() == "final failure\n"
        redis = Redis.from_url(redis_url)
        assert not redis.exists(f"rq:job:{ok_id}"), "a finished job must keep no result"
        ttl = redis.ttl(f"rq:job:{failed_id}")
        assert 0 < ttl <= 24 * 3600, "a failed job must expire within 24 hours"
        assert "hopeless" not in worker.output and str(tmp_path) not in worker.output, "job arguments were logged"
        context.pop()
    finally:
        host.close()


# --- bus -----------------------------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.arrived = threading.Event()

    def __call__(self, message: str) -> None:
        self.items.append(message)
        self.arrived.set()


def test_local_bus_delivers_to_subscribers_of_a_channel():
    bus = LocalBus()
    a, b = Inbox(), Inbox()
    bus.subscribe("room:1", a)
    bus.subscribe("room:2", b)
    bus.publish("room:1", "hello")
    assert a.items == ["hello"] and b.items == []
    bus.unsubscribe("room:1", a)
    bus.publish("room:1", "again")
    assert a.items == ["hello"]


def test_redis_bus_between_two_processes_worth_of_connections(redis_url):
    first, second = RedisBus(Redis.from_url(redis_url)), RedisBus(Redis.from_url(redis_url))
    try:
        inbox = Inbox()
        second.subscribe("participant:x", inbox)
        # The subscription is asynchronous: publish until it is in place.
        wait_for(lambda: (first.publish("participant:x", "offer"), inbox.arrived.wait(0.1))[1], 5, what="delivery")
        assert set(inbox.items) == {"offer"}
        second.unsubscribe("participant:x", inbox)
        time.sleep(0.2)
        count = len(inbox.items)
        first.publish("participant:x", "late")
        time.sleep(0.2)
        assert len(inbox.items) == count
    finally:
        first.close()
        second.close()


def test_redis_bus_subscribes_and_unsubscribes_several_channels_at_once(redis_url):
    """A socket's two topics in one command each way; a channel someone else here still hears stays."""
    redis, bus = Redis.from_url(redis_url), RedisBus(Redis.from_url(redis_url))
    try:
        room, member, shared = Inbox(), Inbox(), Inbox()
        bus.subscribe("room:r1", shared)
        bus.subscribe_all([("room:r1", room), ("member:r1:m1", member)])
        channels = ["vc:bus:room:r1", "vc:bus:member:r1:m1"]
        wait_for(lambda: all(n == 1 for _, n in redis.pubsub_numsub(*channels)), 5, what="both subscriptions")
        redis.publish("vc:bus:room:r1", "to the room")
        redis.publish("vc:bus:member:r1:m1", "to the member")
        wait_for(lambda: member.items == ["to the member"] and room.items == shared.items == ["to the room"], 5)

        bus.unsubscribe_all([("room:r1", room), ("member:r1:m1", member)])
        wait_for(lambda: redis.pubsub_numsub("vc:bus:member:r1:m1")[0][1] == 0, 5, what="the member's channel dropped")
        assert redis.pubsub_numsub("vc:bus:room:r1")[0][1] == 1  # still heard by ``shared``
        redis.publish("vc:bus:room:r1", "again")
        wait_for(lambda: shared.items == ["to the room", "again"], 5)
        assert room.items == ["to the room"]
    finally:
        bus.close()


def test_local_bus_subscribes_several_channels_at_once():
    bus, room, member = LocalBus(), Inbox(), Inbox()
    bus.subscribe_all([("room:r1", room), ("member:r1:m1", member)])
    bus.publish_to_all(["room:r1", "member:r1:m1"], "hi")
    assert room.items == member.items == ["hi"]
    bus.unsubscribe_all([("room:r1", room)])
    bus.publish_to_all(["room:r1", "member:r1:m1"], "again")
    assert room.items == ["hi"] and member.items == ["hi", "again"]


def test_redis_bus_reconnects_and_announces_it(redis_url):
    redis = Redis.from_url(redis_url)
    bus = RedisBus(Redis.from_url(redis_url))
    reconnected = threading.Event()
    bus.on_reconnect(reconnected.set)
    try:
        inbox = Inbox()
        bus.subscribe("queue:p1", inbox)
        wait_for(lambda: redis.pubsub_numsub("vc:bus:queue:p1")[0][1] == 1, 5, what="subscription")
        redis.client_kill_filter(_type="pubsub")
        assert reconnected.wait(10)
        wait_for(lambda: (redis.publish("vc:bus:queue:p1", "after"), inbox.arrived.wait(0.1))[1], 5, what="delivery")
        assert "after" in inbox.items
    finally:
        bus.close()


# --- mail ----------------------------------------------------------------------------------------


def _message(to: str = "jane.doe@example.org") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "praxis@example.org"
    message["To"] = to
    message["Subject"] = "Ihr Termin"
    message.set_content("Link: https://praxis.example/vc/join/abc")
    message.add_attachment(b"BEGIN:VCALENDAR", maintype="text", subtype="calendar", filename="termin.ics")
    return message


def test_console_mailer_masks_the_recipient():
    out = io.StringIO()
    ConsoleMailer(out, reveal=True).send(_message())
    printed = out.getvalue()
    assert "j…@example.org" in printed and "jane.doe" not in printed
    assert "https://praxis.example/vc/join/abc" in printed and "termin.ics" in printed


def test_smtp_mailer_delivers_to_a_real_server():
    server = SmtpServer().start()
    try:
        SmtpMailer(server.url).send(_message())
        [(recipients, received)] = server.received()
        assert recipients == ["jane.doe@example.org"]
        assert received["Subject"] == "Ihr Termin"
    finally:
        server.stop()


def test_smtp_mailer_reports_an_unreachable_server_without_the_address():
    with pytest.raises(MailDeliveryError) as failure:
        SmtpMailer(f"smtp://127.0.0.1:{free_port()}", timeout=2).send(_message())
    assert "jane" not in str(failure.value)
