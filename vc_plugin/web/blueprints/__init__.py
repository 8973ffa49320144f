"""The web layer: thin blueprints that parse a request, call the domain, and answer."""

from __future__ import annotations

from flask import Blueprint, Flask

from ...core.config import Settings
from .. import cookie, page_rules, ratelimits
from ..hosting import HostExtensions
from . import admin, api, auth, join, practice, public, socket_tickets, ws


def register_blueprints(app: Flask, settings: Settings) -> None:
    parent = Blueprint(
        "vc",
        __name__,
        url_prefix=settings.url_prefix,
        template_folder="../../templates",
        static_folder="../../static/vc_plugin",
        static_url_path="/static",
    )
    page_rules.install(parent)
    parent.before_request(ratelimits.check_request_limits)  # after the CSRF check, as the view would
    parent.after_request(ratelimits.add_limit_headers)
    options = app.config.setdefault("SOCK_SERVER_OPTIONS", {})
    options.setdefault("max_message_size", settings.ws_max_message_bytes)
    options.setdefault("ping_interval", 25)
    for child in (public.bp, auth.bp, practice.bp, join.bp, api.bp, socket_tickets.bp, ws.bp, admin.bp):
        parent.register_blueprint(child)
    app.register_blueprint(parent)
    HostExtensions(app, parent, settings).install()
    cookie.install(app, settings)
