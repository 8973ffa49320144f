"""The services a benchmark runs against, each started fresh and pinned to the server core.

Our app runs as in production (gunicorn, PostgreSQL, Redis); the PeerJS server is its stock
command-line server. Both sides get the same core, the load client the other one.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import procs
from tests.support.live import LiveServer
from tests.support.processes import Process, free_port, port_open, wait_for
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "bench" / "node"
PEERJS_BIN = NODE_DIR / "node_modules" / "peer" / "dist" / "bin" / "peerjs.js"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

#: Raised for the bench only: the per-socket limit (40/s, burst 200) protects production from
#: floods; the relay test sends far more than a browser would through one socket.
BENCH_CONFIG: dict[str, Any] = {"VC_WS_MESSAGES_PER_SECOND": 1_000_000.0, "VC_WS_BURST": 1_000_000}


class BenchDatabase:
    """A PostgreSQL database of our own for one run, with vc_plugin's tables; dropped afterwards."""

    def __init__(self, admin_url: str = PG_ADMIN_URL) -> None:
        self.admin_url = admin_url
        self.name = f"vc_bench_{uuid.uuid4().hex[:10]}"
        self.url = make_url(admin_url).set(database=self.name).render_as_string(hide_password=False)

    def create(self) -> BenchDatabase:
        from vc_plugin.core.models import Base

        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.name}"'))
        admin.dispose()
        engine = create_engine(self.url)
        Base.metadata.create_all(engine)
        engine.dispose()
        return self

    def drop(self) -> None:
        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        admin.dispose()


def start_redis(work: Path) -> RedisServer:
    """A private redis-server (nothing on disk) on the server core."""
    redis = RedisServer(work).start()
    assert redis.process is not None
    procs.pin_running(redis.process.popen.pid, procs.SERVER_CPUS)
    return redis


class OurServer(LiveServer):
    """Our app under gunicorn, pinned to the server core, with the worker class, threads and
    connection limit a benchmark chooses (gunicorn's default of 1,000 connections per worker is
    too few: the bench needs up to 10,000 sockets per process)."""

    def __init__(
        self,
        database_url: str,
        redis_url: str,
        log_dir: Path,
        *,
        worker_class: str = "gthread",
        threads: int = 256,
        connections: int = 12_000,
        workers: int = 1,
        config: dict[str, Any] | None = None,
        signalling: str = "flask-sock",
    ) -> None:
        super().__init__(
            database_url,
            {"VC_REDIS_URL": redis_url, **BENCH_CONFIG, **(config or {})},
            log_dir,
            threads=threads,
            worker_class=worker_class,
            workers=workers,
            wrap=procs.taskset(procs.SERVER_CPUS),
            gunicorn_args=["--worker-connections", str(connections), "--backlog", "4096"],
            log_name="ours",
            ready_seconds=60,
            signalling=signalling,
        )
        self.connections = connections

    @property
    def label(self) -> str:
        if self.signalling == "asyncio":
            return "flask vc signalling-server (asyncio, websockets), one process"
        kind = f"gthread, {self.threads} threads" if self.worker_class == "gthread" else self.worker_class
        return f"gunicorn {kind}, {self.workers} worker{'s' if self.workers > 1 else ''}"

    @property
    def pgid(self) -> int:
        """The process that holds the sockets: gunicorn's, or the signalling server's."""
        process = self.signalling_process or self.process
        assert process is not None
        return process.popen.pid


class PeerJSServer:
    """The stock PeerJS server (``peerjs`` command of the npm package ``peer``) on a free port."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self.process: Process | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def label(self) -> str:
        return "peerjs CLI (node, 1 process)"

    def start(self) -> PeerJSServer:
        if not PEERJS_BIN.exists():
            raise RuntimeError("the PeerJS server is not installed: run bench/run (it runs npm ci in bench/node)")
        args = [
            *procs.taskset(procs.SERVER_CPUS),
            "node",
            str(PEERJS_BIN),
            "--port",
            str(self.port),
            "--host",
            "127.0.0.1",
            "--concurrent_limit",
            "100000",  # the default (5,000) would refuse the connection test's sockets
        ]
        self.process = Process(args, log=self.log_dir / f"peerjs-{self.port}.log", cwd=NODE_DIR)
        wait_for(lambda: port_open(self.port), 30, what="PeerJS server")
        return self

    @property
    def pgid(self) -> int:
        assert self.process is not None
        return self.process.popen.pid

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
