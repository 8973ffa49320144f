"""How long a waiting person will probably wait, said honestly.

The estimate knows three things: when the appointment was planned to start, until when the
practitioner's earlier consultations with people present are planned to run (they come first),
and how late the practitioner said they are running. It never promises a time already past:
the page counts down from it and, once it is over, says that it takes longer than planned.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..adapters.presence import Room

#: How long a "running late" lasts unless said again or taken back: a working day.
LATE_LASTS_SECONDS = 12 * 3600
#: The longest delay a practitioner can announce; beyond it, a call or a new appointment is kinder.
MAX_LATE_MINUTES = 120


@dataclass(frozen=True)
class Estimate:
    expected_in: int  # seconds from now, never negative
    late_minutes: int


def expected_start(room: Room, busy_until: float | None, late_minutes: int) -> float:
    """The planned start, after earlier consultations that still have people (planned to run until
    ``busy_until``), plus the announced delay."""
    return max(room.starts_at, busy_until or room.starts_at) + late_minutes * 60


def estimate(room: Room, busy_until: float | None, late_minutes: int, now: float) -> Estimate:
    start = expected_start(room, busy_until, late_minutes)
    return Estimate(expected_in=max(0, round(start - now)), late_minutes=late_minutes)
