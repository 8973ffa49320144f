"""The extension object: mounting with the host's db, with none, and via an app factory."""

from __future__ import annotations

import subprocess
import sys

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import inspect

from tests.support.hosts import base_config, make_host_app
from vc_plugin import VideoConsultation
from vc_plugin.core.models import Organisation
from vc_plugin.web.state import EXTENSION_KEY


def test_mounts_with_the_hosts_own_db(database_url):
    host = make_host_app(database_url)
    try:
        state = host.app.extensions[EXTENSION_KEY]
        assert state.db is host.db
        with host.app.app_context():
            host.db.session.add(Organisation(slug="o", name="O", created_at=state.clock.now()))
            host.db.session.commit()
            assert host.db.session.query(Organisation).count() == 1
        rules = {rule.rule for rule in host.app.url_map.iter_rules()}
        assert "/vc/health" in rules
    finally:
        host.close()


def test_creates_a_db_when_the_host_has_none(tmp_path):
    app = Flask("bare", instance_path=str(tmp_path / "instance"))
    config = base_config("unused")
    del config["SQLALCHEMY_DATABASE_URI"]
    app.config.update(config)
    VideoConsultation(app)
    state = app.extensions[EXTENSION_KEY]
    assert isinstance(state.db, SQLAlchemy)
    VideoConsultation.create_tables(app)
    with app.app_context():
        assert "vc_appointment" in inspect(state.db.engine).get_table_names()
        assert str(state.db.engine.url).endswith("instance/vc_plugin.sqlite")
    state.close()


def test_app_factory_and_custom_prefix(database_url):
    db = SQLAlchemy()
    vc = VideoConsultation(db=db)

    def create_app() -> Flask:
        app = Flask("factory")
        app.config.update(base_config(database_url, VC_URL_PREFIX="/video"))
        vc.init_app(app)
        return app

    first, second = create_app(), create_app()
    assert first.extensions[EXTENSION_KEY] is not second.extensions[EXTENSION_KEY]
    assert first.test_client().get("/video/health").status_code == 200
    assert first.test_client().get("/vc/health").status_code == 404
    for app in (first, second):
        app.extensions[EXTENSION_KEY].close()


def test_initialising_twice_is_refused(host):
    with pytest.raises(RuntimeError, match="already initialised"):
        host.vc.init_app(host.app)


def test_importing_has_no_side_effects(tmp_path):
    """Importing the package creates no app, thread, file or connection."""
    script = (
        "import threading, vc_plugin, vc_plugin.web.blueprints, vc_plugin.cli;"
        "import flask; assert flask.current_app.__class__.__name__ == 'LocalProxy';"
        "print(threading.active_count())"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "1"
    assert list(tmp_path.iterdir()) == []
