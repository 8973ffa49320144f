"""Gunicorn's logs without IP addresses: ``gunicorn --logger-class vc_plugin.gunicorn_logging.PrivacyLogger``.

Gunicorn's master process writes its error log (and, with ``--access-logfile``, the access
log with the client address in ``%(h)s``) before the app is loaded, so the extension's own
scrubbing would start too late there. This logger class installs it as gunicorn sets up
logging. The mode comes from ``VC_LOG_IP_MODE`` in the environment (default ``drop``).
"""

from __future__ import annotations

import os
from typing import Any

from gunicorn.glogging import Logger

from .core import log_privacy


class PrivacyLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        mode = os.environ.get("VC_LOG_IP_MODE", "drop")
        log_privacy.install("truncate" if mode == "truncate" else "drop")
