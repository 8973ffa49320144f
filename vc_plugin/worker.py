"""The RQ worker that ``flask vc worker`` runs: each job in a fresh app context.

RQ stores the names of :func:`run_from_outbox` and :func:`rq_failure_hook` with every job;
``vc_plugin.jobs`` keeps the names that jobs queued by earlier versions carry.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask
from rq import SimpleWorker
from sqlalchemy import select

from .adapters.jobs import resolve
from .core.models import OutboxJob
from .web.state import EXTENSION_KEY, vc_state

log = logging.getLogger(__name__)


def _outbox_row(job_id: str) -> Any:
    return vc_state().db.session.scalars(select(OutboxJob).where(OutboxJob.job_id == job_id)).first()


def run_from_outbox(job_id: str) -> None:
    """What a worker runs: the task stored in the outbox; the row goes when the task succeeded."""
    row = _outbox_row(job_id)
    if row is None:
        return  # done already, or purged after its time: nothing to do
    resolve(row.task)(*json.loads(row.args))
    session = vc_state().db.session
    session.delete(row)
    session.commit()


def rq_failure_hook(job: Any, connection: Any, *exc_info: Any) -> None:
    """RQ calls this on every failure; we act only when no retry is left."""
    if job.retries_left:
        return
    row = _outbox_row(job.id)
    if row is None:
        return
    if row.on_final_failure:
        try:
            resolve(row.on_final_failure)(*json.loads(row.args))
        except Exception:
            log.exception("failure handler of a job failed")
    session = vc_state().db.session
    session.delete(row)
    session.commit()


class AppContextWorker(SimpleWorker):
    """Runs jobs in this process (no fork), each inside its own Flask app context.

    Not forking keeps database connection pools sound; a fresh context per job means a
    fresh database session, so nothing leaks from one job into the next.
    """

    flask_app: Flask

    def perform_job(self, job: Any, queue: Any, *args: Any, **kwargs: Any) -> bool:
        with self.flask_app.app_context():
            return super().perform_job(job, queue, *args, **kwargs)

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()
        recover_jobs(self.flask_app)


def recover_jobs(app: Flask) -> int:
    """Jobs that Redis lost (a restart) or a killed worker left behind go back on the queue."""
    with app.app_context():
        try:
            return app.extensions[EXTENSION_KEY].jobs.recover()
        except Exception:
            log.exception("recovering queued jobs failed")
            return 0


def run_worker(app: Flask, *, burst: bool = False, log_level: str = "INFO") -> None:
    state = app.extensions[EXTENSION_KEY]
    queue = state.jobs.rq_queue
    worker = AppContextWorker(
        [queue],
        connection=state.redis,
        log_job_description=False,  # descriptions would include the (sealed) arguments
        maintenance_interval=30,  # finds jobs of killed workers sooner than RQ's 10 minutes
    )
    worker.flask_app = app
    recover_jobs(app)
    worker.work(burst=burst, with_scheduler=True, logging_level=log_level)
