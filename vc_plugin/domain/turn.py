"""Short-lived TURN credentials in coturn's ``use-auth-secret`` scheme (TURN REST API).

username = "<expiry unix time>:<opaque tag>", credential = base64(HMAC-SHA1(secret, username)).
coturn checks the HMAC and refuses the username after its expiry, so no per-user state is
needed on either side. The tag is random per issue: it does not identify the person.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from ..core.config import Settings


@dataclass(frozen=True)
class IceServer:
    urls: list[str]
    username: str | None = None
    credential: str | None = None

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {"urls": self.urls}
        if self.username is not None:
            data.update(username=self.username, credential=self.credential)
        return data


def ice_host(url: str) -> str:
    """The host of a STUN or TURN URL (``turn:turn.example.org:3478?transport=udp``), lower case."""
    rest = url.split(":", 1)[1] if ":" in url else url
    return (urlsplit("//" + rest.lstrip("/")).hostname or "").lower()


def stun_servers(settings: Settings) -> list[IceServer]:
    return [IceServer(urls=list(settings.stun_urls))] if settings.stun_urls else []


def relay_available(settings: Settings) -> bool:
    return bool(settings.turn_urls and settings.turn_secret)


def turn_credentials(settings: Settings, now: datetime, not_after: datetime) -> IceServer:
    """Credentials that expire after the TTL, and never after ``not_after`` (the appointment's end)."""
    if not relay_available(settings):
        raise LookupError("no TURN server configured")
    expiry = int(min(now.timestamp() + settings.turn_credential_ttl_seconds, not_after.timestamp()))
    username = f"{expiry}:{secrets.token_hex(6)}"
    digest = hmac.new((settings.turn_secret or "").encode(), username.encode(), hashlib.sha1).digest()
    return IceServer(urls=list(settings.turn_urls), username=username, credential=base64.b64encode(digest).decode())


def ice_servers(settings: Settings, now: datetime, *, relay_until: datetime | None) -> list[dict[str, object]]:
    """STUN always; the relay's credentials only with ``relay_until`` (consent given, or a relay-only room)."""
    servers = [s.as_json() for s in stun_servers(settings)]
    if relay_until is not None and relay_available(settings):
        servers.append(turn_credentials(settings, now, relay_until).as_json())
    return servers
