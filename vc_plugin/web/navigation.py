"""Where a redirect may go (only back into this site), and this site's own address for links."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..core.config import ConfigurationError, Settings


def safe_next(target: str | None, *, default: str) -> str:
    """``target`` if it is a path on this site, else ``default`` (no open redirect)."""
    if not target or not isinstance(target, str):
        return default
    if any(ch in target for ch in ("\\", "\r", "\n", "\t")) or not target.startswith("/") or target.startswith("//"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def socket_path(endpoint: str, **values: object) -> str:
    """The path of a WebSocket route (``url_for`` gives a full ws:// URL for those)."""
    from flask import url_for

    return urlsplit(url_for(endpoint, **values)).path


def public_root(settings: Settings) -> str:
    """This site's address for links that leave it (mails, .ics files): never a relative link.

    ``VC_PUBLIC_URL`` when set (required in production); else, in debug or testing, the address
    the planning request came in on (as ProxyFix and the WSGI server saw it).
    """
    from flask import has_request_context, request

    if settings.public_url:
        return settings.public_url.rstrip("/")
    if has_request_context():
        return request.url_root.rstrip("/")
    raise ConfigurationError(
        "VC_PUBLIC_URL is not set and no request tells this site's address: a mail would carry a relative link"
    )


def external_url(public_url: str | None, path: str, fallback_root: str) -> str:
    """Absolute URL of ``path`` on this site: from ``VC_PUBLIC_URL`` when set, else the request's root."""
    root = public_url or fallback_root
    return root.rstrip("/") + "/" + path.lstrip("/")
