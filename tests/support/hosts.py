"""Minimal host applications, built the way a host developer would mount vc_plugin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from vc_plugin import VideoConsultation
from vc_plugin.core.clock import Clock
from vc_plugin.web.state import EXTENSION_KEY, VCState

#: Fixed keys so that tests can run several processes that read each other's data.
TEST_KEYS = ["Jm4WbEMh2Y7f1jzPx7mB3yFQy6oGlWnq6v7cYzOb3rY", "Yk3qQvYd4y8xk7a1T0mB2nC5eZ9rW6uL8sP3fH1jK0Q"]
TEST_SECRET = "test-secret-key-for-sessions-0123456789"


@dataclass
class HostApp:
    app: Flask
    vc: VideoConsultation
    db: SQLAlchemy

    @property
    def state(self) -> VCState:
        return self.app.extensions[EXTENSION_KEY]

    def close(self) -> None:
        self.state.close()
        with self.app.app_context():
            self.db.session.remove()
            self.db.engine.dispose()


class FreshContextClient(FlaskClient):
    """Each request gets its own app context (and so its own ``g`` and database session), as in
    production, even while a test holds an app context of its own."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        with self.application.app_context():
            return super().open(*args, **kwargs)


def base_config(database_url: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "VC_ENCRYPTION_KEYS": [TEST_KEYS[0]],
        "VC_PUBLIC_URL": "http://127.0.0.1/",
    }
    config.update(overrides)
    return config


def make_host_app(database_url: str, *, clock: Clock | None = None, own_db: bool = True, **overrides: Any) -> HostApp:
    app = Flask("test_host")
    app.test_client_class = FreshContextClient
    app.config.update(base_config(database_url, **overrides))
    db = SQLAlchemy() if own_db else None
    vc = VideoConsultation(db=db, clock=clock)
    vc.init_app(app)
    return HostApp(app, vc, app.extensions["sqlalchemy"])
