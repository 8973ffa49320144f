"""The RQ worker that ``flask vc worker`` runs: each job in a fresh app context."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from rq import SimpleWorker

from .state import EXTENSION_KEY

log = logging.getLogger(__name__)


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
