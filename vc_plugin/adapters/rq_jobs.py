"""The production job queue: RQ with Redis, and a database outbox that survives a Redis restart."""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from rq import Callback, Queue, Retry, Worker
from rq.job import Job, JobStatus
from sqlalchemy import select

from ..core.models import OutboxJob
from .jobs import DEFAULT_BACKOFF, JobSpec, task_name

log = logging.getLogger(__name__)


class RQJobQueue:
    """Jobs for ``flask vc worker`` processes. Results are never kept.

    The job's task and arguments are written to the ``vc_outbox`` table first; the RQ job only
    names the outbox row. So a Redis restart (Redis may keep nothing on disk) loses no job:
    workers put jobs whose RQ entry is gone back on the queue (:meth:`recover`).
    """

    def __init__(
        self,
        connection: Any,
        queue_name: str,
        failure_ttl_seconds: int,
        session: Callable[[], Any],
        clock: Any,
        *,
        run_from_outbox: Callable[[str], None],
        on_failure: Callable[..., None],
    ) -> None:
        """``run_from_outbox`` and ``on_failure`` are what workers call: the entry points in ``worker.py``."""
        self._run_from_outbox = run_from_outbox
        self._on_failure = on_failure
        self._queue = Queue(queue_name, connection=connection)
        self._failure_ttl = failure_ttl_seconds
        self._session = session
        self._clock = clock

    @property
    def rq_queue(self) -> Any:
        return self._queue

    def enqueue(self, spec: JobSpec) -> str:
        job_id = spec.job_id or f"vc-{uuid.uuid4().hex}"
        session = self._session()
        session.add(
            OutboxJob(
                job_id=job_id,
                task=task_name(spec.task),
                args=json.dumps(list(spec.args)),
                on_final_failure=task_name(spec.on_final_failure) if spec.on_final_failure else None,
                created_at=self._clock.now(),
            )
        )
        session.commit()
        try:
            self._push(job_id, spec.retries, spec.backoff)
        except Exception as error:  # noqa: BLE001 - Redis away: the outbox row brings the job back later
            log.warning("could not queue a job now (%s); it stays in the outbox", type(error).__name__)
        return job_id

    def _push(self, job_id: str, retries: int, backoff: Sequence[int]) -> None:
        self._queue.enqueue(
            self._run_from_outbox,
            args=(job_id,),
            job_id=job_id,
            retry=Retry(max=retries, interval=list(backoff)) if retries else None,
            result_ttl=0,
            failure_ttl=self._failure_ttl,
            ttl=self._failure_ttl,
            on_failure=Callback(self._on_failure),
            meta={"retries": retries, "backoff": list(backoff)},
        )

    def recover(self, *, older_than_seconds: float = 5.0) -> int:
        """Put back jobs whose RQ entry is gone (Redis restarted) or held by a dead worker.

        Idempotent and safe on several workers: a job that exists and is not stuck is left
        alone, and the tasks themselves check whether their work is done already.
        """
        session = self._session()
        now = self._clock.now()
        cutoff = now - timedelta(seconds=older_than_seconds)
        # A job older than a failed job may live is not brought back; the retention purge removes it.
        expired = now - timedelta(seconds=self._failure_ttl)
        rows = session.scalars(
            select(OutboxJob)
            .where(OutboxJob.created_at < cutoff, OutboxJob.created_at >= expired)
            .order_by(OutboxJob.id)
        ).all()
        connection = self._queue.connection
        recovered = 0
        for row in rows:
            exists = Job.exists(row.job_id, connection=connection)
            job = Job.fetch(row.job_id, connection=connection) if exists else None
            if job is not None and not (job.get_status() == JobStatus.STARTED and _worker_is_dead(job, connection)):
                continue
            meta = (job.meta or {}) if job is not None else {}
            if job is not None:
                job.delete()
            self._push(row.job_id, int(meta.get("retries", 2)), meta.get("backoff", DEFAULT_BACKOFF))
            recovered += 1
        session.commit()
        if recovered:
            log.warning("recovered %d queued job(s) that Redis or a dead worker had lost", recovered)
        return recovered

    def close(self) -> None:
        pass


def _worker_is_dead(job: Any, connection: Any) -> bool:
    """The worker that started ``job`` is gone: its registration expired, or its process died here."""
    name = job.worker_name
    if not name:
        return True
    workers = {worker.name: worker for worker in Worker.all(connection=connection)}
    worker = workers.get(name)
    if worker is None:
        return True
    if worker.hostname == socket.gethostname() and worker.pid:
        try:
            os.kill(worker.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False
