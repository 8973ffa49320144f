"""The events contract with case tools: signals with exactly their documented fields, and signed
webhooks that carry the same, retried until the receiver accepts them."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import fields
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.hosts import HostApp, make_host_app
from tests.support.people import make_people
from tests.support.processes import wait_for
from vc_plugin import ConfigurationError, signals
from vc_plugin.adapters.webhooks import signature
from vc_plugin.domain.purge import PurgeReport

DOCS = Path(__file__).resolve().parents[1] / "docs" / "integration.md"
SECRET = "s3cret-for-the-case-tool-0123456789abcdef"
PATIENT_EMAIL = "patientin@example.org"


def documented_signals() -> dict[str, set[str]]:
    """The table in docs/integration.md: | `event-name` | `signal_name` | when | `field`, `field` |"""
    section = DOCS.read_text(encoding="utf-8").split("<!-- signals:start -->", 1)[1].split("<!-- signals:end -->")[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        table[cells[0].strip("`")] = set(re.findall(r"`([a-z_]+)`", cells[3]))
    return table


def test_every_signal_is_documented_with_exactly_its_fields():
    assert documented_signals() == {signal.name: set(names) for signal, names in signals.FIELDS.items()}
    assert set(signals.FIELDS[signals.data_purged]) == {field.name for field in fields(PurgeReport)}


def test_a_signal_with_other_fields_than_documented_is_refused():
    received: list[tuple[object, dict]] = []

    def receive(sender: object, **fields: object) -> None:
        received.append((sender, fields))

    announce = signals.Announcer(sender="the host app")
    with signals.appointment_cancelled.connected_to(receive):
        with pytest.raises(TypeError, match="appointment-cancelled sent with"):
            announce(signals.appointment_cancelled, appointment_id="a", name="Frau Müller")
        assert received == []
        announce(signals.appointment_cancelled, appointment_id="a")
    assert received == [("the host app", {"appointment_id": "a"})]


# --- webhooks ----------------------------------------------------------------------------------------


class Receiver:
    """A case tool's endpoint: records what arrives; refuses the first ``refuse`` attempts with 503."""

    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.received: list[tuple[dict[str, str], str]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                with receiver.lock:
                    receiver.received.append((dict(self.headers), body))
                    refused = receiver.refuse > 0
                    receiver.refuse -= 1
                self.send_response(503 if refused else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/vc-events"

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _, body in self.received]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(refuse=1)
    yield server
    server.stop()


def webhook_host(database_url: str, receiver: Receiver, **extra: Any) -> HostApp:
    host = make_host_app(
        database_url,
        VC_WEBHOOK_URL=receiver.url,
        VC_WEBHOOK_SECRET=SECRET,
        VC_WEBHOOK_BACKOFF_SECONDS=[0],
        **extra,
    )
    host.vc.create_tables(host.app)
    return host


def test_webhooks_are_signed_carry_the_documented_fields_and_are_retried(database_url, receiver):
    host = webhook_host(database_url, receiver)
    try:
        with host.app.app_context():
            people = make_people(host.state)
            start = host.state.clock.now() + timedelta(hours=2)
            planned = host.vc.create_appointment(
                practitioner=people.doc.public_id,
                starts_at=start,
                ends_at=start + timedelta(minutes=30),
                participants=[{"email": PATIENT_EMAIL, "language": "de"}],
            )
            assert host.state.jobs.wait_idle()
            host.vc.cancel_appointment(planned.appointment.public_id)
            assert host.state.jobs.wait_idle()
            doctor = people.doc.public_id
            appointment = planned.appointment.public_id
            invitation, code = planned.invitations[0].invitation.public_id, planned.invitations[0].code
        wanted = {"appointment-created", "invitation-queued", "invitation-sent", "appointment-cancelled"}
        wait_for(lambda: wanted <= {event["event"] for event in receiver.events()}, 10, what="the webhooks")
    finally:
        host.close()

    contract = {signal.name: set(names) for signal, names in signals.FIELDS.items()}
    for headers, body in receiver.received:
        event = json.loads(body)
        assert set(event) == {"event", "id", "at", "data"}
        assert set(event["data"]) == contract[event["event"]], event
        assert headers["X-VC-Event"] == event["event"]
        timestamp = int(re.match(r"t=(\d+),v1=[0-9a-f]{64}$", headers["X-VC-Signature"]).group(1))
        assert headers["X-VC-Signature"] == signature(SECRET, body, timestamp), "signed with the shared secret"
        forged = hmac.new(b"another secret", f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
        assert headers["X-VC-Signature"] != f"t={timestamp},v1={forged}"
        assert PATIENT_EMAIL not in body and "Maria" not in body and code not in body
    by_event = {event["event"]: event for event in receiver.events()}
    assert by_event["invitation-sent"]["data"] == {"appointment_id": appointment, "invitation_id": invitation}
    assert by_event["appointment-created"]["data"]["practitioner_id"] == doctor
    # The receiver refused the very first attempt: the same event came again, with the same id.
    refused, *later = receiver.events()
    assert [event for event in later if event["id"] == refused["id"]] == [refused], "the same event, the same id"


def test_only_the_chosen_events_are_sent(database_url, receiver):
    receiver.refuse = 0
    host = webhook_host(database_url, receiver, VC_WEBHOOK_EVENTS=["appointment-cancelled"])
    try:
        with host.app.app_context():
            people = make_people(host.state)
            start = host.state.clock.now() + timedelta(hours=2)
            planned = host.vc.create_appointment(
                practitioner=people.doc.public_id, starts_at=start, ends_at=start + timedelta(minutes=30)
            )
            host.vc.cancel_appointment(planned.appointment.public_id)
            assert host.state.jobs.wait_idle()
        wait_for(receiver.events, 10, what="the cancellation webhook")
        assert [event["event"] for event in receiver.events()] == ["appointment-cancelled"]
    finally:
        host.close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"VC_WEBHOOK_URL": "https://tool.example/in", "VC_WEBHOOK_SECRET": "short"}, "at least 32 characters"),
        ({"VC_WEBHOOK_URL": "ftp://tool.example/in", "VC_WEBHOOK_SECRET": SECRET}, "https://"),
        (
            {"VC_WEBHOOK_URL": "https://tool.example/in", "VC_WEBHOOK_SECRET": SECRET, "VC_WEBHOOK_EVENTS": ["x"]},
            "unknown events",
        ),
    ],
)
def test_webhook_settings_that_cannot_work_stop_start_up(settings, message):
    with pytest.raises(ConfigurationError, match=message):
        make_host_app("sqlite://", **settings)
