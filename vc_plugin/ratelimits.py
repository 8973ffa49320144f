"""Rate limits per client (Flask-Limiter), keyed without storing IP addresses.

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
from datetime import UTC, datetime

from flask import Flask, current_app, request, session
from flask_limiter import Limiter
from limits import parse_many

from .config import Settings
from .web import bearer_token

log = logging.getLogger(__name__)

#: Endpoint → the setting that holds its limit.
LIMITED_ENDPOINTS = {
    "vc.join.check_in": "ratelimit_code_entry",
}
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
    user = session.get("vc_user")
    if isinstance(user, dict) and isinstance(user.get("pid"), str):
        return _digest("u", user["pid"])
    return _digest("a", request.remote_addr or "unknown")


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
    api_limit = limiter.shared_limit(settings.ratelimit_api, scope="vc-api", key_func=api_key)
    for endpoint in [e for e in app.view_functions if e.startswith(API_PREFIX)]:
        app.view_functions[endpoint] = api_limit(app.view_functions[endpoint])
    return limiter


def join_allowed() -> bool:
    """Count one socket handshake of this client; False once it is over ``VC_RATELIMIT_JOIN``.

    Counted before the handshake is checked, so probing counts too. A reconnect after a network
    change takes one or two; a flood of handshakes would tie up the threads that hold sockets.

    The socket routes refuse in ``before_request`` (origin, sign-in), where Flask-Limiter's route
    decorators never run, so this asks the limiter's storage directly.
    """
    from .state import vc_state

    limiter = vc_state().limiter
    if limiter is None:
        return True
    key = client_key()
    try:
        limits = parse_many(vc_state().settings.ratelimit_join)
        return all([limiter.limiter.hit(item, "vc:limiter:join", key) for item in limits])
    except Exception:  # noqa: BLE001 - like swallow_errors: a storage outage must not lock people out
        log.warning("rate limit storage unavailable; a socket handshake was not counted")
        return True
