"""A private redis-server on a free port, which a test may restart (it keeps nothing on disk)."""

from __future__ import annotations

import shutil
from pathlib import Path

from redis import Redis

from tests.support.processes import Process, free_port, wait_for


class RedisServer:
    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.work = work
        self.process: Process | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: apt install redis-server)")
        self.starts += 1
        self.process = Process(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.work),
            ],
            log=self.work / f"redis-{self.port}-{self.starts}.log",
        )
        wait_for(self._answers, 10, what="redis-server")
        return self

    def _answers(self) -> bool:
        try:
            return bool(Redis.from_url(self.url, socket_connect_timeout=0.5).ping())
        except Exception:
            return False

    def restart(self) -> None:
        """Kill it and start it again, empty: what a Redis without persistence looks like after a crash."""
        assert self.process is not None
        self.process.kill()
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
