"""Requests authenticated by ``Authorization: Bearer`` (API tokens, the operator probe)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import request

V = TypeVar("V", bound=Callable[..., Any])


def accepts_bearer_token(view: V) -> V:
    """Mark a view that may be called with ``Authorization: Bearer``.

    Such a request is authenticated by its token alone (never by the cookie), so it needs
    no CSRF token: a browser cannot attach the header to a cross-site request.
    """
    view.vc_bearer = True  # type: ignore[attr-defined]
    return view


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
