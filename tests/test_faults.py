"""Faults survived, each with real processes: a killed app process, a restarted Redis, a killed
worker, an unreachable database."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from redis import Redis
from sqlalchemy import select
from sqlalchemy.engine import make_url

from tests.support.hosts import make_host_app
from tests.support.live import LiveServer
from tests.support.people import make_people
from tests.support.planning import plan_group
from tests.support.processes import wait_for
from tests.support.redis_server import RedisServer
from tests.support.signal_client import Peer, SignalClient, check_in, practitioner_cookie, socket_ticket
from tests.support.smtp import SmtpServer
from tests.support.tcp_proxy import TcpProxy
from tests.support.web import csrf, sign_in_as
from tests.support.workers import start_worker
from vc_plugin.adapters.presence import CHECK_IN_PREFIX
from vc_plugin.core.models import Delivery, Invitation, OutboxJob

pytestmark = pytest.mark.slow


def test_a_killed_app_process_leaves_media_and_waiting_room_intact(pg_url, redis_url, tmp_path, transport):
    config = {"VC_REDIS_URL": redis_url}
    doomed = LiveServer(pg_url, config, tmp_path, signalling=transport).start()
    survivor = LiveServer(pg_url, config, tmp_path, signalling=transport).start()
    host = make_host_app(pg_url, VC_REDIS_URL=redis_url, VC_PUBLIC_URL=doomed.url + "/")
    try:
        with host.app.app_context():
            people = make_people(host.state)
            appointment, issued = plan_group(host, people)
        cookies = [
            check_in(doomed.url, invitation, code, name=n)
            for (invitation, code, _), n in zip(issued, ("Im Gespräch", "Wartend"), strict=True)
        ]

        async def scenario():
            path = f"/vc/ws/room/{appointment}"
            talking = await SignalClient.open(doomed.ws_url, path, cookies[0])
            talking_welcome = await talking.hello()
            waiting = await SignalClient.open(doomed.ws_url, path, cookies[1])
            waiting_welcome = await waiting.hello()
            doctor = await SignalClient.open(doomed.ws_url, path, practitioner_cookie(people.doc))
            doctor_welcome = await doctor.hello()
            await doctor.send(
                {"type": "admit", "appointment": appointment, "participant": talking_welcome["you"]["id"]}
            )
            await talking.receive("admitted")
            patient_peer, doctor_peer = Peer(talking), Peer(doctor)
            await asyncio.gather(patient_peer.call(doctor_welcome["you"]["id"]), doctor_peer.answer_call())
            await asyncio.gather(patient_peer.wait_open(), doctor_peer.wait_open())

            doomed.kill()  # SIGKILL: no clean-up of any kind

            # Media flow peer to peer: the data channel does not notice.
            for n in range(3):
                patient_peer.channel.send(f"noch da {n}")
                assert await asyncio.wait_for(doctor_peer.received.get(), 5) == f"noch da {n}"
            # Everybody reconnects to the other process with their resume token.
            back = {}
            for name, cookie, welcome in (
                ("talking", cookies[0], talking_welcome),
                ("waiting", cookies[1], waiting_welcome),
                ("doctor", practitioner_cookie(people.doc), doctor_welcome),
            ):
                client = await SignalClient.open(survivor.ws_url, path, cookie)
                back[name] = (client, await client.hello(resume=welcome["resume"]))
            assert back["talking"][1]["state"] == "admitted"
            assert back["waiting"][1]["state"] == "waiting" and back["waiting"][1]["position"] == 1
            assert back["waiting"][1]["you"]["id"] == waiting_welcome["you"]["id"]
            dashboard = await SignalClient.open(survivor.ws_url, "/vc/ws/practice", practitioner_cookie(people.doc))
            [room] = (await dashboard.hello())["rooms"]
            waiting_now = [m["name"] for m in room["members"] if m["state"] == "waiting"]
            assert waiting_now == ["Wartend"]
            # Signalling works again through the survivor (an ICE restart request, say).
            await back["doctor"][0].send({"type": "ice-restart", "to": talking_welcome["you"]["id"]})
            assert (await back["talking"][0].receive("ice-restart"))["from"] == doctor_welcome["you"]["id"]
            await patient_peer.close()
            await doctor_peer.close()
            for client, _ in back.values():
                await client.close()
            await dashboard.close()

        asyncio.run(scenario())
    finally:
        host.close()
        survivor.stop()
        doomed.stop()


def test_redis_restart_rebuilds_the_queue_and_loses_no_invitation(pg_url, tmp_path, transport):
    redis = RedisServer(tmp_path).start()
    smtp = SmtpServer().start()
    config = {"VC_REDIS_URL": redis.url, "VC_SMTP_URL": smtp.url}
    server = LiveServer(pg_url, config, tmp_path, signalling=transport).start()
    host = make_host_app(pg_url, VC_REDIS_URL=redis.url, VC_PUBLIC_URL=server.url + "/")
    try:
        with host.app.app_context():
            people = make_people(host.state)
            appointment, [(invitation, code, _)] = plan_group(host, people, patients=1)
            _, [(_, _, mailed_row)] = plan_group(host, people, patients=1, email="nach.neustart@example.org")
            doctor = practitioner_cookie(people.doc)
        cookie = check_in(server.url, invitation, code, name="Geduldig")

        async def scenario():
            room = f"/vc/ws/room/{appointment}"  # opened as the page does: with a ticket, which names no one
            patient = await SignalClient.open(
                server.ws_url, f"{room}?ticket={socket_ticket(server.url, room, cookie)}", None
            )
            patient_id = (await patient.hello())["you"]["id"]
            dashboard = await SignalClient.open(server.ws_url, "/vc/ws/practice", doctor)
            queue = await dashboard.hello()
            assert any(r["appointment"] == appointment for r in queue["rooms"])

            redis.restart()  # empty again: presence, bus subscriptions and the RQ queue are gone
            started = time.monotonic()
            while True:
                rebuilt = await dashboard.receive("queue", timeout=15)
                rooms = {r["appointment"]: r for r in rebuilt["rooms"]}
                if appointment in rooms and [m["name"] for m in rooms[appointment]["members"]] == ["Geduldig"]:
                    break
            assert time.monotonic() - started < 10, "the queue must come back within seconds"
            written_back = Redis.from_url(redis.url).get(f"{CHECK_IN_PREFIX}{invitation}")
            assert written_back is not None and json.loads(written_back)["name"] == "Geduldig"
            # The bus works again: admitting reaches the patient.
            await dashboard.send({"type": "admit", "appointment": appointment, "participant": patient_id})
            await patient.receive("admitted", timeout=10)
            await patient.close()
            await dashboard.close()

        asyncio.run(scenario())
        # The invitation queued before the restart is still delivered.
        time.sleep(5)  # recovery only touches jobs older than a few seconds
        worker = start_worker(pg_url, config, tmp_path / "worker.log", burst=True)
        worker.popen.wait(timeout=60)
        assert worker.popen.returncode == 0, worker.output
        assert "recovered 1 queued job" in worker.output
        wait_for(lambda: len(smtp.received()) == 1, 10, what="the mail")
        assert smtp.received()[0][0] == ["nach.neustart@example.org"]
        with host.app.app_context():
            assert host.state.db.session.get(Invitation, mailed_row).delivery is Delivery.SENT
    finally:
        host.close()
        server.stop()
        smtp.stop()
        redis.stop()


def test_a_worker_killed_while_sending_delivers_once(pg_url, redis_url, tmp_path):
    smtp = SmtpServer().start()
    smtp.delay_rcpt = 30.0  # the worker hangs in the middle of the SMTP conversation
    config = {"VC_REDIS_URL": redis_url, "VC_SMTP_URL": smtp.url}
    host = make_host_app(pg_url, **config)
    try:
        with host.app.app_context():
            people = make_people(host.state)
            _, [(_, _, row)] = plan_group(host, people, patients=1, email="einmal@example.org")
        worker = start_worker(pg_url, config, tmp_path / "first-worker.log", burst=False)
        assert smtp.rcpt_started.wait(30), worker.output
        worker.kill()  # SIGKILL while the mail is half sent
        smtp.delay_rcpt = 0.0
        assert smtp.received() == []
        time.sleep(5)
        second = start_worker(pg_url, config, tmp_path / "second-worker.log", burst=True)
        second.popen.wait(timeout=60)
        assert second.popen.returncode == 0, second.output
        wait_for(lambda: len(smtp.received()) >= 1, 10, what="the mail")
        time.sleep(1)
        assert [recipients for recipients, _ in smtp.received()] == [["einmal@example.org"]]  # once, not twice
        with host.app.app_context():
            session = host.state.db.session
            assert session.get(Invitation, row).delivery is Delivery.SENT
            assert session.scalars(select(OutboxJob)).all() == []
    finally:
        host.close()
        smtp.stop()


def test_an_unreachable_database_fails_cleanly_and_recovers(pg_url, tmp_path):
    target = make_url(pg_url)
    proxy = TcpProxy((target.host or "127.0.0.1", target.port or 5432)).start()
    proxied = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    host = make_host_app(proxied)
    try:
        with host.app.app_context():
            people = make_people(host.state)
            _, token = host.state.api_tokens.create("praxis-nord", "tool")
            page, api = host.app.test_client(), host.app.test_client()
            sign_in_as(page, people.doc, time.time())
        api_headers = {"Authorization": f"Bearer {token}"}
        assert page.get("/vc/practice/appointments").status_code == 200
        assert api.get("/vc/api/v1/appointments", headers=api_headers).status_code == 200

        proxy.cut()
        down_page = page.get("/vc/practice/appointments", headers={"Accept-Language": "en"})
        assert down_page.status_code == 503 and "Temporarily unavailable" in down_page.get_data(as_text=True)
        assert "Traceback" not in down_page.get_data(as_text=True)
        down_api = api.get("/vc/api/v1/appointments", headers=api_headers)
        assert down_api.status_code == 503 and down_api.json["error"] == "unavailable"
        assert page.get("/vc/health").status_code == 503

        proxy.restore()  # no restart of anything
        assert page.get("/vc/practice/appointments").status_code == 200
        assert api.get("/vc/api/v1/appointments", headers=api_headers).status_code == 200
        assert page.get("/vc/health").status_code == 200
        planned = page.post(
            "/vc/practice/appointments/new",
            data={
                "csrf_token": csrf(page, "/vc/practice/appointments/new"),
                "date": "2030-01-01",
                "time": "10:00",
                "duration": "30",
                "p0-kind": "patient",
            },
        )
        assert planned.status_code == 200
    finally:
        host.close()
        proxy.stop()
