"""A Flask-AppBuilder 5 application that mounts vc_plugin the way a host developer would.

The FAB part follows FAB's own example (``examples/quickhowto``): module-level extensions, an app
factory that initialises them in an app context, AUTH_DB users and roles, FAB's own Flask-Babel,
Flask-Login and Flask-Limiter (``RATELIMIT_ENABLED`` left at FAB's default, off). Like FAB apps in
the wild (Superset, Airflow) it adds Flask-WTF's ``CSRFProtect`` and Flask-Talisman, with FAB's
session cookie left as FAB sets it. Every line that exists only for vc_plugin ends in ``# vc_plugin``.

Tests serve it with gunicorn (``tests.hosts.fab.app:create_app()``); the database and extra
settings come from ``VC_TEST_DATABASE_URL`` and ``VC_TEST_CONFIG`` (JSON), as for
``tests/support/worker_app.py``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Flask
from flask_appbuilder import AppBuilder
from flask_appbuilder.utils.legacy import get_sqla_class
from flask_login import current_user
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFProtect

from vc_plugin import HostUser, VideoConsultation  # vc_plugin

#: Content-Security-Policy of the host's own pages (Superset's TALISMAN_CONFIG, roughly).
HOST_CSP = {
    "default-src": "'self'",
    "img-src": ["'self'", "data:"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "script-src": ["'self'"],
    "object-src": "'none'",
}

db = get_sqla_class()()
appbuilder = AppBuilder()
csrf = CSRFProtect()
talisman = Talisman()
vc = VideoConsultation(db=db)  # vc_plugin


@vc.practitioner_loader  # vc_plugin
def vc_practitioner() -> HostUser | None:  # vc_plugin
    if current_user.is_authenticated and any(role.name == "Practitioner" for role in current_user.roles):  # vc_plugin
        return HostUser(str(current_user.id), current_user.get_full_name(), role="practitioner")  # vc_plugin
    return None  # vc_plugin: someone signed in with FAB but without the role gets vc_plugin's 403 page


def create_app(database_url: str | None = None, config: dict[str, Any] | None = None) -> Flask:
    """The app; without arguments (gunicorn) its database and extra settings come from the environment."""
    app = Flask(__name__)
    app.config.from_object("tests.hosts.fab.config")
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url or os.environ["VC_TEST_DATABASE_URL"]
    app.config.update(json.loads(os.environ.get("VC_TEST_CONFIG", "{}")) if config is None else config)
    with app.app_context():
        db.init_app(app)
        appbuilder.init_app(app, db.session)
        csrf.init_app(app)
        talisman.init_app(
            app,
            force_https=False,
            content_security_policy=HOST_CSP,
            content_security_policy_nonce_in=["script-src"],
            session_cookie_secure=False,  # FAB's session cookie stays as FAB sets it
            session_cookie_samesite=None,
        )
        vc.init_app(app)  # vc_plugin
    return app
