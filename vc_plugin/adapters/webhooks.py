"""Signed webhooks: every signal also as an HTTP POST, for case tools not written in Python.

A receiver gets ``{"event": …, "id": …, "at": …, "data": {…}}`` with exactly the signal's
documented fields (ids, times and counts; never a name, address or code), sent by the job queue
(the RQ worker in production) with retries, so a case tool that is down for a while misses
nothing. ``X-VC-Signature: t=<unix time>,v1=<hex>`` is HMAC-SHA256 over ``"<t>.<body>"`` with
``VC_WEBHOOK_SECRET``: the receiver recomputes it, compares in constant time and refuses old
timestamps (replays). ``id`` is the same on every attempt, so a receiver can drop duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Flask

from ..core.clock import Clock
from ..core.config import Settings
from ..core.signals import FIELDS
from .jobs import JobQueue, JobSpec, Task

TIMEOUT_SECONDS = 10
log = logging.getLogger(__name__)


def signature(secret: str, body: str, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _plain(value: Any) -> Any:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


class WebhookSender:
    """Connected to the signals of one app: each selected one becomes a delivery job."""

    def __init__(self, app: Flask, settings: Settings, jobs: JobQueue, clock: Clock, *, deliver: Task) -> None:
        """``deliver`` is the job that posts one body: ``vc_plugin.tasks.deliver_webhook``."""
        self.deliver = deliver
        self.settings = settings
        self.jobs = jobs
        self.clock = clock
        chosen = set(settings.webhook_events)
        # blinker holds receivers weakly: these live as long as this sender (the app's state holds it).
        self.receivers: list[Callable[..., None]] = []
        for signal in FIELDS:
            if not chosen or signal.name in chosen:
                receiver = self._receiver(signal.name)
                self.receivers.append(receiver)
                signal.connect(receiver, sender=app)  # this app's signals only

    def _receiver(self, event: str) -> Callable[..., None]:
        def receive(sender: Any, **data: Any) -> None:
            self.queue(event, data)

        return receive

    def queue(self, event: str, data: dict[str, Any]) -> None:
        body = json.dumps(
            {
                "event": event,
                "id": uuid.uuid4().hex,
                "at": self.clock.now().astimezone(UTC).isoformat(),
                "data": {key: _plain(value) for key, value in data.items()},
            },
            separators=(",", ":"),
            sort_keys=True,
        )
        spec = JobSpec(
            self.deliver,
            (body,),
            retries=self.settings.webhook_retries,
            backoff=tuple(self.settings.webhook_backoff_seconds),
        )
        try:
            self.jobs.enqueue(spec)
        except Exception:
            log.exception("webhook %s could not be queued", event)


def deliver(settings: Settings, body: str) -> None:
    """POST once; anything but a 2xx raises, so the queue tries again later."""
    if not settings.webhook_url or not settings.webhook_secret:
        return  # switched off meanwhile
    event = json.loads(body)["event"]
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "vc_plugin-webhook",
        "X-VC-Event": event,
        "X-VC-Signature": signature(settings.webhook_secret, body, int(time.time())),
    }
    response = requests.post(
        settings.webhook_url, data=body.encode(), headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
    )
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"webhook {event} refused with HTTP {response.status_code}")
