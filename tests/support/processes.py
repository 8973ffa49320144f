"""Starting and stopping real processes for tests, on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(
    condition: Callable[[], bool], timeout: float = 15.0, interval: float = 0.05, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Process:
    """A child process whose output goes to a log file, killed with its process group."""

    def __init__(self, args: list[str], *, env: dict[str, str] | None = None, log: Path, cwd: Path = ROOT) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.popen = subprocess.Popen(
            args,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            os.killpg(self.popen.pid, sig)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        stop_all([self])

    def _terminate(self) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)

    def _reap(self, deadline: float) -> None:
        try:
            self.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)
        self._log.close()


def stop_all(processes: list[Process], grace: float = 8.0) -> None:
    """SIGTERM to all at once, then wait for all: their shutdowns overlap instead of adding up."""
    for process in processes:
        process._terminate()
    deadline = time.monotonic() + grace
    for process in processes:
        process._reap(deadline)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]
