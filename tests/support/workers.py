"""Real ``flask vc worker`` processes on the test host app (``tests.support.worker_app``)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.support.processes import Process, python

WORKER = ["-m", "flask", "--app", "tests.support.worker_app:create_app", "vc", "worker"]


def start_worker(
    database_url: str,
    config: dict[str, Any],
    log: Path,
    *,
    burst: bool = True,
    now: datetime | None = None,
    env: dict[str, str] | None = None,
) -> Process:
    """A worker on ``config``; with ``now`` its clock stands at that moment (``VC_TEST_NOW``)."""
    variables = {"VC_TEST_DATABASE_URL": database_url, "VC_TEST_CONFIG": json.dumps(config), **(env or {})}
    if now is not None:
        variables["VC_TEST_NOW"] = now.isoformat()
    return Process(python(*WORKER, *(["--burst"] if burst else [])), env=variables, log=log)


def run_worker(
    database_url: str, config: dict[str, Any], log: Path, *, timeout: float = 120, **options: Any
) -> Process:
    """A burst worker run to its end; it must exit cleanly (its output is in the assertion)."""
    process = start_worker(database_url, config, log, burst=True, **options)
    process.popen.wait(timeout=timeout)
    assert process.popen.returncode == 0, process.output
    return process
