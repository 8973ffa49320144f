"""Where a redirect may go: only back into this site, never to another host."""

from __future__ import annotations

from urllib.parse import urlsplit


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


def external_url(public_url: str | None, path: str, fallback_root: str) -> str:
    """Absolute URL of ``path`` on this site: from ``VC_PUBLIC_URL`` when set, else the request's root."""
    root = public_url or fallback_root
    return root.rstrip("/") + "/" + path.lstrip("/")
