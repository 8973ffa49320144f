"""Rate limits per client (Flask-Limiter), keyed without storing IP addresses.

The key is an HMAC of the client address with a secret that changes every day, so the
limiter's storage (Redis, or memory) holds no IP address and yesterday's keys cannot be
linked to today's. Behind a reverse proxy, the host must apply ``ProxyFix`` so that
``remote_addr`` is the client, not the proxy.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from flask import Flask, current_app, request
from flask_limiter import Limiter

from .config import Settings

#: Endpoint → the setting that holds its limit.
LIMITED_ENDPOINTS = {
    "vc.join.check_in": "ratelimit_code_entry",
}


def client_key() -> str:
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    secret = hashlib.sha256(f"vc_plugin limiter {day} {current_app.secret_key}".encode()).digest()
    address = (request.remote_addr or "unknown").encode()
    return hmac.new(secret, address, hashlib.sha256).hexdigest()[:24]


def install_limiter(app: Flask, settings: Settings) -> Limiter:
    limiter = Limiter(
        client_key,
        app=app,
        storage_uri=settings.redis_url or "memory://",
        storage_options={"socket_connect_timeout": 3} if settings.redis_url else {},
        key_prefix="vc:limiter",
        strategy="moving-window",
        headers_enabled=True,
        # A Redis outage must not lock patients out; it is logged, not raised.
        swallow_errors=True,
    )
    for endpoint, setting in LIMITED_ENDPOINTS.items():
        view = app.view_functions[endpoint]
        app.view_functions[endpoint] = limiter.limit(getattr(settings, setting), methods=["POST"])(view)
    return limiter
