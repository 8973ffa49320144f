"""Names that outlive a release: what queued jobs, outbox rows and operators' commands carry.

Jobs are handed to the queue as functions and their stored names are derived from them; the names
written by earlier versions (before the modules moved into layer folders) must still lead to the
same code, and a job queued by an earlier version must still run.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from redis import Redis
from rq import Callback, Queue
from sqlalchemy import select

from tests.support.hosts import make_host_app
from tests.support.people import make_people
from tests.support.processes import Process, python
from tests.support.workers import run_worker
from vc_plugin import gunicorn_logging, tasks, worker
from vc_plugin.adapters.jobs import JobSpec, resolve, task_name
from vc_plugin.core.clock import FrozenClock
from vc_plugin.core.config import ConfigurationError
from vc_plugin.core.models import Delivery, Invitation, OutboxJob
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import AppointmentIn, ParticipantIn
from vc_plugin.domain.invitations import InvitationPayload
from vc_plugin.domain.retention import PurgeSchedule

#: Every name an earlier version stored or documented, and what it must lead to today.
STORED = {
    "vc_plugin.tasks.send_invitation": tasks.send_invitation,
    "vc_plugin.tasks.send_code_by_sms": tasks.send_code_by_sms,
    "vc_plugin.tasks.invitation_failed": tasks.invitation_failed,
    "vc_plugin.webhooks.deliver": tasks.deliver_webhook,
    "vc_plugin.retention.purge_job": tasks.purge,
    "vc_plugin.jobs.run_from_outbox": worker.run_from_outbox,
    "vc_plugin.jobs.rq_failure_hook": worker.rq_failure_hook,
    "vc_plugin.gunicorn_logging.PrivacyLogger": gunicorn_logging.PrivacyLogger,
}


#: When the old release queued its job (the worker's clock stands there too).
MOMENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("name", sorted(STORED))
def test_every_stored_name_leads_to_the_same_code(name):
    assert resolve(name) is STORED[name]


@pytest.mark.parametrize("name", ["vc_plugin.tasks.no_such_task", "vc_plugin.no_such_module.task", "no_dots"])
def test_a_name_that_leads_nowhere_fails_loudly(name):
    with pytest.raises((ImportError, AttributeError, ValueError)):
        resolve(name)


def test_a_task_is_stored_under_the_name_it_is_found_by():
    assert task_name(tasks.send_invitation) == "vc_plugin.tasks.send_invitation"
    assert resolve(task_name(tasks.deliver_webhook)) is tasks.deliver_webhook


def test_a_task_a_worker_could_not_find_is_refused_when_queued(host):
    def nested(value: str) -> None: ...

    with pytest.raises(ValueError, match="not a module-level function"):
        task_name(nested)
    with pytest.raises(ValueError, match="not a module-level function"):
        task_name(lambda: None)
    with pytest.raises(ValueError, match="not a module-level function"), host.app.app_context():
        host.state.jobs.enqueue(JobSpec(nested, ("x",)))


def test_rq_cron_still_loads_its_schedule_module(tmp_path):
    script = "import vc_plugin.cron as cron; print(cron.SCHEDULE)"
    cron = Process(python("-c", script), env={"VC_PURGE_INTERVAL_MINUTES": "5"}, log=tmp_path / "cron.log")
    cron.popen.wait(timeout=60)
    assert cron.popen.returncode == 0, cron.output
    assert "interval_seconds=300" in cron.output and "queue='vc_plugin'" in cron.output


@pytest.mark.parametrize("value", ["0", "soon"])
def test_a_wrong_purge_interval_for_rq_cron_names_its_setting(value):
    with pytest.raises(ConfigurationError, match="VC_PURGE_INTERVAL_MINUTES"):
        PurgeSchedule.from_environment({"VC_PURGE_INTERVAL_MINUTES": value})
    assert PurgeSchedule.from_environment({}).interval_seconds == 15 * 60, "the default of the settings"


@pytest.mark.slow
def test_a_job_queued_by_the_previous_version_is_still_executed(pg_url, redis_url, tmp_path):
    """An outbox row and an RQ entry exactly as the flat-package version wrote them, run by today's worker."""
    clock = FrozenClock(MOMENT)
    config = {"VC_REDIS_URL": redis_url}
    host = make_host_app(pg_url, clock=clock, **config)
    try:
        with host.app.app_context():
            state = host.state
            people = make_people(state)
            start = clock.now() + timedelta(days=1)
            planned = state.appointments.plan(
                Principal.of(people.doc),
                AppointmentIn(starts_at=start, ends_at=start + timedelta(minutes=30), participants=[ParticipantIn()]),
            )
            issued = planned.invitations[0]
            invitation = issued.invitation
            invitation.delivery, invitation.delivery_key = Delivery.QUEUED, "old-release"
            payload = InvitationPayload("old-release", issued.code, issued.link, "old@example.org", None)
            state.db.session.add(
                OutboxJob(
                    job_id="vc-old-release",
                    task="vc_plugin.tasks.send_invitation",
                    args=json.dumps([invitation.public_id, payload.seal(state.keyring)]),
                    on_final_failure="vc_plugin.tasks.invitation_failed",
                    created_at=clock.now(),
                )
            )
            state.db.session.commit()
            Queue(state.settings.job_queue_name, connection=Redis.from_url(redis_url)).enqueue(
                "vc_plugin.jobs.run_from_outbox",
                args=("vc-old-release",),
                job_id="vc-old-release",
                result_ttl=0,
                on_failure=Callback("vc_plugin.jobs.rq_failure_hook"),
            )

            run = run_worker(pg_url, config, tmp_path / "worker.log", now=MOMENT)

            state.db.session.expire_all()
            assert state.db.session.get(Invitation, invitation.id).delivery is Delivery.SENT, run.output
            assert state.db.session.scalars(select(OutboxJob.job_id)).all() == [], "the old row ran and went"
    finally:
        host.close()
