"""The host app that test worker and server processes load (``flask --app tests.support.worker_app``).

Its configuration comes from ``VC_TEST_*`` environment variables set by the test:
``VC_TEST_DATABASE_URL``, ``VC_TEST_CONFIG`` (JSON of ``VC_`` settings), ``VC_TEST_NOW`` (an ISO
time the clock stands at, for retention tests) and ``VC_TEST_LOG_LEVEL`` (e.g. ``DEBUG``).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime

from flask import Flask

from tests.support.hosts import make_host_app
from vc_plugin.core.clock import FrozenClock


def create_app() -> Flask:
    extra = json.loads(os.environ.get("VC_TEST_CONFIG", "{}"))
    now = os.environ.get("VC_TEST_NOW")
    clock = FrozenClock(datetime.fromisoformat(now)) if now else None
    level = os.environ.get("VC_TEST_LOG_LEVEL")
    if level:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    host = make_host_app(os.environ["VC_TEST_DATABASE_URL"], clock=clock, **extra)
    return host.app
