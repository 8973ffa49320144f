"""A small network of Linux network namespaces in which two browsers have no direct path.

    patient ns (10.77.1.2) ── 10.77.1.1 ┐
                                        ├ server ns: app server + coturn, no IP forwarding
    doctor ns  (10.77.2.2) ── 10.77.2.1 ┘
    test (root ns, 10.77.3.1) ── 10.77.3.2

Both browsers reach the server and coturn, but the server namespace does not forward packets,
so the browsers cannot reach each other: only the TURN relay connects them, as behind
restrictive firewalls. Needs root (``ip netns``), as on the development and CI machines.
"""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

LINKS = {
    "patient": ("10.77.1.1", "10.77.1.2"),
    "doctor": ("10.77.2.1", "10.77.2.2"),
    "root": ("10.77.3.2", "10.77.3.1"),
}


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass
class Network:
    tag: str = field(default_factory=lambda: secrets.token_hex(3))

    def ns(self, role: str) -> str:
        return f"vc-{self.tag}-{role}"

    def create(self) -> Network:
        if os.geteuid() != 0:
            raise PermissionError("network namespaces need root (ip netns); the CI machine runs tests as root")
        for role in ("server", "patient", "doctor"):
            _ip("netns", "add", self.ns(role))
            _ip("-n", self.ns(role), "link", "set", "lo", "up")
        for role, (server_address, other_address) in LINKS.items():
            server_end, other_end = f"vs{self.tag}{role[0]}", f"vo{self.tag}{role[0]}"
            _ip("link", "add", server_end, "type", "veth", "peer", "name", other_end)
            _ip("link", "set", server_end, "netns", self.ns("server"))
            _ip("-n", self.ns("server"), "addr", "add", f"{server_address}/24", "dev", server_end)
            _ip("-n", self.ns("server"), "link", "set", server_end, "up")
            if role != "root":
                _ip("link", "set", other_end, "netns", self.ns(role))
                _ip("-n", self.ns(role), "addr", "add", f"{other_address}/24", "dev", other_end)
                _ip("-n", self.ns(role), "link", "set", other_end, "up")
            else:
                _ip("addr", "add", f"{other_address}/24", "dev", other_end)
                _ip("link", "set", other_end, "up")
        return self

    def destroy(self) -> None:
        for role in ("server", "patient", "doctor"):
            subprocess.run(["ip", "netns", "del", self.ns(role)], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", f"vo{self.tag}r"], capture_output=True, check=False)

    def run(self, role: str, args: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns(role), *args]

    def launcher(self, role: str, executable: str, directory: Path) -> str:
        """A script that starts ``executable`` inside the namespace (Playwright talks over a pipe)."""
        script = directory / f"chromium-in-{role}.sh"
        script.write_text(f'#!/bin/sh\nexec ip netns exec {self.ns(role)} {executable} "$@"\n')
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        return str(script)
