"""Background jobs behind one small interface: RQ with Redis, or a thread in the embedded mode.

A task is a module-level function named by its dotted path. It runs inside the Flask app
context, may raise to ask for a retry, and has an optional ``on_final_failure`` function
that is called with the same arguments once no retry is left (to mark an invitation as
failed, say). Arguments must be JSON-friendly; anything personal is sealed by the caller.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Protocol

from flask import Flask

from .models import OutboxJob
from .state import vc_state

log = logging.getLogger(__name__)

#: Seconds between attempts; the last value repeats.
DEFAULT_BACKOFF = (10, 60, 300, 900)


@dataclass(frozen=True)
class JobSpec:
    task: str
    args: tuple[Any, ...]
    retries: int = 0
    backoff: Sequence[int] = DEFAULT_BACKOFF
    on_final_failure: str | None = None
    job_id: str | None = None


class JobQueue(Protocol):
    def enqueue(self, spec: JobSpec) -> str: ...

    def recover(self, *, older_than_seconds: float = 5.0) -> int: ...

    def close(self) -> None: ...


def resolve(dotted: str) -> Callable[..., Any]:
    module, _, name = dotted.rpartition(".")
    return getattr(import_module(module), name)


def backoff_for(spec: JobSpec, attempt: int) -> int:
    """Delay before retry number ``attempt`` (1-based)."""
    delays = list(spec.backoff) or [0]
    return delays[min(attempt - 1, len(delays) - 1)]


# --- embedded: one background thread ------------------------------------------------------


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    spec: JobSpec = field(compare=False)
    attempt: int = field(compare=False, default=0)


class ThreadJobQueue:
    """Runs jobs in one daemon thread of this process: the embedded default, no Redis needed.

    Jobs live in memory only, so they are gone after a restart; production uses RQ.
    """

    def __init__(self, app: Flask, *, time_scale: float = 1.0) -> None:
        self._app = app
        self._time_scale = time_scale
        self._due: list[_Due] = []
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="vc_plugin-jobs", daemon=True)
        self._thread.start()

    def enqueue(self, spec: JobSpec) -> str:
        self._schedule(spec, attempt=0, delay=0.0)
        return spec.job_id or f"thread-{id(spec)}"

    def _schedule(self, spec: JobSpec, attempt: int, delay: float) -> None:
        with self._wake:
            self._idle.clear()
            heapq.heappush(self._due, _Due(time.monotonic() + delay * self._time_scale, next(self._seq), spec, attempt))
            self._wake.notify()

    def recover(self, *, older_than_seconds: float = 5.0) -> int:
        """Nothing to recover: jobs of the embedded mode live and die with the process."""
        return 0

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no job is due or running (tests and the CLI use it)."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=5)

    def _next(self) -> _Due | None:
        with self._wake:
            while not self._closed:
                if not self._due:
                    self._idle.set()
                    self._wake.wait()
                    continue
                wait = self._due[0].at - time.monotonic()
                if wait <= 0:
                    return heapq.heappop(self._due)
                self._wake.wait(wait)
            return None

    def _run(self) -> None:
        while (due := self._next()) is not None:
            spec = due.spec
            try:
                with self._app.app_context():
                    resolve(spec.task)(*spec.args)
            except Exception:
                log.warning("job %s failed on attempt %d", spec.task, due.attempt + 1, exc_info=True)
                if due.attempt < spec.retries:
                    self._schedule(spec, due.attempt + 1, backoff_for(spec, due.attempt + 1))
                elif spec.on_final_failure:
                    self._call_final_failure(spec)
            with self._wake:
                if not self._due:
                    self._idle.set()

    def _call_final_failure(self, spec: JobSpec) -> None:
        try:
            with self._app.app_context():
                resolve(spec.on_final_failure or "")(*spec.args)
        except Exception:
            log.exception("failure handler of %s failed", spec.task)


# --- production: RQ, with a database outbox --------------------------------------------------


class RQJobQueue:
    """Jobs for ``flask vc worker`` processes. Results are never kept.

    The job's task and arguments are written to the ``vc_outbox`` table first; the RQ job only
    names the outbox row. So a Redis restart (Redis may keep nothing on disk) loses no job:
    workers put jobs whose RQ entry is gone back on the queue (:func:`recover_outbox`).
    """

    def __init__(
        self, connection: Any, queue_name: str, failure_ttl_seconds: int, session: Callable[[], Any], clock: Any
    ) -> None:
        from rq import Queue

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
                task=spec.task,
                args=json.dumps(list(spec.args)),
                on_final_failure=spec.on_final_failure,
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
        from rq import Callback, Retry

        self._queue.enqueue(
            "vc_plugin.jobs.run_from_outbox",
            args=(job_id,),
            job_id=job_id,
            retry=Retry(max=retries, interval=list(backoff)) if retries else None,
            result_ttl=0,
            failure_ttl=self._failure_ttl,
            ttl=self._failure_ttl,
            on_failure=Callback(rq_failure_hook),
            meta={"retries": retries, "backoff": list(backoff)},
        )

    def recover(self, *, older_than_seconds: float = 5.0) -> int:
        """Put back jobs whose RQ entry is gone (Redis restarted) or held by a dead worker.

        Idempotent and safe on several workers: a job that exists and is not stuck is left
        alone, and the tasks themselves check whether their work is done already.
        """
        from datetime import timedelta

        from rq.job import Job, JobStatus
        from sqlalchemy import select

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


def _outbox_row(job_id: str) -> Any:
    from sqlalchemy import select

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


def _worker_is_dead(job: Any, connection: Any) -> bool:
    """The worker that started ``job`` is gone: its registration expired, or its process died here."""
    from rq import Worker

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
