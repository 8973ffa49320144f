"""The relay with consent: credentials only after the participant agrees, and they really work."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from tests.support.coturn import SECRET, Coturn
from tests.support.hosts import make_host_app
from tests.support.live import running
from tests.support.people import make_people
from tests.support.signal_client import Peer, SignalClient, check_in, practitioner_cookie
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import AppointmentIn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(postgres_schema, redis_address, tmp_path_factory, transport):
    """coturn and the app, for all tests of the module."""
    work = tmp_path_factory.mktemp("turn")
    coturn = Coturn(work).start()
    config = {"VC_REDIS_URL": redis_address, "VC_TURN_URLS": [coturn.url], "VC_TURN_SECRET": SECRET}
    try:
        with running(postgres_schema, config, work, transport=transport) as (live,):
            yield live
    finally:
        coturn.stop()


@pytest.fixture
def relay_world(server, pg_url, redis_url):
    host = make_host_app(pg_url, VC_REDIS_URL=redis_url, VC_PUBLIC_URL=server.url + "/")
    with host.app.app_context():
        yield server, host, make_people(host.state)
    host.close()


def plan(host, people, *, relay_only=False):
    start = host.state.clock.now() + timedelta(minutes=5)
    return host.state.appointments.plan(
        Principal.of(people.doc),
        AppointmentIn(starts_at=start, ends_at=start + timedelta(minutes=20), relay_only=relay_only),
    )


async def admitted(server, people, planned):
    appointment = planned.appointment.public_id
    issued = planned.invitations[0]
    cookie = check_in(server.url, issued.invitation.public_id, issued.code)
    patient = await SignalClient.open(server.ws_url, f"/vc/ws/room/{appointment}", cookie)
    patient_welcome = await patient.hello()
    doctor = await SignalClient.open(server.ws_url, f"/vc/ws/room/{appointment}", practitioner_cookie(people.doc))
    doctor_welcome = await doctor.hello()
    await doctor.send({"type": "admit", "appointment": appointment, "participant": patient_welcome["you"]["id"]})
    await patient.receive("admitted")
    return patient, patient_welcome, doctor, doctor_welcome


def test_relay_after_consent_connects_through_coturn(relay_world):
    server, host, people = relay_world
    planned = plan(host, people)

    async def scenario():
        patient, patient_welcome, doctor, doctor_welcome = await admitted(server, people, planned)
        # Before consent: no TURN in the welcome, and asking without consent yields nothing.
        assert all("username" not in s for s in patient_welcome["iceServers"])
        assert patient_welcome["relayAvailable"] is True
        await patient.send({"type": "relay-request", "consent": False})
        assert (await patient.receive("error"))["code"] == "relay_consent_required"
        # With consent: credentials in coturn's scheme, valid no longer than the appointment.
        await patient.send({"type": "relay-request", "consent": True})
        await doctor.send({"type": "relay-request", "consent": True})
        patient_relay, doctor_relay = await patient.receive("relay"), await doctor.receive("relay")
        [turn] = [s for s in patient_relay["iceServers"] if "username" in s]
        expiry = int(turn["username"].split(":")[0])
        assert expiry <= planned.appointment.ends_at.timestamp() + 30 * 60
        a = Peer(patient, patient_relay["iceServers"], relay=True)
        b = Peer(doctor, doctor_relay["iceServers"], relay=True)
        try:
            await asyncio.gather(a.call(doctor_welcome["you"]["id"]), b.answer_call())
            await asyncio.gather(a.wait_open(30), b.wait_open(30))
            a.channel.send("über das Relay")
            assert await asyncio.wait_for(b.received.get(), 10) == "über das Relay"
            assert a.path() == "relay" and b.path() == "relay"
        finally:
            await a.close()
            await b.close()
        await patient.close()
        await doctor.close()

    asyncio.run(scenario())
    from sqlalchemy import select

    from vc_plugin.core.models import ConsentRecord

    host.state.db.session.expire_all()
    kinds = sorted(c.kind.value for c in host.state.db.session.scalars(select(ConsentRecord)))
    assert kinds == ["participation", "relay"]


def test_forged_turn_credentials_are_refused_by_coturn(relay_world):
    """Guessing credentials does not work: the relay really checks the HMAC."""
    server, host, people = relay_world
    planned = plan(host, people)

    async def scenario():
        patient, _, doctor, doctor_welcome = await admitted(server, people, planned)
        turn = {
            "urls": server.config["VC_TURN_URLS"],
            "username": f"{int(time.time()) + 600}:x",
            "credential": "Zm9yZ2Vk",
        }
        a = Peer(patient, [turn], relay=True)
        b = Peer(doctor, [turn], relay=True)
        try:
            with pytest.raises((TimeoutError, asyncio.TimeoutError)):
                await asyncio.gather(a.call(doctor_welcome["you"]["id"]), b.answer_call())
                await asyncio.wait_for(asyncio.gather(a.wait_open(), b.wait_open()), 8)
        finally:
            await a.close()
            await b.close()
        await patient.close()
        await doctor.close()

    asyncio.run(scenario())


def test_relay_only_appointment_gives_turn_from_the_start(relay_world):
    server, host, people = relay_world
    planned = plan(host, people, relay_only=True)

    async def scenario():
        patient, welcome, doctor, doctor_welcome = await admitted(server, people, planned)
        assert welcome["iceTransportPolicy"] == "relay"
        assert any("username" in s for s in welcome["iceServers"])
        a = Peer(patient, welcome["iceServers"], relay=True)
        b = Peer(doctor, doctor_welcome["iceServers"], relay=True)
        try:
            await asyncio.gather(a.call(doctor_welcome["you"]["id"]), b.answer_call())
            await asyncio.gather(a.wait_open(30), b.wait_open(30))
            assert a.path() == "relay"
        finally:
            await a.close()
            await b.close()
        await patient.close()
        await doctor.close()

    asyncio.run(scenario())
