"""Rate limits per client on our routes, keyed without storing IP addresses.

The key is an HMAC of the client address with a secret that changes every day, so the
limiter's storage (Redis, or memory) holds no IP address and yesterday's keys cannot be
linked to today's. Behind a reverse proxy, the host must apply ``ProxyFix`` so that
``remote_addr`` is the client, not the proxy.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask, Response, current_app, request
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

from ..core.config import Settings
from .bearer import bearer_token
from .cookie import cookie

log = logging.getLogger(__name__)

#: Where access codes are entered (``VC_RATELIMIT_CODE_ENTRY`` per client).
CODE_ENTRY_ENDPOINTS = frozenset({"vc.join.check_in"})
#: Every JSON API endpoint shares one budget (``VC_RATELIMIT_API``) per token or signed-in person.
API_PREFIX = "vc.api."


def _digest(kind: str, value: str) -> str:
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    secret = hashlib.sha256(f"vc_plugin limiter {day} {current_app.secret_key}".encode()).digest()
    return kind + hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()[:24]


def client_key() -> str:
    return _digest("", request.remote_addr or "unknown")


def code_entry_client() -> str:
    """The client as the wrong-code guard (``code_guard.py``) knows it: an HMAC, never the address.

    IPv6 clients count by their /64 network (one subscriber's usual share), so an attacker cannot
    multiply their tries by hopping between addresses of one network. The secret does not change
    with the day, so no pause ends at midnight (and no test depends on the time of day); the
    guard hashes it again with the invitation and keeps it only while the link is open.
    """
    address = request.remote_addr or "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        network = address
    else:
        if ip.version == 6 and ip.ipv4_mapped is not None:
            network = str(ip.ipv4_mapped)
        elif ip.version == 6:
            network = str(ipaddress.ip_network(f"{ip}/64", strict=False))
        else:
            network = str(ip)
    secret = hashlib.sha256(f"vc_plugin code guard {current_app.secret_key}".encode()).digest()
    return hmac.new(secret, network.encode(), hashlib.sha256).hexdigest()[:32]


def api_key() -> str:
    """The API token, else the signed-in person, else the client: each has its own budget."""
    token = bearer_token()
    if token:
        return _digest("t", token)
    user = cookie.get("vc_user")
    if isinstance(user, dict) and isinstance(user.get("pid"), str):
        return _digest("u", user["pid"])
    return _digest("a", request.remote_addr or "unknown")


#: One storage prefix for every limit of ours (the code guard's keys sit beside them).
PREFIX = "vc:limiter"


@dataclass(frozen=True)
class Verdict:
    """The tightest of the limits a request counted against: for the ``X-RateLimit`` headers."""

    limit: RateLimitItem
    remaining: int
    reset_at: float
    allowed: bool


class RateLimits:
    """Our limits, on the ``limits`` library directly rather than through Flask-Limiter.

    A Flask-Limiter instance reads the app's ``RATELIMIT_*`` settings, which belong to the host:
    ``RATELIMIT_ENABLED = False`` (Flask-AppBuilder's default) would switch code-entry limits off
    in silence. These limits answer to our settings alone, on our routes alone.
    """

    def __init__(self, settings: Settings) -> None:
        options = {"socket_connect_timeout": 3} if settings.redis_url else {}
        self.storage = storage_from_string(settings.redis_url or "memory://", **options)
        self.window = MovingWindowRateLimiter(self.storage)
        self.shared = bool(settings.redis_url)
        self.code_entry = parse_many(settings.ratelimit_code_entry)
        self.api = parse_many(settings.ratelimit_api)
        self.join = parse_many(settings.ratelimit_join)

    def hit(self, limits: list[RateLimitItem], scope: str, key: str) -> Verdict | None:
        """Count one request; None if the storage is away (logged: an outage must not lock people out)."""
        try:
            verdicts = []
            for item in limits:
                allowed = self.window.hit(item, PREFIX, scope, key)
                stats = self.window.get_window_stats(item, PREFIX, scope, key)
                verdicts.append(Verdict(item, stats.remaining, stats.reset_time, allowed))
        except Exception:  # noqa: BLE001 - any storage failure: count nothing, refuse nothing
            log.warning("rate limit storage unavailable; a request to %s was not counted", scope)
            return None
        refused = [v for v in verdicts if not v.allowed]
        return max(refused, key=lambda v: v.reset_at) if refused else min(verdicts, key=lambda v: v.remaining)

    def allowed(self, limits: list[RateLimitItem], scope: str, key: str) -> bool:
        """Count one request that gets no rate-limit headers (a socket handshake): one storage round trip
        per limit instead of two. True if the storage is away, as with :meth:`hit`."""
        try:
            return all([self.window.hit(item, PREFIX, scope, key) for item in limits])  # each limit counts
        except Exception:  # noqa: BLE001 - any storage failure: count nothing, refuse nothing
            log.warning("rate limit storage unavailable; a request to %s was not counted", scope)
            return True


VERDICT_KEY = "vc_plugin.ratelimit"
#: Where ``install`` keeps the app's limits (``app.extensions``).
EXTENSION_KEY = "vc_plugin.rate_limits"


def install(app: Flask, settings: Settings) -> RateLimits:
    """The app's rate limits, found by the request hooks below."""
    limits = RateLimits(settings)
    app.extensions[EXTENSION_KEY] = limits
    return limits


def _limits() -> RateLimits | None:
    return current_app.extensions.get(EXTENSION_KEY)


def check_request_limits() -> None:
    """``before_request`` of our blueprints: code entry per client, the JSON API per token or person."""
    limits = _limits()
    if limits is None or request.endpoint is None:
        return
    if request.endpoint in CODE_ENTRY_ENDPOINTS and request.method == "POST":
        verdict = limits.hit(limits.code_entry, "code-entry", client_key())
    elif request.endpoint.startswith(API_PREFIX):
        verdict = limits.hit(limits.api, "api", api_key())
    else:
        return
    if verdict is None:
        return
    request.environ[VERDICT_KEY] = verdict
    if not verdict.allowed:
        raise TooManyRequests(description="Too many requests. Please wait a moment and try again.")


def add_limit_headers(response: Response) -> Response:
    """``after_request``: what the client may still send, and when to try again after a 429."""
    verdict: Verdict | None = request.environ.get(VERDICT_KEY)
    if verdict is None:
        return response
    now = time.time()
    response.headers["X-RateLimit-Limit"] = str(verdict.limit.amount)
    response.headers["X-RateLimit-Remaining"] = str(max(0, verdict.remaining))
    response.headers["X-RateLimit-Reset"] = str(math.ceil(verdict.reset_at))
    if not verdict.allowed:
        response.headers["Retry-After"] = str(max(1, math.ceil(verdict.reset_at - now)))
    return response


def join_allowed() -> bool:
    """Count one socket handshake of this client; False once it is over ``VC_RATELIMIT_JOIN``.

    Counted before the handshake is checked, so probing counts too. A reconnect after a network
    change takes one or two; a flood of handshakes would tie up the threads that hold sockets.
    """
    limits = _limits()
    if limits is None:
        return True
    return limits.allowed(limits.join, "join", client_key())
