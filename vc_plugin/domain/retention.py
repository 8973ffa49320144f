"""What is deleted when: the retention table as code (docs/privacy.md), and when the purge runs.

The purge that enforces it is ``purge.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..core.config import Settings, key_name, settings_from
from ..core.models import Appointment


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of data lives, from the settings (see ``docs/privacy.md``)."""

    metadata: timedelta
    audit: timedelta
    failed_job: timedelta
    presence_grace: timedelta
    join_grace: timedelta

    @classmethod
    def of(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            metadata=timedelta(days=settings.retention_metadata_days),
            audit=timedelta(days=settings.retention_audit_days),
            failed_job=timedelta(hours=settings.retention_failed_job_hours),
            presence_grace=timedelta(minutes=settings.retention_presence_grace_minutes),
            join_grace=timedelta(minutes=settings.join_grace_minutes),
        )

    def delete_after(self, ends_at: datetime) -> datetime:
        """What an appointment planned now stores as its ``delete_after``."""
        return ends_at + self.metadata

    def deleted_by(self, appointment: Appointment) -> datetime:
        """When the purge removes it at the latest: its stored time, or sooner if the period was shortened."""
        return min(appointment.delete_after, self.delete_after(appointment.ends_at))


@dataclass(frozen=True)
class PurgeSchedule:
    """How often the purge runs, and on which queue: one rule for the embedded timer, ``rq cron``
    and ``flask vc check``.
    """

    interval_seconds: int
    queue: str

    #: The settings it is made of, which ``rq cron`` reads from the environment (it has no app).
    FIELDS = ("purge_interval_minutes", "job_queue_name")

    @classmethod
    def of(cls, settings: Settings) -> PurgeSchedule:
        return cls(interval_seconds=max(60, settings.purge_interval_minutes * 60), queue=settings.job_queue_name)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> PurgeSchedule:
        """For ``rq cron vc_plugin.cron``: ``VC_PURGE_INTERVAL_MINUTES``, ``VC_JOB_QUEUE_NAME``, else the defaults."""
        given = {field: environ[key_name(field)] for field in cls.FIELDS if key_name(field) in environ}
        return cls.of(settings_from(given))
