"""When no direct path exists, the page asks before using the relay: agreeing connects through
coturn, declining explains why there is no connection and asks the server for nothing.

The two browsers sit in network namespaces that can reach the server and coturn but not each
other (see tests/support/netns.py), as behind restrictive firewalls.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select

from tests.browser.conftest import (
    DESKTOP,
    PHONE,
    admit,
    check_in,
    chromium_path,
    enter_waiting_room,
    launch,
    open_call,
    screenshot,
)
from tests.support.axe import serious_findings
from tests.support.coturn import SECRET, Coturn
from tests.support.hosts import make_host_app
from tests.support.live import LiveServer
from tests.support.netns import Network
from tests.support.people import make_people
from tests.support.signal_client import practitioner_cookie
from vc_plugin.core.models import Base, ConsentKind, ConsentRecord
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import AppointmentIn

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def firewalled(playwright_instance, tmp_path):
    network = Network().create()
    try:
        # The server namespace's addresses on each link (each network has its own, see netns.py).
        patient_side, doctor_side, test_side = (network.server_address(r) for r in ("patient", "doctor", "root"))
        database = f"sqlite:///{tmp_path / 'vc.sqlite'}"
        engine = create_engine(database)
        Base.metadata.create_all(engine)
        engine.dispose()
        coturn = Coturn(
            tmp_path,
            listen=(patient_side, doctor_side, test_side),
            relay=patient_side,
            wrap=network.run("server", []),
            probe_host=test_side,
        ).start()
        server = LiveServer(database, {}, tmp_path, host=test_side, bind="0.0.0.0", wrap=network.run("server", []))
        patient_origin, doctor_origin = f"http://{patient_side}:{server.port}", f"http://{doctor_side}:{server.port}"
        server.config.update(
            VC_PUBLIC_URL=patient_origin + "/",
            VC_ALLOWED_ORIGINS=[doctor_origin],
            VC_TURN_URLS=[f"turn:{patient_side}:{coturn.port}", f"turn:{doctor_side}:{coturn.port}"],
            VC_TURN_SECRET=SECRET,
        )
        server.start()
        browsers = {
            role: launch(
                playwright_instance,
                f"--unsafely-treat-insecure-origin-as-secure={origin}",
                executable=network.launcher(role, chromium_path(), tmp_path),
            )
            for role, origin in (("patient", patient_origin), ("doctor", doctor_origin))
        }
        host = make_host_app(database, VC_PUBLIC_URL=patient_origin + "/")
        with host.app.app_context():
            yield {
                "host": host,
                "people": make_people(host.state),
                "browsers": browsers,
                "patient_origin": patient_origin,
                "doctor_origin": doctor_origin,
            }
        for browser in browsers.values():
            browser.close()
        host.close()
        server.stop()
        coturn.stop()
    finally:
        network.destroy()


def into_call(world, patient_locale: str, doctor_locale: str):
    """Patient checked in and waiting; the practitioner on the call page admits them."""
    host, people = world["host"], world["people"]
    start = host.state.clock.now() + timedelta(minutes=2)
    planned = host.state.appointments.plan(
        Principal.of(people.doc), AppointmentIn(starts_at=start, ends_at=start + timedelta(minutes=20))
    )
    issued = planned.invitations[0]
    patient = world["browsers"]["patient"].new_context(locale=patient_locale, viewport=DESKTOP).new_page()
    doctor_context = world["browsers"]["doctor"].new_context(locale=doctor_locale, viewport=DESKTOP)
    name, value = practitioner_cookie(people.doc).split("=", 1)
    doctor_context.add_cookies([{"name": name, "value": value, "url": world["doctor_origin"]}])
    doctor = doctor_context.new_page()
    check_in(patient, issued.link, "Robin")
    enter_waiting_room(patient)
    open_call(doctor, world["doctor_origin"], planned.appointment.public_id)
    admit(doctor, "Robin")
    patient.wait_for_selector("[data-view=call]:not([hidden])")
    return patient, doctor


def both_sizes(page, name: str) -> None:
    """Screenshots of the same state at desktop and phone size."""
    for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        screenshot(page, f"{name}-{size}")
    page.set_viewport_size(DESKTOP)


def relay_consents(host) -> list:
    host.state.db.session.expire_all()
    return list(host.state.db.session.scalars(select(ConsentRecord).where(ConsentRecord.kind == ConsentKind.RELAY)))


def test_agreeing_connects_through_the_relay(firewalled):
    patient, doctor = into_call(firewalled, "en-GB", "de-DE")
    for page in (patient, doctor):
        page.wait_for_selector("[data-relay-dialog][open]", timeout=45000)
    both_sizes(patient, "join-relay-consent-en")
    both_sizes(doctor, "practice-relay-consent-de")
    for page, name in ((patient, "relay question (en)"), (doctor, "relay question (de)")):
        assert not serious_findings(page, name)  # axe (WCAG 2.1 AA) on the open dialog
    assert "cannot read or record" in patient.inner_text("[data-relay-dialog]")
    assert "weder lesen noch aufzeichnen" in doctor.inner_text("[data-relay-dialog]")
    assert relay_consents(firewalled["host"]) == []
    patient.get_by_role("button", name="Yes, use the relay").click()
    doctor.get_by_role("button", name="Ja, über den Server verbinden").click()
    for page in (patient, doctor):
        page.wait_for_function(
            "() => { const v = document.querySelector('video[data-remote]'); return v && v.videoWidth > 0 }",
            timeout=45000,
        )
        page.wait_for_selector("[data-connection][data-path=relayed]", timeout=20000)
    both_sizes(patient, "join-call-relayed-en")
    both_sizes(doctor, "practice-call-relayed-de")
    assert len(relay_consents(firewalled["host"])) == 1  # the patient's: text version and time, no name


def test_declining_explains_and_requests_nothing(firewalled):
    patient, doctor = into_call(firewalled, "de-DE", "en-GB")
    for page in (patient, doctor):
        page.wait_for_selector("[data-relay-dialog][open]", timeout=45000)
    both_sizes(patient, "join-relay-consent-de")
    both_sizes(doctor, "practice-relay-consent-en")
    patient.get_by_role("button", name="Nein", exact=True).click()
    doctor.get_by_role("button", name="No", exact=True).click()
    for page in (patient, doctor):
        page.wait_for_selector("[data-relay-declined]:not([hidden])")
    assert (
        "Ohne Weiterleitung über den Server der Praxis ist in diesem Netz keine Verbindung möglich"
        in patient.inner_text("[data-relay-declined]")
    )
    assert "Without the relay no connection is possible" in doctor.inner_text("[data-relay-declined]")
    both_sizes(patient, "join-relay-declined-de")
    both_sizes(doctor, "practice-relay-declined-en")
    time.sleep(3)
    assert patient.evaluate("() => (document.querySelector('video[data-remote]')?.videoWidth || 0)") == 0
    assert relay_consents(firewalled["host"]) == []
