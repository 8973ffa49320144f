"""Schedule for RQ's cron: ``rq cron vc_plugin.cron --url redis://…``.

It enqueues the retention purge on vc_plugin's queue every ``VC_PURGE_INTERVAL_MINUTES``
(environment, default 15); a ``flask vc worker`` runs it inside the app. Several cron
processes may run: the purge is idempotent and safe on several workers at once. The queue
name follows ``VC_JOB_QUEUE_NAME`` (environment, default ``vc_plugin``).
"""

from __future__ import annotations

import os

from rq import cron

from .domain.retention import PurgeSchedule
from .tasks import purge

SCHEDULE = PurgeSchedule.from_environment(os.environ)

cron.register(
    purge,
    SCHEDULE.queue,
    interval=SCHEDULE.interval_seconds,
    result_ttl=0,
    failure_ttl=24 * 3600,
    job_timeout=30 * 60,
    name="vc_plugin.retention.purge",
)
