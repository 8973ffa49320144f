"""An ordinary intranet, written the way its extensions' documentation shows.

App factory; Flask-SQLAlchemy and Flask-Migrate; Flask-Login with its own login form; Flask-WTF's
``CSRFProtect`` over everything; Flask-Talisman with its own policy; Flask-Babel choosing each
user's language; Flask-Limiter with a default limit per address. vc_plugin is mounted with the
lines marked ``# vc_plugin`` and nothing else (docs/integration.md, "An intranet with Flask-Login").

``python -m flask --app tests.hosts.intranet.app:create_app()`` serves it; tests pass settings as
JSON in ``INTRANET_CONFIG``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Flask, abort, redirect, render_template, request, url_for
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user, logout_user
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from vc_plugin import NOT_ALLOWED, HostUser, NotAllowed, VideoConsultation  # vc_plugin

db = SQLAlchemy()
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(get_remote_address, default_limits=["50 per hour"])
talisman = Talisman()
vc = VideoConsultation(db=db)  # vc_plugin


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "intranet_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(unique=True)
    full_name: Mapped[str]
    password_hash: Mapped[str]
    department: Mapped[str]  # "medicine" may hold video consultations; "accounts" may not
    language: Mapped[str] = mapped_column(default="de")

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


def select_locale() -> str | None:
    if current_user.is_authenticated:
        return current_user.language
    return request.accept_languages.best_match(["de", "en"])


@vc.practitioner_loader  # vc_plugin
def vc_practitioner() -> HostUser | NotAllowed | None:  # vc_plugin
    if not current_user.is_authenticated:  # vc_plugin
        return None  # vc_plugin
    user = HostUser(subject=str(current_user.id), display_name=current_user.full_name, role="practitioner")  # vc_plugin
    return user if current_user.department == "medicine" else NOT_ALLOWED  # vc_plugin


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY="intranet-secret-for-tests-only-0123456789",
        SQLALCHEMY_DATABASE_URI="sqlite:///intranet.sqlite",
        BABEL_DEFAULT_LOCALE="de",
        RATELIMIT_STORAGE_URI="memory://",
        VC_BASE_TEMPLATE="layout.html",  # vc_plugin
    )
    app.config.update(json.loads(os.environ.get("INTRANET_CONFIG", "{}")))
    app.config.update(config or {})

    db.init_app(app)
    migrate.init_app(app, db)
    login_manager.init_app(app)
    login_manager.login_view = "login"
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    limiter.init_app(app)
    talisman.init_app(
        app,
        force_https=False,
        session_cookie_secure=app.config.get("INTRANET_HTTPS", False),
        content_security_policy={"default-src": "'self'"},
    )
    if app.config.get("INTRANET_WITH_VC", True):
        vc.init_app(app)  # vc_plugin

    @app.get("/")
    @login_required
    def home() -> str:
        return render_template("home.html")

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        error = None
        if request.method == "POST":
            user = db.session.scalar(db.select(User).filter_by(username=request.form.get("username", "")))
            if user is not None and check_password_hash(user.password_hash, request.form.get("password", "")):
                login_user(user)
                target = request.args.get("next", "")
                return redirect(target if target.startswith("/") and not target.startswith("//") else url_for("home"))
            error = "Unknown user or wrong password."
        return render_template("login.html", error=error), 401 if error else 200

    @app.post("/logout")
    def logout() -> Any:
        logout_user()
        return redirect(url_for("login"))

    @app.get("/language/<code>")
    @login_required
    def language(code: str) -> Any:
        if code not in {"de", "en"}:
            abort(404)
        current_user.language = code
        db.session.commit()
        return redirect(url_for("home"))

    return app
