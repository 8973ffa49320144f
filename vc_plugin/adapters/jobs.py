"""Background jobs behind one small interface; the queues are in ``thread_jobs`` and ``rq_jobs``.

A task is a module-level function, handed over as the function itself: its stored name is
derived once, here, and checked to lead back to the same function, so a task that a worker could
not find fails when it is queued, not in a worker at night. It runs inside the Flask app context,
may raise to ask for a retry, and has an optional ``on_final_failure`` function that is called
with the same arguments once no retry is left (to mark an invitation as failed, say). Arguments
must be JSON-friendly; anything personal is sealed by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Protocol

#: Seconds between attempts; the last value repeats.
DEFAULT_BACKOFF = (10, 60, 300, 900)

#: Tasks that moved, by the names that rows written by earlier versions still carry.
MOVED_TASKS = {
    "vc_plugin.webhooks.deliver": "vc_plugin.tasks.deliver_webhook",
    "vc_plugin.retention.purge_job": "vc_plugin.tasks.purge",
}

Task = Callable[..., Any]


@dataclass(frozen=True)
class JobSpec:
    task: Task
    args: tuple[Any, ...]
    retries: int = 0
    backoff: Sequence[int] = DEFAULT_BACKOFF
    on_final_failure: Task | None = None
    job_id: str | None = None


class JobQueue(Protocol):
    def enqueue(self, spec: JobSpec) -> str: ...

    def recover(self, *, older_than_seconds: float = 5.0) -> int: ...

    def close(self) -> None: ...


def resolve(dotted: str) -> Any:
    """The object a dotted path names (a stored task, a configured SMS sender)."""
    module, _, name = MOVED_TASKS.get(dotted, dotted).rpartition(".")
    return getattr(import_module(module), name)


def task_name(task: Task) -> str:
    """The name a task is stored under; refuses a function a worker could not import by it."""
    name = f"{task.__module__}.{task.__qualname__}"
    try:
        found = resolve(name)
    except (ImportError, AttributeError, ValueError):
        found = None
    if found is not task:
        raise ValueError(f"{name} is not a module-level function, so a worker could not find it")
    return name


def backoff_for(spec: JobSpec, attempt: int) -> int:
    """Delay before retry number ``attempt`` (1-based)."""
    delays = list(spec.backoff) or [0]
    return delays[min(attempt - 1, len(delays) - 1)]
