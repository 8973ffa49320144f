"""No IP address, email address or display name in the logs: unit cases, and a whole consultation
with every process logging at DEBUG, scanned afterwards."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
from datetime import timedelta

import pytest
import requests

from tests.support.hosts import make_host_app
from tests.support.live import LiveServer
from tests.support.people import make_people
from tests.support.processes import Process, free_port, python
from tests.support.signal_client import check_in, consultation, practitioner_cookie
from tests.support.smtp import SmtpServer
from vc_plugin.core import log_privacy
from vc_plugin.core.log_privacy import scrub

PATIENT_EMAIL = "log.patientin@example.org"
PATIENT_NAME = "Frau Protokoll-Unsichtbar"

_IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
_COLON_TOKEN = re.compile(r"[0-9A-Fa-f:.%\w]*:[0-9A-Fa-f:.%\w]*:[0-9A-Fa-f:.%\w]*")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def addresses_in(text: str) -> list[str]:
    """Every full IPv4 or IPv6 address in ``text`` (checked by the ipaddress module, not by our scrubber)."""
    found = []
    for candidate in [*_IPV4.findall(text), *_COLON_TOKEN.findall(text)]:
        for piece in {candidate, candidate.strip("[]"), candidate.split("%")[0].strip("[]")}:
            try:
                address = ipaddress.ip_address(piece)
            except ValueError:
                continue
            found.append(str(address))
            break
    return found


@pytest.mark.parametrize(
    ("text", "dropped", "truncated"),
    [
        (
            '127.0.0.1 - - "GET /vc/ HTTP/1.1" 200',
            '[ip] - - "GET /vc/ HTTP/1.1" 200',
            '127.0.0.0/16 - - "GET /vc/ HTTP/1.1" 200',
        ),
        ("peer 203.0.113.77:5349 gone", "peer [ip]:5349 gone", "peer 203.0.0.0/16:5349 gone"),
        ("from ::1 and [2001:db8:4:5::42]:443", "from [ip] and [[ip]]:443", "from ::/32 and [2001:db8::/32]:443"),
        ("link-local fe80::1%eth0 seen", "link-local [ip] seen", "link-local fe80::/32 seen"),
        (
            "candidate:1 1 UDP 2122 192.168.1.5 54321 typ host",
            "candidate:1 1 UDP 2122 [ip] 54321 typ host",
            "candidate:1 1 UDP 2122 192.168.0.0/16 54321 typ host",
        ),
        ("mail to anna.berg+x@praxis-nord.example.org failed", "mail to [email] failed", "mail to [email] failed"),
    ],
)
def test_addresses_are_dropped_or_truncated(text, dropped, truncated):
    assert scrub(text, "drop") == dropped
    assert scrub(text, "truncate") == truncated
    assert addresses_in(scrub(text, "drop")) == []


@pytest.mark.parametrize(
    "text", ["version 1.2.3.4.5", "at 10:30:45", "2026-11-24T02:40:42+00:00", "300.1.1.1", "ratio 3:2", "dead:beef"]
)
def test_things_that_only_look_like_addresses_stay(text):
    assert scrub(text) == text


def test_every_record_of_ours_is_scrubbed_and_the_hosts_own_lines_stay(host, caplog):
    """Our loggers, anything logged while our routes are served, Werkzeug's request lines for our
    paths; the host's own lines (its start line, its pages) stay as the host wrote them."""
    assert log_privacy.installed_mode() == "drop"
    caplog.set_level(logging.DEBUG)
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.info('%s - - [24/Nov/2026 10:00:00] "%s" %s -', "198.51.100.23", "GET /vc/join/x HTTP/1.1", 200)
    logging.getLogger("vc_plugin.web.sockets").info("socket of %s for %s", "2001:db8::7", "someone@example.org")
    with host.app.test_request_context("/vc/practice/"):
        logging.getLogger("some.library").debug("connected to %s", "2001:db8::8")
        try:
            raise ConnectionError("peer 198.51.100.24 reset")
        except ConnectionError:
            logging.getLogger("host.app").exception("request from 198.51.100.25 failed")
    ours = "\n".join(logging.Formatter("%(message)s").format(record) for record in caplog.records)
    assert "[ip] - - [24/Nov/2026" in ours and "socket of [ip] for [email]" in ours and "connected to [ip]" in ours
    assert "peer [ip] reset" in ours and "request from [ip] failed" in ours
    assert addresses_in(ours) == [] and _EMAIL.findall(ours) == []

    caplog.clear()
    werkzeug.info(" * Running on http://127.0.0.1:5811")
    werkzeug.info('%s - - [24/Nov/2026 10:00:00] "%s" %s -', "198.51.100.26", "GET /intranet/ HTTP/1.1", 200)
    with host.app.test_request_context("/intranet/"):
        logging.getLogger("host.app").info("report for %s", "chef@intranet.example")
    theirs = "\n".join(logging.Formatter("%(message)s").format(record) for record in caplog.records)
    assert "Running on http://127.0.0.1:5811" in theirs, "the server's start line is not ours to rewrite"
    assert "198.51.100.26 - - [24/Nov/2026" in theirs and "report for chef@intranet.example" in theirs


def test_processes_of_our_own_scrub_every_record(host):
    """The RQ worker (``flask vc worker``) is ours: there every library's record is scrubbed too."""
    factory = logging.getLogRecordFactory()
    assert isinstance(factory, log_privacy._ScrubbingFactory)
    before = factory.scope
    message = ("rq.worker", logging.DEBUG, "", 0, "redis at %s", ("192.0.2.9",), None)
    try:
        assert factory(*message).getMessage() == "redis at 192.0.2.9", "in the host's process: not ours"
        log_privacy.install("drop")  # what `flask vc worker` does
        assert factory(*message).getMessage() == "redis at [ip]"
    finally:
        factory.scope = before


# --- a whole consultation at DEBUG -----------------------------------------------------------------


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.mark.slow
def test_a_whole_consultation_leaves_no_address_or_name_in_any_log(pg_url, redis_url, smtp, tmp_path, transport):
    config = {"VC_REDIS_URL": redis_url, "VC_SMTP_URL": smtp.url}
    debug = {"VC_TEST_LOG_LEVEL": "DEBUG"}
    server = LiveServer(
        pg_url,
        config,
        tmp_path,
        gunicorn_args=[
            "--logger-class",
            "vc_plugin.gunicorn_logging.PrivacyLogger",
            "--log-level",
            "debug",
            "--access-logfile",
            "-",
            "--error-logfile",
            "-",
        ],
        env=debug,
        signalling=transport,
    ).start()
    host = make_host_app(pg_url, VC_REDIS_URL=redis_url, VC_PUBLIC_URL=server.url + "/")
    try:
        with host.app.app_context():
            people = make_people(host.state)
            _, token = host.state.api_tokens.create("praxis-nord", "case tool")
            start = host.state.clock.now() + timedelta(minutes=5)
            doctor_id, doctor = people.doc.public_id, practitioner_cookie(people.doc)
        planned = requests.post(
            f"{server.url}/vc/api/v1/appointments",
            json={
                "practitioner": doctor_id,
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(minutes=30)).isoformat(),
                "participants": [{"email": PATIENT_EMAIL, "language": "de"}],
            },
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert planned.status_code == 201, planned.text
        body = planned.json()
        appointment = body["id"]
        invitation, code = body["invitations"][0]["id"], body["invitations"][0]["code"]

        worker = Process(
            python(
                "-m",
                "flask",
                "--app",
                "tests.support.worker_app:create_app",
                "vc",
                "worker",
                "--burst",
                "--log-level",
                "DEBUG",
            ),
            env={"VC_TEST_DATABASE_URL": pg_url, "VC_TEST_CONFIG": json.dumps(config), **debug},
            log=tmp_path / f"worker-{free_port()}.log",
        )
        worker.popen.wait(timeout=90)
        assert worker.popen.returncode == 0, worker.output
        assert [recipients for recipients, _ in smtp.messages] == [[PATIENT_EMAIL]]

        cookie = check_in(server.url, invitation, code, name=PATIENT_NAME)
        asyncio.run(consultation(server.ws_url, appointment, cookie, doctor))
        server.stop()

        logs = {"server": server.output, "worker": worker.output}
        assert "GET /vc/join/" in logs["server"], "the access log was written"
        assert "GET /vc/ws/room/" in logs["server"] and "DEBUG rq." in logs["worker"], "DEBUG logging was on"
        for name, text in logs.items():
            assert addresses_in(text) == [], f"{name} log holds an IP address"
            assert _EMAIL.findall(text) == [], f"{name} log holds an email address"
            assert PATIENT_NAME not in text and "Protokoll" not in text, f"{name} log holds the display name"
            assert "Dr. Maria Berg" not in text, f"{name} log holds the practitioner's name"
    finally:
        host.close()
        server.stop()
