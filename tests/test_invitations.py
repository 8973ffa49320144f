"""Invitations end to end: a real Redis, a real `flask vc worker` process and a real SMTP server."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from icalendar import Calendar
from redis import Redis
from sqlalchemy import select

from tests.support import workers
from tests.support.hosts import make_host_app
from tests.support.processes import Process, free_port, wait_for
from tests.support.scan import database_holds, redis_holds
from tests.support.smtp import SmtpServer
from tests.support.web import csrf, sign_in_as
from vc_plugin.core.crypto import verify_code
from vc_plugin.core.models import Delivery, Invitation
from vc_plugin.domain.access import Principal

pytestmark = pytest.mark.slow

PATIENT = "patient.mueller@example.org"
RELATIVE = "relative.schulz@example.org"
SMS_PATIENT = "sms.patient@example.org"


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def pipeline(pg_url, redis_url, smtp, tmp_path, clock, monkeypatch):
    sms_file = tmp_path / "sms.txt"
    monkeypatch.setenv("VC_TEST_SMS_FILE", str(sms_file))
    config = {
        "VC_REDIS_URL": redis_url,
        "VC_SMTP_URL": smtp.url,
        "VC_PUBLIC_URL": "http://127.0.0.1:5999/",
        "VC_SMS_SENDER": "tests.support.sms.FileSms",
        "VC_INVITATION_RETRIES": 1,
        "VC_INVITATION_BACKOFF_SECONDS": [0],
        "VC_MAIL_SENDER": "Praxis Nord <praxis@example.net>",
    }
    host = make_host_app(pg_url, clock=clock, **config)

    def run_worker(overrides: dict | None = None) -> Process:
        log = tmp_path / f"worker-{free_port()}.log"
        extra = {"VC_TEST_SMS_FILE": str(sms_file)}
        return workers.run_worker(pg_url, {**config, **(overrides or {})}, log, timeout=90, env=extra)

    host.run_worker = run_worker  # type: ignore[attr-defined]
    host.sms_file = sms_file  # type: ignore[attr-defined]
    yield host
    host.close()


def _plan_by_api(client, token, practitioner, clock, email, **participant):
    start = clock.now() + timedelta(minutes=20)
    response = client.post(
        "/vc/api/v1/appointments",
        json={
            "practitioner": practitioner,
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(minutes=30)).isoformat(),
            "participants": [{"email": email, "language": "de", **participant}],
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.json
    return response.json


def test_invitations_arrive_with_link_code_and_calendar_and_leave_no_address(pipeline, smtp, clock, pg_url, redis_url):
    from tests.support.people import make_people

    app = pipeline.app
    with app.app_context():
        state = pipeline.state
        people = make_people(state)
        _, token = state.api_tokens.create("praxis-nord", "case tool")
        client = app.test_client()
        by_api = _plan_by_api(client, token, people.doc.public_id, clock, PATIENT)

        page_client = app.test_client()
        sign_in_as(page_client, people.doc, clock.now().timestamp())
        local = (clock.now() + timedelta(hours=3)).astimezone(state.settings.zone)
        planned_page = page_client.post(
            "/vc/practice/appointments/new",
            data={
                "csrf_token": csrf(page_client, "/vc/practice/appointments/new"),
                "date": local.strftime("%Y-%m-%d"),
                "time": local.strftime("%H:%M"),
                "duration": "45",
                "p0-kind": "relative",
                "p0-language": "en",
                "p0-email": RELATIVE,
            },
        )
        assert planned_page.status_code == 200

        # Queued: the addresses exist only sealed inside the job payloads.
        redis = Redis.from_url(redis_url)
        for address in (PATIENT, RELATIVE):
            assert redis_holds(redis, address) == []
            assert database_holds(pg_url, address) == []
        assert len(redis_holds(redis, "run_from_outbox")) >= 2  # the jobs are really there

        pipeline.run_worker()
        wait_for(lambda: len(smtp.received()) == 2, 10, what="two mails")

        messages = {recipients[0]: message for recipients, message in smtp.received()}
        german, english = messages[PATIENT], messages[RELATIVE]
        assert german["Subject"].startswith("Ihre Videosprechstunde am")
        assert english["Subject"].startswith("Your video consultation on")
        assert german["From"] == "Praxis Nord <praxis@example.net>"

        text = german.get_body(preferencelist=("plain",)).get_content()
        html = german.get_body(preferencelist=("html",)).get_content()
        assert "Dr. Maria Berg" in text and "Dr. Maria Berg" in html
        link = re.search(r"(http://127\.0\.0\.1:5999/vc/join/[\w-]+)#code=([A-Z0-9-]+)", text)
        assert link, text
        code = link.group(2)
        assert f"Zugangscode: {code}" in text and code in html
        assert "Kamera" in text and "aufgezeichnet" in text  # what is needed, and the privacy line

        [attachment] = list(german.iter_attachments())
        assert attachment.get_content_type() == "text/calendar"
        event = Calendar.from_ical(attachment.get_content()).walk("VEVENT")[0]
        assert event.decoded("dtstart") == state.appointments.get(Principal.of(people.doc), by_api["id"]).starts_at
        assert code not in attachment.get_content() and link.group(1) in str(event.get("location"))

        # The link works and the code belongs to it.
        invitation = state.db.session.scalars(
            select(Invitation).where(Invitation.public_id == by_api["invitations"][0]["id"])
        ).one()
        assert client.get(link.group(1).replace("http://127.0.0.1:5999", "")).status_code == 200
        assert verify_code(code, invitation.code_hash)

        # Sent: marked so, and the addresses are gone from Redis entirely.
        state.db.session.expire_all()
        assert {i.delivery for i in state.db.session.scalars(select(Invitation))} == {Delivery.SENT}
        for address in (PATIENT, RELATIVE):
            assert redis_holds(redis, address) == []
            assert database_holds(pg_url, address) == []
        assert redis_holds(redis, "run_from_outbox") == [], "finished jobs must not linger"
        from vc_plugin.core.models import OutboxJob

        assert state.db.session.scalars(select(OutboxJob)).all() == [], "the outbox empties when jobs are done"


def test_code_by_sms_sends_the_link_by_mail_and_the_code_by_sms(pipeline, smtp, clock):
    from tests.support.people import make_people

    with pipeline.app.app_context():
        state = pipeline.state
        people = make_people(state)
        _, token = state.api_tokens.create("praxis-nord", "case tool")
        created = _plan_by_api(
            pipeline.app.test_client(),
            token,
            people.doc.public_id,
            clock,
            SMS_PATIENT,
            phone="+49 151 2345678",
            code_by_sms=True,
        )
        pipeline.run_worker()
        code = created["invitations"][0]["code"]
        [(_, message)] = smtp.received()
        text = message.get_body(preferencelist=("plain",)).get_content()
        assert code not in text and "#code=" not in text and "per SMS" in text
        phone, sms = Path(pipeline.sms_file).read_text().strip().split("\t")
        assert phone == "+491512345678" and code in sms
        state.db.session.expire_all()
        assert state.db.session.scalars(select(Invitation)).one().delivery is Delivery.SENT


def test_smtp_down_retries_then_marks_failed_and_keeps_no_address(pipeline, clock, redis_url, pg_url):
    from tests.support.people import make_people

    with pipeline.app.app_context():
        state = pipeline.state
        people = make_people(state)
        _, token = state.api_tokens.create("praxis-nord", "case tool")
        _plan_by_api(pipeline.app.test_client(), token, people.doc.public_id, clock, PATIENT)
        worker = pipeline.run_worker({"VC_SMTP_URL": f"smtp://127.0.0.1:{free_port()}"})
        assert worker.output.count("MailDeliveryError") >= 2  # first attempt and one retry
        state.db.session.expire_all()
        assert state.db.session.scalars(select(Invitation)).one().delivery is Delivery.FAILED
        redis = Redis.from_url(redis_url)
        assert redis_holds(redis, PATIENT) == []
        assert database_holds(pg_url, PATIENT) == []
        for key in redis.scan_iter("rq:job:*"):
            assert 0 < redis.ttl(key) <= 24 * 3600, "a failed job must expire within a day"
        assert PATIENT not in worker.output
        # The practitioner sees the failure on the appointment's page (and never the address).
        invitation = state.db.session.scalars(select(Invitation)).one()
        client = pipeline.app.test_client()
        sign_in_as(client, people.doc, clock.now().timestamp())
        page = client.get(
            f"/vc/practice/appointments/{invitation.appointment.public_id}", headers={"Accept-Language": "de"}
        ).get_data(as_text=True)
        assert "fehlgeschlagen" in page and PATIENT not in page
