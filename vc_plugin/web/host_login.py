"""Where a host with its own login signs people in.

A host that signs its users in itself (``@vc.practitioner_loader``) has a login page of its own;
people who reach our pages without being signed in belong there, with the way back. Asked in
this order: ``@vc.login_url``, ``VC_LOGIN_URL``, Flask-AppBuilder's login page, Flask-Login's
``login_view``. Without any of them, our page says to sign in with the host first.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import current_app
from werkzeug.routing import BuildError

from .state import vc_state

log = logging.getLogger(__name__)


def host_login_url(next_path: str) -> str | None:
    """The host's login page, returning to ``next_path`` afterwards; None if the host has not said."""
    state = vc_state()
    if state.login_url_builder is not None:
        return state.login_url_builder(next_path)
    if state.settings.login_url:
        return with_next(state.settings.login_url, next_path)
    appbuilder = current_app.extensions.get("appbuilder")
    if appbuilder is not None:  # its Flask-Login login_view ("login") names no endpoint
        return str(appbuilder.get_url_for_login_with(next_path))
    manager = getattr(current_app, "login_manager", None)
    if manager is not None and getattr(manager, "login_view", None):
        from flask_login import login_url

        try:
            return str(login_url(manager.login_view, next_url=next_path))
        except BuildError:
            log.error("Flask-Login's login_view %r names no endpoint: set VC_LOGIN_URL", manager.login_view)
    return None


def with_next(url: str, next_path: str) -> str:
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "next"] + [("next", next_path)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def login_url_known() -> bool:
    """For ``flask vc check`` and the start-up log: can someone not signed in find the host's login?"""
    state = vc_state()
    manager = getattr(current_app, "login_manager", None)
    return bool(
        state.practitioner_loader is None
        or state.login_url_builder is not None
        or state.settings.login_url
        or "appbuilder" in current_app.extensions
        or (manager is not None and getattr(manager, "login_view", None))
    )
