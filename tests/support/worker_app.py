"""The host app that test worker and server processes load (``flask --app tests.support.worker_app``).

Its configuration comes from ``VC_TEST_*`` environment variables set by the test.
"""

from __future__ import annotations

import json
import os

from flask import Flask

from tests.support.hosts import make_host_app


def create_app() -> Flask:
    extra = json.loads(os.environ.get("VC_TEST_CONFIG", "{}"))
    host = make_host_app(os.environ["VC_TEST_DATABASE_URL"], **extra)
    return host.app
