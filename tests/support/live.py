"""The app served by real gunicorn processes on free loopback ports, as in production.

``signalling="asyncio"`` serves the WebSockets from ``flask vc signalling-server`` beside gunicorn,
as the production configuration does; ``ws_url`` then points there (its origin is allowed, as a
reverse proxy would make it one origin with the pages).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from tests.support.processes import Process, free_port, port_open, stop_all, wait_for

#: The two ways sockets are served: by the app (flask-sock) or by the asyncio signalling server.
TRANSPORTS = ("flask-sock", "asyncio")


class LiveServer:
    def __init__(
        self,
        database_url: str,
        config: dict[str, Any],
        log_dir: Path,
        *,
        threads: int = 64,
        worker_class: str = "gthread",
        workers: int = 1,
        host: str = "127.0.0.1",
        bind: str | None = None,
        wrap: list[str] | None = None,
        gunicorn_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        log_name: str = "server",
        ready_seconds: float = 30,
        app: str = "tests.support.worker_app:create_app()",
        signalling: str = "flask-sock",
    ) -> None:
        assert signalling in TRANSPORTS, signalling
        self.app = app
        self.port = free_port()
        self.signalling = signalling
        self.signalling_port = free_port() if signalling == "asyncio" else self.port
        self.signalling_process: Process | None = None
        self.worker_class = worker_class
        self.workers = workers
        self.log_name = log_name
        self.ready_seconds = ready_seconds
        self.host = host
        self.bind = bind or host
        self.wrap = wrap or []
        self.gunicorn_args = gunicorn_args or []
        self.env = env or {}
        self.database_url = database_url
        self.config = {"VC_PUBLIC_URL": f"http://{host}:{self.port}/", **config}
        if signalling == "asyncio":
            origins = [*self.config.get("VC_ALLOWED_ORIGINS", []), f"http://{host}:{self.signalling_port}"]
            self.config["VC_ALLOWED_ORIGINS"] = origins
        self.log_dir = log_dir
        self.threads = threads
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.signalling_port}"

    @property
    def output(self) -> str:
        """What the server's processes wrote (gunicorn, and the signalling server if there is one)."""
        processes = [p for p in (self.process, self.signalling_process) if p is not None]
        return "\n".join(p.output for p in processes)

    def start(self) -> LiveServer:
        self.launch()
        return self.wait_ready()

    def launch(self) -> LiveServer:
        """Start the processes without waiting for them (see :func:`start_all`)."""
        gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
        assert gunicorn, "gunicorn is part of the test extras"
        self.process = Process(
            [
                *self.wrap,
                gunicorn,
                "--worker-class",
                self.worker_class,
                *(["--threads", str(self.threads)] if self.worker_class == "gthread" else []),
                "--workers",
                str(self.workers),
                "--bind",
                f"{self.bind}:{self.port}",
                "--graceful-timeout",
                "3",
                "--timeout",
                "120",
                *self.gunicorn_args,
                self.app,
            ],
            env={
                "VC_TEST_DATABASE_URL": self.database_url,
                "VC_TEST_CONFIG": json.dumps(self.config),
                **self.env,
            },
            log=self.log_dir / f"{self.log_name}-{self.port}.log",
        )
        # Both processes import the app at the same time (two cores); neither needs the other to start.
        if self.signalling == "asyncio":
            self._start_signalling()
        return self

    def wait_ready(self) -> LiveServer:
        wait_for(self._healthy, self.ready_seconds, what=f"server on port {self.port}")
        if self.signalling == "asyncio":
            wait_for(self._listening, self.ready_seconds, what=f"signalling server on port {self.signalling_port}")
        return self

    def _start_signalling(self) -> None:
        flask = shutil.which("flask", path=str(Path(sys.executable).parent))
        assert flask, "flask is installed with the package"
        port = str(self.signalling_port)
        self.signalling_process = Process(
            [*self.wrap, flask, "--app", self.app, "vc", "signalling-server", "--host", self.bind, "--port", port],
            env={
                "VC_TEST_DATABASE_URL": self.database_url,
                "VC_TEST_CONFIG": json.dumps(self.config),
                **self.env,
            },
            log=self.log_dir / f"{self.log_name}-{self.port}-signalling.log",
        )

    def _listening(self) -> bool:
        assert self.signalling_process is not None
        if not self.signalling_process.alive():
            raise RuntimeError("signalling server died:\n" + self.signalling_process.output)
        return port_open(self.signalling_port, self.host)

    def _healthy(self) -> bool:
        assert self.process is not None
        if not self.process.alive():
            raise RuntimeError("server died:\n" + self.process.output)
        try:
            return requests.get(f"{self.url}/vc/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        stop_all([p for p in (self.signalling_process, self.process) if p is not None])

    def kill(self) -> None:
        for process in (self.signalling_process, self.process):
            if process is not None:
                process.kill()


@contextmanager
def running(
    database_url: str, config: dict[str, Any], log_dir: Path, *, transport: str, names: tuple[str, ...] = ("server",)
) -> Iterator[tuple[LiveServer, ...]]:
    """Servers for a whole test module (one per name), started side by side and stopped together.

    Tests that share them get empty tables and an empty Redis each (``pg_url``, ``redis_url``):
    nothing a server keeps in memory outlives those (the data-key cache is by row id, and rows
    are never numbered again)."""
    servers = start_all(
        *(LiveServer(database_url, config, log_dir, log_name=name, signalling=transport) for name in names)
    )
    try:
        yield servers
    finally:
        stop_servers(*servers)


def start_all(*servers: LiveServer) -> tuple[LiveServer, ...]:
    """Several servers started side by side: their start-ups overlap instead of adding up."""
    for server in servers:
        server.launch()
    for server in servers:
        server.wait_ready()
    return servers


def stop_servers(*servers: LiveServer) -> None:
    stop_all([p for s in servers for p in (s.signalling_process, s.process) if p is not None])
