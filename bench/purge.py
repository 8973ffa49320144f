"""Benchmark 8: purging 1,000,000 expired appointments on PostgreSQL.

The rows are written with ``INSERT … SELECT generate_series`` (a minute for a million, not
an hour), each appointment with its invitation and consent record, as planning and check-in
leave them. The purge then runs in a child process through ``vc_plugin.domain.retention`` (the
scheduled job's code path), so its peak memory is its own: ``ru_maxrss`` of that process.
Appointments that are not expired (the other benchmarks' ones) must survive it. A purge that
cannot finish within the time limit is stopped after ``PROJECT_AFTER`` seconds and reported
with the time its progress so far projects (a lower bound if it slows down as it goes).
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import time
from typing import Any

from sqlalchemy import create_engine, text

from bench import procs
from bench.context import Context

#: After this long the purge's progress tells whether it can finish before the timeout.
PROJECT_AFTER = 30.0
#: How long to wait for the first committed batch before giving up on projecting a rate.
FIRST_BATCH_LIMIT = 90.0

INSERTS = (
    """
    INSERT INTO vc_appointment (public_id, organisation_id, practitioner_id, starts_at, ends_at, kind, state,
                                relay_only, created_at, delete_after)
    SELECT 'px' || i, :org, :practitioner, now() - interval '200 days', now() - interval '200 days' + interval '30 min',
           'single', 'ended', false, now() - interval '201 days', now() - interval '110 days'
    FROM generate_series(1, :rows) AS i
    """,
    """
    INSERT INTO vc_invitation (public_id, appointment_id, kind, language, code_hash, code_by_sms, delivery,
                               failed_code_attempts, code_locks, created_at)
    SELECT 'pi' || substr(public_id, 3), id, 'patient', 'de', 'expired', false, 'sent', 0, 0, created_at
    FROM vc_appointment WHERE public_id LIKE 'px%'
    """,
    """
    INSERT INTO vc_consent (appointment_id, invitation_id, kind, text_version, language, given_at)
    SELECT appointment_id, id, 'participation', '2026-11', 'de', created_at
    FROM vc_invitation WHERE public_id LIKE 'pi%'
    """,
)


def _count(engine: Any, table: str, where: str = "") -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table} {where}")).scalar_one())


def purge(ctx: Context, timeout: float) -> dict[str, Any]:
    rows = ctx.profile.purge_rows
    engine = create_engine(ctx.db.url)
    doctor = ctx.doctors[0]
    started = time.perf_counter()
    with engine.begin() as connection:
        for statement in INSERTS:
            connection.execute(
                text(statement), {"org": doctor.organisation_id, "practitioner": doctor.id, "rows": rows}
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE vc_appointment, vc_invitation, vc_consent"))
    insert_seconds = time.perf_counter() - started
    others = _count(engine, "vc_appointment", "WHERE public_id NOT LIKE 'px%'")
    log = (ctx.work / "purge.log").open("w")
    child = subprocess.Popen(
        [*procs.taskset(procs.SERVER_CPUS), sys.executable, "-m", "bench.purge", ctx.db.url],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    begun = time.perf_counter()
    projected: float | None = None
    while child.poll() is None:
        time.sleep(1.0)
        elapsed = time.perf_counter() - begun
        if elapsed >= PROJECT_AFTER and projected is None:
            done = rows - _count(engine, "vc_appointment", "WHERE public_id LIKE 'px%'")
            if done == 0 and elapsed < FIRST_BATCH_LIMIT:
                continue  # not one batch yet: wait a little longer for a rate to project from
            projected = rows / done * elapsed if done else math.inf
            if projected > timeout:
                break  # it cannot finish in time: say how long it would take instead of waiting
        if elapsed > timeout:
            break
    stopped_after = time.perf_counter() - begun
    if child.poll() is None:
        child.kill()
    out, _ = child.communicate()
    log.close()
    finished = child.returncode == 0
    left = _count(engine, "vc_appointment", "WHERE public_id LIKE 'px%'")
    survivors = _count(engine, "vc_appointment", "WHERE public_id NOT LIKE 'px%'")
    engine.dispose()
    result: dict[str, Any] = {
        "rows": rows,
        "insert_seconds": insert_seconds,
        "finished": finished,
        "timeout": timeout,
        "stopped_after": stopped_after,
        "projected_seconds": projected,
        "left": left,
        "others_kept": survivors == others,
    }
    if finished:
        result.update(json.loads(out.strip().splitlines()[-1]))
    else:
        result["error"] = (ctx.work / "purge.log").read_text()[-800:]
    return result


def _child(database_url: str) -> None:
    """Run the purge as the scheduled job would, and print time and peak memory as JSON."""
    from tests.support.hosts import make_host_app
    from vc_plugin import tasks

    host = make_host_app(database_url)
    with host.app.app_context():
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        started = time.perf_counter()
        counts = tasks.purge()
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    host.close()
    print(json.dumps({"seconds": seconds, "peak_rss": peak, "rss_before": baseline, "deleted": counts}))


if __name__ == "__main__":
    _child(sys.argv[1])
