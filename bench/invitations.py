"""Benchmark 7: invitation mails per second through one RQ worker into a local SMTP server.

Appointments are planned through the domain (each participant gets a code, hashed with
scrypt, and a sealed job), with the worker stopped, so the queue is full when it starts.
Then one ``flask vc worker --burst`` on the server core works it off into aiosmtpd; the rate
counts from the first mail to the last (the worker's start-up is reported separately).
"""

from __future__ import annotations

import json
import resource
import time
from datetime import timedelta
from typing import Any

from bench import procs
from bench.context import Context
from tests.support.hosts import make_host_app
from tests.support.processes import Process, free_port, python, wait_for
from tests.support.smtp import SmtpServer
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import AppointmentIn, ParticipantIn

PER_APPOINTMENT = 4  # a group appointment: fewer rows, the same jobs


def invitations(ctx: Context) -> dict[str, Any]:
    smtp = SmtpServer().start()
    config = {
        "VC_REDIS_URL": ctx.redis.url,
        "VC_SMTP_URL": smtp.url,
        "VC_PUBLIC_URL": "http://127.0.0.1:5999/",
        "VC_MAIL_SENDER": "Praxis Nord <praxis@example.net>",
        "VC_JOB_QUEUE_NAME": f"vc_bench_{free_port()}",
    }
    planner = make_host_app(ctx.db.url, **config)
    count = ctx.profile.invitations
    try:
        with planner.app.app_context():
            doctor = planner.state.directory.by_public_id(ctx.doctors[0].public_id)
            started = time.perf_counter()
            start = planner.state.clock.now() + timedelta(hours=2)
            planned = 0
            while planned < count:
                batch = min(PER_APPOINTMENT, count - planned)
                planner.state.appointments.plan(
                    Principal.of(doctor),
                    AppointmentIn(
                        starts_at=start,
                        ends_at=start + timedelta(minutes=30),
                        kind="group" if batch > 1 else "single",
                        participants=[
                            ParticipantIn(email=f"patient{planned + i}@example.org", language="de")
                            for i in range(batch)
                        ],
                    ),
                )
                planned += batch
            planning = time.perf_counter() - started
        children_before = _children_cpu()
        worker_started = time.perf_counter()
        worker = Process(
            [
                *procs.taskset(procs.SERVER_CPUS),
                *python("-m", "flask", "--app", "tests.support.worker_app:create_app", "vc", "worker", "--burst"),
            ],
            env={"VC_TEST_DATABASE_URL": ctx.db.url, "VC_TEST_CONFIG": json.dumps(config)},
            log=ctx.work / f"worker-{free_port()}.log",
        )
        first: float | None = None
        cpu_first = cpu_last = 0.0
        deadline = time.perf_counter() + 300
        while len(smtp.received()) < count and time.perf_counter() < deadline:
            cpu = procs.usage(worker.popen.pid).cpu_seconds
            if first is None and smtp.received():
                first, cpu_first = time.perf_counter(), cpu
            cpu_last = cpu or cpu_last
            if not worker.alive() and len(smtp.received()) < count:
                break
            time.sleep(0.01)
        last = time.perf_counter()
        wait_for(lambda: not worker.alive(), 30, what="the burst worker to finish")
        worker.stop()
        worker_cpu = _children_cpu() - children_before  # the worker has been reaped: its CPU time is ours now
        received = len(smtp.received())
    finally:
        planner.close()
        smtp.stop()
    first = first or last
    return {
        "mails": received,
        "expected": count,
        "per_second": (received - 1) / (last - first) if received > 1 and last > first else 0.0,
        "worker_start_seconds": first - worker_started,
        "planning_seconds": planning,
        "planning_per_invitation_ms": planning / count * 1000,
        "worker_cpu_ms_per_mail": (cpu_last - cpu_first) / max(1, received - 1) * 1000,
        "worker_cpu_seconds": worker_cpu,
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
