"""The purge's own record of its runs (one audit event ``retention.purged`` per run, with counts
and no contents), read back as the proof of deletion: when each run came, how much it deleted, and
which came late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.models import AuditEvent
from ..domain.purge import PurgeReport

#: How many of the newest runs the proof lists (late ones are listed in any case).
LISTED_RUNS = 12
#: A run may come this much later than twice the interval before it counts as late.
SLACK = timedelta(minutes=1)


@dataclass(frozen=True)
class PurgeRun:
    at: datetime
    counts: dict[str, int]
    #: Time since the run before (None for the oldest one recorded).
    gap: timedelta | None
    late: bool


@dataclass(frozen=True)
class PurgeHistory:
    interval: timedelta
    #: Every run recorded since ``since``, newest first.
    runs: list[PurgeRun]
    #: Runs were recorded, but none within the limit before ``now``.
    overdue: bool

    @property
    def limit(self) -> timedelta:
        return 2 * self.interval + SLACK

    @property
    def late(self) -> list[PurgeRun]:
        return [run for run in self.runs if run.late]

    @property
    def listed(self) -> list[PurgeRun]:
        """The newest runs and every late one, newest first."""
        return [run for index, run in enumerate(self.runs) if index < LISTED_RUNS or run.late]


def purge_history(session: Session, now: datetime, interval: timedelta, since: datetime) -> PurgeHistory:
    events = session.execute(
        select(AuditEvent.at, AuditEvent.details)
        .where(AuditEvent.action == "retention.purged", AuditEvent.at >= since)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    ).all()
    limit = 2 * interval + SLACK
    names = list(PurgeReport().as_dict())
    runs = []
    for index, (at, details) in enumerate(events):
        before = events[index + 1].at if index + 1 < len(events) else None
        gap = at - before if before is not None else None
        counts = {name: int((details or {}).get(name, 0)) for name in names}
        runs.append(PurgeRun(at=at, counts=counts, gap=gap, late=gap is not None and gap > limit))
    return PurgeHistory(interval=interval, runs=runs, overdue=bool(runs) and runs[0].at < now - limit)
