"""Operator commands as operators run them: a fresh key, tables for hosts without Flask-Migrate,
key rotation; and the development sign-in that only exists in debug mode on this machine."""

from __future__ import annotations

import base64
from datetime import timedelta

from sqlalchemy import create_engine, inspect

from tests.support.hosts import TEST_KEYS, make_host_app
from tests.support.people import make_people
from tests.support.web import csrf
from vc_plugin.core.models import Base
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import AppointmentIn


def test_generate_key_prints_a_usable_master_key(app):
    output = app.test_cli_runner().invoke(args=["vc", "generate-key"]).output.strip()
    assert len(base64.urlsafe_b64decode(output + "=" * (-len(output) % 4))) == 32


def test_migrate_creates_every_table_on_an_empty_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    host = make_host_app(url)
    try:
        result = host.app.test_cli_runner().invoke(args=["vc", "migrate"])
        assert result.exit_code == 0 and "up to date" in result.output
        tables = set(inspect(create_engine(url)).get_table_names())
        assert {t.name for t in Base.metadata.sorted_tables} <= tables
        assert host.app.test_cli_runner().invoke(args=["vc", "migrate"]).exit_code == 0, "running twice is fine"
    finally:
        host.close()


def test_rotate_keys_lets_the_old_master_key_go(database_url, clock):
    old = make_host_app(database_url, clock=clock, VC_ENCRYPTION_KEYS=[TEST_KEYS[0]])
    with old.app.app_context():
        people = make_people(old.state)
        start = clock.now() + timedelta(minutes=10)
        planned = old.state.appointments.plan(
            Principal.of(people.doc),
            AppointmentIn(starts_at=start, ends_at=start + timedelta(minutes=20), label="Knie"),
        )
        appointment_id = planned.appointment.public_id
    old.close()

    both = make_host_app(database_url, clock=clock, VC_ENCRYPTION_KEYS=[TEST_KEYS[1], TEST_KEYS[0]])
    try:
        result = both.app.test_cli_runner().invoke(args=["vc", "rotate-keys", "--data-keys"])
        assert result.exit_code == 0 and "Re-wrapped 1 data key(s); re-encrypted 1 field(s)" in result.output
    finally:
        both.close()

    new_only = make_host_app(database_url, clock=clock, VC_ENCRYPTION_KEYS=[TEST_KEYS[1]])
    try:
        with new_only.app.app_context():
            people = make_people(new_only.state)
            book = new_only.state.appointments
            assert book.label(book.get(Principal.of(people.doc), appointment_id)) == "Knie"
    finally:
        new_only.close()


def test_development_sign_in_needs_debug_mode_and_this_machine(database_url):
    for debug, address, expected in ((False, "127.0.0.1", 404), (True, "192.0.2.10", 404), (True, "127.0.0.1", 302)):
        host = make_host_app(database_url, VC_DEV_LOGIN=True)
        host.app.debug = debug
        try:
            client = host.app.test_client()
            environ = {"REMOTE_ADDR": address}
            token = csrf(client, "/vc/auth/sign-in")
            response = client.post(
                "/vc/auth/dev", data={"csrf_token": token, "persona": "practitioner"}, environ_base=environ
            )
            assert response.status_code == expected, (debug, address)
        finally:
            host.close()
