"""Debian's coturn on loopback, in the TURN REST API mode (use-auth-secret)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.processes import Process, free_port, port_open, wait_for

SECRET = "coturn-test-secret-5f2b"


class Coturn:
    def __init__(
        self,
        work: Path,
        *,
        listen: tuple[str, ...] = ("127.0.0.1",),
        relay: str = "127.0.0.1",
        wrap: list[str] | None = None,
        probe_host: str = "127.0.0.1",
        authenticate: bool = True,
    ) -> None:
        self.port = free_port()
        self.work = work
        self.listen = listen
        self.relay = relay
        self.wrap = wrap or []
        self.probe_host = probe_host
        #: False starts a careless relay that hands out allocations to anyone (a negative test's server).
        self.authenticate = authenticate
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"turn:{self.listen[0]}:{self.port}?transport=udp"

    def urls(self) -> list[str]:
        return [f"turn:{address}:{self.port}?transport=udp" for address in self.listen]

    def start(self) -> Coturn:
        binary = shutil.which("turnserver")
        if binary is None:
            raise RuntimeError("coturn is not installed: run scripts/test-services (apt install coturn)")
        low = 40000 + (self.port % 200) * 100
        self.process = Process(
            [
                *self.wrap,
                binary,
                *(f"--listening-ip={address}" for address in self.listen),
                f"--relay-ip={self.relay}",
                f"--listening-port={self.port}",
                f"--min-port={low}",
                f"--max-port={low + 99}",
                *(["--use-auth-secret", f"--static-auth-secret={SECRET}"] if self.authenticate else ["--no-auth"]),
                "--realm=vc.test",
                "--fingerprint",
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--allow-loopback-peers",
                "--no-software-attribute",
                f"--db={self.work / 'turndb'}",
                f"--pidfile={self.work / 'turnserver.pid'}",
                "--log-file=stdout",
                "--simple-log",
                "--verbose",
            ],
            log=self.work / f"coturn-{self.port}.log",
            cwd=self.work,
        )
        # coturn listens on TCP too: a TCP connect tells that it is up (its log goes to syslog-like places).
        wait_for(lambda: port_open(self.port, self.probe_host) or not self.process.alive(), 20, what="coturn")
        if not self.process.alive():
            raise RuntimeError("coturn did not start:\n" + self.process.output)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
