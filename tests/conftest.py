"""Shared fixtures: real PostgreSQL, SQLite and Redis; a fake clock; a minimal host app.

Services are never mocked. When PostgreSQL or Redis does not answer, the run stops with
a message that says what to start; it never skips silently.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.databases import PG_ADMIN_URL, new_postgres_database
from tests.support.hosts import HostApp, make_host_app
from tests.support.live import TRANSPORTS
from vc_plugin.core.clock import FrozenClock
from vc_plugin.core.models import Base

REDIS_URL = os.environ.get("VC_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
BACKENDS = [b for b in os.environ.get("VC_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def pytest_sessionstart(session: pytest.Session) -> None:
    pg = make_url(PG_ADMIN_URL)
    redis_host, redis_port = REDIS_URL.split("//")[1].split("/")[0].split(":")
    missing = []
    if "postgresql" in BACKENDS and not _answers(pg.host or "127.0.0.1", pg.port or 5432):
        missing.append(f"PostgreSQL at {pg.host}:{pg.port} (start it, or set VC_TEST_POSTGRES_URL)")
    if not _answers(redis_host, int(redis_port)):
        missing.append(f"Redis at {redis_host}:{redis_port} (start redis-server, or set VC_TEST_REDIS_URL)")
    if missing:
        pytest.exit("The tests need real services that do not answer:\n  - " + "\n  - ".join(missing), returncode=3)


# --- databases -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    with new_postgres_database("vc_test") as url:
        yield url


@pytest.fixture(scope="session")
def postgres_schema(postgres_database: str) -> str:
    engine = create_engine(postgres_database)
    Base.metadata.create_all(engine)
    engine.dispose()
    return postgres_database


def _empty_postgres(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        # Ids go on counting: a server shared by a module's tests must never meet a new row under an old id.
        connection.execute(text(f"TRUNCATE {tables} CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that uses it runs on SQLite and on PostgreSQL, with empty tables."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'vc.sqlite'}"
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
        yield url
    else:
        url = request.getfixturevalue("postgres_schema")
        _empty_postgres(url)
        yield url


@pytest.fixture
def pg_url(postgres_schema: str) -> str:
    """PostgreSQL only, for tests with several processes (SQLite is the one-process mode)."""
    _empty_postgres(postgres_schema)
    return postgres_schema


# --- Redis -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_address() -> str:
    """The test Redis, for servers that serve a whole module (``redis_url`` empties it for each test)."""
    return REDIS_URL


@pytest.fixture
def redis_url() -> str:
    """An empty Redis database reserved for tests."""
    from redis import Redis

    client = Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()
    return REDIS_URL


# --- time and apps ---------------------------------------------------------------------------


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))


@pytest.fixture
def host(database_url: str, clock: FrozenClock) -> Iterator[HostApp]:
    """A host app with its own Flask-SQLAlchemy instance and vc_plugin mounted."""
    host = make_host_app(database_url, clock=clock)
    yield host
    host.close()


@pytest.fixture
def app(host: HostApp):  # type: ignore[no-untyped-def]
    with host.app.app_context():
        yield host.app


@pytest.fixture
def state(app):
    return app.extensions["vc_plugin"]


@pytest.fixture
def people(state):
    from tests.support.people import make_people

    return make_people(state)


@pytest.fixture(params=TRANSPORTS, scope="module")
def transport(request: pytest.FixtureRequest) -> str:
    """Both ways of serving sockets: by the app (flask-sock) and by ``flask vc signalling-server``."""
    return request.param
