"""A small intranet-like host app that mounts vc_plugin on embedded defaults.

SQLite, no Redis, mails on the console, and a development sign-in. It refuses to run
anywhere but on this computer in debug mode: ``python -m vc_plugin.demo``.

``create_app(config_file=…)`` loads a configuration on top, such as the production-like
``production.example.cfg`` that ``flask vc check`` passes; ``FLASK_…`` environment variables
override both (``FLASK_VC_REDIS_URL=…``).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from flask import Flask, render_template
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vc_plugin import VideoConsultation
from vc_plugin.adapters.database_schema import upgrade
from vc_plugin.core.crypto import generate_master_key


class HostBase(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=HostBase)


class Notice(db.Model):  # type: ignore[name-defined, misc]
    """The host's own table, to show that host and extension share one database."""

    __tablename__ = "demo_notice"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(200))


def _demo_secrets(instance: Path) -> dict[str, str]:
    """Generated once and kept in the instance folder, so restarts keep sessions and data readable."""
    path = instance / "demo-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {"secret_key": secrets.token_urlsafe(32), "encryption_key": generate_master_key()}
    instance.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def create_app(instance_path: str | Path | None = None, *, port: int = 5000, config_file: str | None = None) -> Flask:
    instance = Path(instance_path or Path.cwd() / "instance").resolve()
    app = Flask(__name__, instance_path=str(instance))
    keys = _demo_secrets(instance)
    app.config.update(
        DEBUG=True,
        SECRET_KEY=keys["secret_key"],
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{instance / 'demo.sqlite'}",
        VC_ENCRYPTION_KEYS=[keys["encryption_key"]],
        VC_DEV_LOGIN=True,
        VC_PUBLIC_URL=f"http://127.0.0.1:{port}/",
        VC_OPERATOR_NAME="Demo-Praxis",
        VC_TERMS_URL="/impressum",
        VC_SIGNALING_LOCATION="DE",
    )
    if config_file:
        app.config.from_pyfile(str(Path(config_file).resolve()))
    app.config.from_prefixed_env()
    app.debug = bool(app.config["DEBUG"])
    VideoConsultation(app, db=db)

    @app.get("/")
    def intranet_home() -> str:
        return render_template("demo/home.html")

    @app.get("/impressum")
    def imprint() -> str:
        """The host's legal notice, public as patients must reach it without signing in."""
        return render_template("demo/imprint.html")

    with app.app_context():
        db.create_all()
        upgrade(db.engine)
    return app
