"""Retention: the clock moves past each period, the purge runs (CLI, embedded timer, a real RQ
worker, `rq cron`), and exactly what the retention table allows remains."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

from redis import Redis
from sqlalchemy import func, select

from tests.support.hosts import make_host_app
from tests.support.people import make_people
from tests.support.processes import Process, free_port, python, wait_for
from tests.support.scan import redis_holds
from tests.support.workers import run_worker
from vc_plugin import tasks
from vc_plugin.adapters.jobs import JobSpec
from vc_plugin.adapters.presence import Member, Room
from vc_plugin.adapters.thread_jobs import RepeatingTimer
from vc_plugin.core.clock import FrozenClock
from vc_plugin.core.models import (
    Appointment,
    AppointmentKind,
    AppointmentState,
    AuditEvent,
    ConsentRecord,
    Delivery,
    Invitation,
    OutboxJob,
)
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import AppointmentIn, ParticipantIn
from vc_plugin.domain.invitations import InvitationPayload
from vc_plugin.domain.purge import Purger

PATIENT = "retention.patient@example.org"


def plan(state, people, start, label=None, **participant):
    return state.appointments.plan(
        Principal.of(people.doc),
        AppointmentIn(
            starts_at=start,
            ends_at=start + timedelta(minutes=30),
            label=label,
            participants=[ParticipantIn(**participant)],
        ),
    )


def check_in(state, issued) -> None:
    state.check_in.check_in(
        issued.invitation.public_id, code=issued.code, name="Frau Test", consent=True, language="de"
    )


def counts(state) -> dict[str, int]:
    session = state.db.session
    session.expire_all()
    return {
        model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Appointment, Invitation, ConsentRecord, OutboxJob)
    }


def actions(state) -> list[str]:
    return list(state.db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_each_kind_of_data_lives_exactly_as_long_as_the_table_says(app, state, people, clock):
    soon = plan(
        state, people, clock.now() + timedelta(minutes=10), label="Kontrolle", store_contact=True, email=PATIENT
    )
    later = plan(state, people, clock.now() + timedelta(days=60))
    check_in(state, soon.invitations[0])
    # A job for the later appointment's invitation that never ran (its worker was gone for a day).
    stuck = later.invitations[0]
    stuck.invitation.delivery, stuck.invitation.delivery_key = Delivery.QUEUED, "k1"
    sealed = InvitationPayload(key="k1", code=stuck.code, link=stuck.link, email=PATIENT, phone=None).seal(
        state.keyring
    )
    state.db.session.add(
        OutboxJob(
            job_id="vc-stuck",
            task="vc_plugin.tasks.send_invitation",
            args=json.dumps([stuck.invitation.public_id, sealed]),
            on_final_failure="vc_plugin.tasks.invitation_failed",
            created_at=clock.now(),
        )
    )
    state.db.session.commit()
    assert counts(state) == {"vc_appointment": 2, "vc_invitation": 2, "vc_consent": 1, "vc_outbox": 1}
    runner = app.test_cli_runner()

    # 2 hours: the consultation is over; the name given at check-in is gone with the presence grace.
    clock.advance(timedelta(hours=2))
    report = state.purger.run()
    assert report.total == report.presence == 1
    # 23 hours: a queued job may still be sent; nothing is due.
    clock.advance(timedelta(hours=21))
    assert "Would delete: appointments: 0" in runner.invoke(args=["vc", "purge", "--dry-run"]).output
    assert state.purger.run().total == 0

    # 25 hours: the stuck job is past the failed-job period; its failure handler marks the invitation failed.
    clock.advance(timedelta(hours=2))
    result = runner.invoke(args=["vc", "purge"])
    assert result.exit_code == 0 and "outbox jobs: 1" in result.output
    assert counts(state)["vc_outbox"] == 0
    assert state.db.session.get(Invitation, stuck.invitation.id).delivery is Delivery.FAILED

    # One minute before 90 days after the planned end: the appointment stays.
    end = soon.appointment.ends_at
    clock.set(end + timedelta(days=90) - timedelta(minutes=1))
    assert state.purger.run(dry_run=True).appointments == 0

    # 90 days after the end: the appointment goes with its invitation, consent and encrypted fields;
    # audit events older than 90 days go too. The later appointment stays.
    clock.set(end + timedelta(days=90))
    dry = state.purger.run(dry_run=True)
    assert (dry.appointments, dry.invitations, dry.consents) == (1, 1, 1)
    before = counts(state)
    assert before == {"vc_appointment": 2, "vc_invitation": 2, "vc_consent": 1, "vc_outbox": 0}, (
        "a dry run deletes nothing"
    )
    report = state.purger.run()
    assert (report.appointments, report.invitations, report.consents) == (1, 1, 1)
    assert report.audit_events == dry.audit_events > 0
    assert counts(state) == {"vc_appointment": 1, "vc_invitation": 1, "vc_consent": 0, "vc_outbox": 0}
    remaining = state.db.session.scalars(select(Appointment.public_id)).all()
    assert remaining == [later.appointment.public_id]
    oldest = state.db.session.scalar(select(func.min(AuditEvent.at)))
    assert oldest >= clock.now() - timedelta(days=90)

    # Idempotent: a second run finds nothing, and says so in its audit event (counts only).
    assert state.purger.run().total == 0
    [last] = state.db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    assert last.action == "retention.purged" and set(last.details.values()) == {0}
    assert all(isinstance(v, int) for v in last.details.values())


def test_a_shorter_period_applies_to_appointments_planned_under_a_longer_one(database_url, clock):
    long = make_host_app(database_url, clock=clock)
    with long.app.app_context():
        people = make_people(long.state)
        planned = plan(long.state, people, clock.now() + timedelta(minutes=10))
        end = planned.appointment.ends_at
    long.close()
    short = make_host_app(database_url, clock=clock, VC_RETENTION_METADATA_DAYS=30)
    try:
        with short.app.app_context():
            clock.set(end + timedelta(days=30, minutes=1))
            assert short.state.purger.run().appointments == 1
    finally:
        short.close()


def test_several_purges_at_once_delete_each_row_once(pg_url, clock):
    host = make_host_app(pg_url, clock=clock)
    try:
        with host.app.app_context():
            people = make_people(host.state)
            session = host.state.db.session
            old = clock.now() - timedelta(days=200)
            session.add_all(
                Appointment(
                    public_id=f"old{n:05d}",
                    organisation_id=people.doc.organisation_id,
                    practitioner_id=people.doc.id,
                    starts_at=old,
                    ends_at=old + timedelta(minutes=30),
                    kind=AppointmentKind.SINGLE,
                    state=AppointmentState.ENDED,
                    created_at=old,
                    delete_after=old + timedelta(days=90),
                )
                for n in range(2400)
            )
            session.commit()
        state = host.state
        purgers = [
            Purger(
                session=lambda: state.db.session,
                clock=state.clock,
                settings=state.settings,
                audit=state.audit,
                presence=state.presence,
                redis=state.redis,
                announce=state.announce,
                batch_size=100,
            )
            for _ in range(3)
        ]
        results: list[int] = []
        errors: list[BaseException] = []

        def run(purger) -> None:
            try:
                with host.app.app_context():
                    results.append(purger.run().appointments)
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=run, args=(p,)) for p in purgers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert sum(results) == 2400 and len(results) == 3
        with host.app.app_context():
            assert counts(host.state)["vc_appointment"] == 0
    finally:
        host.close()


def test_the_embedded_mode_purges_on_a_timer_and_redis_mode_leaves_it_to_cron(database_url, redis_url, clock):
    embedded = make_host_app(database_url, clock=clock)
    with_redis = make_host_app(database_url, clock=clock, VC_REDIS_URL=redis_url)
    try:
        assert embedded.state.purge_timer is not None and with_redis.state.purge_timer is None
    finally:
        embedded.close()
        with_redis.close()
    ran = threading.Event()
    timer = RepeatingTimer(ran.set, interval_seconds=0.05, name="purge").start()
    try:
        assert ran.wait(5), "the timer never ran the purge"
    finally:
        timer.close()


# --- Redis: presence, failed jobs, leaked keys, and the purge as a job ----------------------------------


def test_redis_holds_nothing_past_its_time(pg_url, redis_url, tmp_path):
    clock = FrozenClock(datetime.now(UTC))
    # No mail server listens there: the invitation job fails for good.
    config = {"VC_REDIS_URL": redis_url, "VC_SMTP_URL": f"smtp://127.0.0.1:{free_port()}", "VC_INVITATION_RETRIES": 0}
    host = make_host_app(pg_url, clock=clock, **config)
    redis = Redis.from_url(redis_url)
    try:
        with host.app.app_context():
            state = host.state
            people = make_people(state)
            planned = plan(state, people, clock.now() + timedelta(minutes=10), email=PATIENT)
            run_worker(pg_url, config, tmp_path / "worker.log")
            failed = state.jobs.rq_queue.failed_job_registry
            assert failed.count == 1
            # Presence of a patient whose process died without cleaning up, and two keys without expiry.
            now = clock.now().timestamp()
            state.presence.open_room(
                Room("gone", people.doc.organisation_id, people.doc.public_id, now, now + 1800, now + 7200)
            )
            state.presence.put("gone", Member("m1", "patient", "Frau Vergessen", "waiting", now - 600), now - 600)
            redis.set("vc:leaked", "x")
            redis.set("LIMITS:vc:limiter/leaked", "1")

            report = state.purger.run()
            assert report.failed_jobs == 0, "a failed job stays for its 24 hours"
            assert report.presence == 1 and report.orphaned_keys == 2
            assert redis_holds(redis, "Frau Vergessen") == []

            clock.advance(timedelta(hours=25))
            assert state.purger.run().failed_jobs == 1
            assert failed.count == 0
            assert (
                redis_holds(redis, PATIENT) == []
                and redis_holds(redis, planned.invitations[0].invitation.public_id) == []
            )
    finally:
        redis.close()
        host.close()


def test_the_purge_runs_as_a_job_on_a_real_worker_and_from_rq_cron(pg_url, redis_url, tmp_path):
    clock = FrozenClock(datetime.now(UTC))
    config = {"VC_REDIS_URL": redis_url}
    host = make_host_app(pg_url, clock=clock, **config)
    try:
        with host.app.app_context():
            state = host.state
            people = make_people(state)
            first = plan(state, people, clock.now() + timedelta(minutes=10))
            second = plan(state, people, clock.now() + timedelta(days=10))
            state.jobs.enqueue(JobSpec(tasks.purge, ()))
            run_worker(
                pg_url,
                config,
                tmp_path / f"worker-{free_port()}.log",
                now=first.appointment.ends_at + timedelta(days=91),
            )
            assert state.db.session.scalars(select(Appointment.public_id)).all() == [second.appointment.public_id]

            # rq cron enqueues the purge at once and then every interval; a worker runs it.
            cron = Process(
                python("-m", "rq.cli", "cron", "vc_plugin.cron", "--url", redis_url),
                env={"VC_JOB_QUEUE_NAME": state.settings.job_queue_name},
                log=tmp_path / "cron.log",
            )
            try:
                wait_for(lambda: len(state.jobs.rq_queue) > 0, 30, what="rq cron to enqueue the purge")
            finally:
                cron.stop()
            run_worker(
                pg_url,
                config,
                tmp_path / f"worker-{free_port()}.log",
                now=second.appointment.ends_at + timedelta(days=91),
            )
            state.db.session.expire_all()
            assert state.db.session.scalars(select(Appointment.public_id)).all() == []
            assert "retention.purged" in actions(state)
    finally:
        host.close()


def test_a_job_older_than_a_failed_job_may_live_is_not_brought_back(pg_url, redis_url):
    clock = FrozenClock(datetime.now(UTC))
    host = make_host_app(pg_url, clock=clock, VC_REDIS_URL=redis_url)
    try:
        with host.app.app_context():
            session = host.state.db.session
            for job_id, age in (("vc-fresh", timedelta(seconds=30)), ("vc-expired", timedelta(hours=25))):
                session.add(
                    OutboxJob(
                        job_id=job_id,
                        task="vc_plugin.tasks.purge",
                        args="[]",
                        created_at=clock.now() - age,
                    )
                )
            session.commit()
            assert host.state.jobs.recover() == 1
            assert host.state.jobs.rq_queue.job_ids == ["vc-fresh"]
            assert host.state.purger.run().outbox_jobs == 1
            assert session.scalars(select(OutboxJob.job_id)).all() == ["vc-fresh"]
    finally:
        host.close()
