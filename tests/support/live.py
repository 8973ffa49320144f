"""The app served by real gunicorn processes on free loopback ports, as in production."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import requests

from tests.support.processes import Process, free_port, wait_for


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
    ) -> None:
        self.app = app
        self.port = free_port()
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
        self.log_dir = log_dir
        self.threads = threads
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start(self) -> LiveServer:
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
        wait_for(self._healthy, self.ready_seconds, what=f"server on port {self.port}")
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if not self.process.alive():
            raise RuntimeError("server died:\n" + self.process.output)
        try:
            return requests.get(f"{self.url}/vc/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
