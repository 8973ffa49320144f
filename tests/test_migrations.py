"""The shipped Alembic branch creates exactly the schema the models describe."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from tests.support.databases import new_postgres_database
from tests.support.hosts import TEST_KEYS, TEST_SECRET
from vc_plugin.adapters.database_schema import upgrade
from vc_plugin.adapters.host_migrations import OUR_VERSIONS
from vc_plugin.core.models import Base


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.sqlite'}"
        return
    with new_postgres_database("vc_migrate") as url:
        yield url


def _ours(name, type_, _parents) -> bool:
    return type_ != "table" or (name.startswith("vc_") and name != "vc_alembic_version")


def _differences(url: str) -> list:
    engine = create_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "include_name": _ours},
        )
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    return diff


def test_migrations_match_the_models(empty_database):
    engine = create_engine(empty_database)
    upgrade(engine)
    upgrade(engine)  # running again is a no-op
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {table.name for table in Base.metadata.sorted_tables} <= tables
    assert "vc_alembic_version" in tables
    assert _differences(empty_database) == []


def test_flask_migrate_host_upgrades_heads(tmp_path, empty_database):
    """A host with its own Flask-Migrate repository gets our branch from `flask db upgrade heads`."""
    (tmp_path / "hostapp.py").write_text(
        textwrap.dedent(
            f"""
            from flask import Flask
            from flask_migrate import Migrate
            from flask_sqlalchemy import SQLAlchemy
            from vc_plugin import VideoConsultation

            db = SQLAlchemy()

            class Note(db.Model):
                id = db.Column(db.Integer, primary_key=True)

            app = Flask(__name__)
            app.config.update(
                TESTING=True,
                SECRET_KEY={TEST_SECRET!r},
                SQLALCHEMY_DATABASE_URI={empty_database!r},
                VC_ENCRYPTION_KEYS={[TEST_KEYS[0]]!r},
            )
            db.init_app(app)
            Migrate(app, db)
            VideoConsultation(app, db=db)
            """
        )
    )
    env = {**os.environ, "FLASK_APP": "hostapp.py"}

    def flask(*args: str) -> str:
        result = subprocess.run(  # noqa: PLW1510 - the exit code is asserted
            [sys.executable, "-m", "flask", *args], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return result.stdout + result.stderr

    flask("db", "init")
    flask("db", "upgrade", "heads")  # our branch first: the host's autogenerate must then ignore vc_ tables
    refused = subprocess.run(  # noqa: PLW1510 - the exit code is asserted
        [sys.executable, "-m", "flask", "db", "migrate", "-m", "careless"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "--head base --branch-label app" in refused.stderr + refused.stdout
    revision = flask(
        "db",
        "migrate",
        "-m",
        "host tables",
        "--head",
        "base",
        "--branch-label",
        "app",
        "--version-path",
        "migrations/versions",
    )
    assert "Detected removed table 'vc_" not in revision
    assert "Detected added table 'note'" in revision, revision
    flask("db", "upgrade", "heads")
    assert "No changes in schema detected" in flask("db", "migrate", "-m", "nothing", "--head", "app@head")
    heads = flask("db", "heads")
    assert "vc_plugin" in heads and "app" in heads
    engine = create_engine(empty_database)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"note", "vc_appointment", "vc_invitation", "alembic_version"} <= tables
    assert _differences(empty_database) == []
    shipped = sorted(p.name for p in OUR_VERSIONS.glob("*.py"))
    assert all(name[:4].isdigit() for name in shipped), f"host revision leaked into the package: {shipped}"
