"""The purge: deletes what the retention policy (``retention.py``) no longer allows to keep.

It deletes in batches (bounded memory), commits after each batch, and takes rows
with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers may run it at once and
each row is deleted by exactly one of them. Running it again finds nothing more to do.
It records what it deleted as counts, never contents, in one audit event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session

from ..adapters.jobs import resolve
from ..adapters.presence import PresenceStore
from ..core import signals
from ..core.audit import SYSTEM, AuditLog
from ..core.clock import Clock
from ..core.config import Settings
from ..core.models import Appointment, AuditEvent, ConsentRecord, Invitation, OutboxJob
from ..core.signals import Announcer
from .retention import RetentionPolicy

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
#: Redis keys of ours that must always carry an expiry; one without is a leak the purge removes.
OWN_KEY_PATTERNS = ("vc:*", "LIMITS:vc:*")


@dataclass
class PurgeReport:
    """Counts per kind of data; what a dry run would delete, or what a run deleted."""

    appointments: int = 0
    invitations: int = 0
    consents: int = 0
    audit_events: int = 0
    outbox_jobs: int = 0
    failed_jobs: int = 0
    presence: int = 0
    orphaned_keys: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    def line(self) -> str:
        return ", ".join(f"{name.replace('_', ' ')}: {count}" for name, count in self.as_dict().items())


class Purger:
    """Deletes what the retention policy no longer allows to keep, in the database and in Redis."""

    def __init__(
        self,
        *,
        session: Callable[[], Session],
        clock: Clock,
        settings: Settings,
        audit: AuditLog,
        presence: PresenceStore,
        redis: Any | None,
        announce: Announcer,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self._announce = announce
        self._session = session
        self._clock = clock
        self._settings = settings
        self.policy = RetentionPolicy.of(settings)
        self._audit = audit
        self._presence = presence
        self._redis = redis
        self._batch_size = batch_size

    def run(self, *, dry_run: bool = False) -> PurgeReport:
        now = self._clock.now()
        report = PurgeReport()
        self._appointments(now, report, dry_run)
        report.audit_events = self._in_batches(AuditEvent, AuditEvent.at < now - self.policy.audit, dry_run)
        report.outbox_jobs = self._outbox(now, dry_run)
        if not dry_run:
            report.presence = self._presence.purge_stale(now.timestamp())
        if self._redis is not None:
            report.failed_jobs = self._failed_jobs(now, dry_run)
            report.orphaned_keys = self._orphaned_keys(dry_run)
        if not dry_run:
            self._audit.record("retention.purged", SYSTEM, **report.as_dict())
            self._session().commit()
            self._announce(signals.data_purged, **report.as_dict())
        return report

    # --- database ------------------------------------------------------------------------------
    def expired_appointments(self, now: datetime) -> ColumnElement[bool]:
        """``RetentionPolicy.deleted_by`` as SQL: past the stored time, or past the end plus today's period."""
        return or_(Appointment.delete_after <= now, Appointment.ends_at <= now - self.policy.metadata)

    def _appointments(self, now: datetime, report: PurgeReport, dry_run: bool) -> None:
        expired = self.expired_appointments(now)
        if dry_run:
            ids = select(Appointment.id).where(expired)
            report.appointments = self._count(Appointment, expired)
            report.invitations = self._count(Invitation, Invitation.appointment_id.in_(ids))
            report.consents = self._count(ConsentRecord, ConsentRecord.appointment_id.in_(ids))
            return
        session = self._session()
        while ids := self._claim(Appointment, expired):
            # Children first, so it works without database-side cascades (SQLite's are off by default).
            report.consents += _rowcount(session, delete(ConsentRecord).where(ConsentRecord.appointment_id.in_(ids)))
            report.invitations += _rowcount(session, delete(Invitation).where(Invitation.appointment_id.in_(ids)))
            report.appointments += _rowcount(session, delete(Appointment).where(Appointment.id.in_(ids)))
            session.commit()

    def _in_batches(self, model: type[Any], condition: ColumnElement[bool], dry_run: bool) -> int:
        if dry_run:
            return self._count(model, condition)
        session = self._session()
        deleted = 0
        while ids := self._claim(model, condition):
            deleted += _rowcount(session, delete(model).where(model.id.in_(ids)))
            session.commit()
        return deleted

    def _claim(self, model: type[Any], condition: ColumnElement[bool]) -> list[int]:
        """The next batch of ids, locked for this transaction; rows other workers hold are skipped."""
        statement = (
            select(model.id)
            .where(condition)
            .order_by(model.id)
            .limit(self._batch_size)
            .with_for_update(skip_locked=True)
        )
        return list(self._session().scalars(statement))

    def _count(self, model: type[Any], condition: ColumnElement[bool]) -> int:
        return self._session().scalar(select(func.count()).select_from(model).where(condition)) or 0

    def _outbox(self, now: datetime, dry_run: bool) -> int:
        """Jobs that waited longer than a failed job may live: their failure handler runs, the row goes."""
        stale = OutboxJob.created_at < now - self.policy.failed_job
        if dry_run:
            return self._count(OutboxJob, stale)
        session = self._session()
        deleted = 0
        while ids := self._claim(OutboxJob, stale):
            for row in session.scalars(select(OutboxJob).where(OutboxJob.id.in_(ids))):
                if row.on_final_failure:
                    _call_failure_handler(row.on_final_failure, row.args)
            deleted += _rowcount(session, delete(OutboxJob).where(OutboxJob.id.in_(ids)))
            session.commit()
        return deleted

    # --- Redis -----------------------------------------------------------------------------------
    def _failed_jobs(self, now: datetime, dry_run: bool) -> int:
        """Failed RQ jobs older than the failed-job period (RQ's own default keeps them a year)."""
        from rq import Queue
        from rq.job import Job
        from rq.registry import FailedJobRegistry

        queue = Queue(self._settings.job_queue_name, connection=self._redis)
        registry = FailedJobRegistry(queue=queue)
        cutoff = now - self.policy.failed_job
        removed = 0
        for job_id in registry.get_job_ids(cleanup=False):
            job = Job.fetch(job_id, connection=self._redis) if Job.exists(job_id, connection=self._redis) else None
            ended = job.ended_at if job is not None else None
            if job is not None and ended is not None and ended.replace(tzinfo=cutoff.tzinfo) > cutoff:
                continue
            removed += 1
            if not dry_run:
                registry.remove(job_id, delete_job=True)
        return removed

    def _orphaned_keys(self, dry_run: bool) -> int:
        """Our keys without an expiry (every one of them should have one) are leaks: remove them."""
        assert self._redis is not None
        removed = 0
        for pattern in OWN_KEY_PATTERNS:
            for key in self._redis.scan_iter(match=pattern, count=500):
                if self._redis.ttl(key) == -1:
                    removed += 1
                    if not dry_run:
                        self._redis.delete(key)
        return removed


def _rowcount(session: Session, statement: Any) -> int:
    result = session.execute(statement, execution_options={"synchronize_session": False})
    return int(result.rowcount)  # type: ignore[attr-defined]


def _call_failure_handler(dotted: str, raw_args: str) -> None:
    try:
        resolve(dotted)(*json.loads(raw_args))
    except Exception:
        log.exception("the failure handler of an expired job failed")
