"""The embedded job queue and timer: threads of this process, no Redis needed."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask

from .jobs import JobSpec, backoff_for, task_name

log = logging.getLogger(__name__)


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
        # Named as RQ would store them, so a task a worker could not find fails here too.
        task_name(spec.task)
        if spec.on_final_failure is not None:
            task_name(spec.on_final_failure)
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
                    spec.task(*spec.args)
            except Exception:
                log.warning("job %s failed on attempt %d", spec.task.__name__, due.attempt + 1, exc_info=True)
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
                if spec.on_final_failure is not None:
                    spec.on_final_failure(*spec.args)
        except Exception:
            log.exception("failure handler of %s failed", spec.task.__name__)


class RepeatingTimer:
    """Calls ``run`` every ``interval_seconds`` in a daemon thread (the embedded mode's purge schedule)."""

    def __init__(self, run: Callable[[], object], interval_seconds: float, *, name: str) -> None:
        self._run = run
        self._interval = interval_seconds
        self._name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"vc_plugin-{name}", daemon=True)

    def start(self) -> RepeatingTimer:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._run()
            except Exception:
                log.exception("the scheduled %s failed; it runs again in %.0f s", self._name, self._interval)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
