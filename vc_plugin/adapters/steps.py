"""A piece of work with presence or the bus, in two forms: blocking, or as Redis commands.

Domain code that a socket's ``hello`` runs (:meth:`vc_plugin.domain.entrance.Entrance.joining`)
is written as a generator of steps: it yields a :class:`Step` and is sent the step's result. A
thread drives it by running each step (:func:`drive`); the signalling server's loop sends a step's
commands over its own Redis connection instead and parses the replies there, so the domain code is
the same for both and neither needs to know which one runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Command = tuple[Any, ...]


class ScriptMissing(Exception):
    """Redis lost its scripts (a restart): the step's blocking form loads them again."""


@dataclass(frozen=True, slots=True)
class Step(Generic[T]):
    """``run`` blocks (redis-py, or an in-process store). ``commands`` and ``parse`` are the same for a
    caller that speaks to Redis itself; without commands, only ``run`` can do it."""

    run: Callable[[], T]
    commands: tuple[Command, ...] = field(default=())
    parse: Callable[[list[Any]], T] | None = None


Steps = Generator[Step[Any], Any, R]


def drive(steps: Steps[R]) -> R:
    """Runs every step in this thread, one after the other; the generator's result."""
    try:
        step = next(steps)
        while True:
            step = steps.send(step.run())
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
