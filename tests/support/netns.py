"""A small network of Linux network namespaces for two browsers, the app server and coturn.

    patient ns (10.77.N+1.2) ── 10.77.N+1.1 ┐
                                            ├ server ns: app server + coturn
    doctor ns  (10.77.N+2.2) ── 10.77.N+2.1 ┘
    test (root ns, 10.77.N+3.1) ── 10.77.N+3.2

N is four times the network's index, so that several networks (parallel tests, benchmark
lanes) can exist at once; the index is the lowest one whose addresses are free in the root
namespace, chosen under a lock file.

Two topologies:

* ``routed=False`` (relay only): the server namespace does not forward packets, so the browsers
  reach the server and coturn but not each other; only the TURN relay connects them, as behind
  restrictive firewalls.
* ``routed=True`` (direct): the server namespace forwards IPv4 between the patient and doctor
  subnets and both have a default route through it, so host candidates connect directly.

``link_down``/``link_up``/``outage`` take a browser's interface really down, as a pulled cable
or a lost Wi-Fi does. Needs root (``ip netns``), as on the development and CI machines.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

#: Highest index: the third octet 4 * index + 3 must stay below 256.
MAX_INDEX = 63
#: Serialises the choice of addresses between processes that create networks at the same time.
LOCK = Path("/tmp/vc-netns.lock")
ROLES = ("patient", "doctor")


def links(index: int) -> dict[str, tuple[str, str]]:
    """For each link: (address in the server namespace, address at the other end)."""
    if not 0 <= index <= MAX_INDEX:
        raise ValueError(f"network index {index} is outside 0..{MAX_INDEX}")
    base = 4 * index
    return {
        "patient": (f"10.77.{base + 1}.1", f"10.77.{base + 1}.2"),
        "doctor": (f"10.77.{base + 2}.1", f"10.77.{base + 2}.2"),
        "root": (f"10.77.{base + 3}.2", f"10.77.{base + 3}.1"),
    }


#: The addresses of the network with index 0 (kept for code that only ever builds one network).
LINKS = links(0)


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def _root_addresses() -> set[str]:
    out = _ip("-4", "-o", "addr", "show")
    return {part.split("/")[0] for line in out.splitlines() for part in line.split()[3:4]}


@dataclass
class Outage:
    """When a link went down and came back (``time.time()``, comparable with a page's ``Date.now()``)."""

    role: str
    down_at: float = 0.0
    up_at: float | None = None


@dataclass
class Network:
    routed: bool = False
    index: int | None = None
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    links: dict[str, tuple[str, str]] = field(default_factory=dict)
    _created: bool = False

    def ns(self, role: str) -> str:
        return f"vc-{self.tag}-{role}"

    def device(self, role: str) -> str:
        """The interface of ``role`` inside its own namespace (``root``: in the root namespace)."""
        return f"vo{self.tag}{role[0]}"

    def server_address(self, role: str) -> str:
        """The server namespace's address on ``role``'s link (what that side connects to)."""
        return self.links[role][0]

    def address(self, role: str) -> str:
        """The address of ``role`` itself."""
        return self.links[role][1]

    def create(self) -> Network:
        if os.geteuid() != 0:
            raise PermissionError("network namespaces need root (ip netns); the CI machine runs tests as root")
        with LOCK.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._created = True
            try:
                self._choose_index()
                self._build()
            except BaseException:
                self.destroy()
                raise
        return self

    def _choose_index(self) -> None:
        used = _root_addresses()
        if self.index is None:
            free = (i for i in range(MAX_INDEX + 1) if links(i)["root"][1] not in used)
            self.index = next(free, None)
            if self.index is None:
                raise RuntimeError("no free 10.77.x network left: stale namespaces? (ip netns list)")
        elif links(self.index)["root"][1] in used:
            raise RuntimeError(f"the addresses of network {self.index} are in use already")
        self.links = links(self.index)

    def _build(self) -> None:
        for role in ("server", *ROLES):
            _ip("netns", "add", self.ns(role))
            _ip("-n", self.ns(role), "link", "set", "lo", "up")
        for role, (server_address, other_address) in self.links.items():
            server_end, other_end = f"vs{self.tag}{role[0]}", self.device(role)
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
        if self.routed:
            subprocess.run(
                self.run("server", ["sysctl", "-qw", "net.ipv4.ip_forward=1"]), check=True, capture_output=True
            )
            for role in ROLES:
                self._default_route(role)

    def _default_route(self, role: str) -> None:
        _ip("-n", self.ns(role), "route", "replace", "default", "via", self.server_address(role))

    def destroy(self) -> None:
        """Removes everything this network made; safe to call twice and after a failed create."""
        if not self._created:
            return
        for role in ("server", *ROLES):
            subprocess.run(["ip", "netns", "del", self.ns(role)], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", self.device("root")], capture_output=True, check=False)
        self._created = False

    def __enter__(self) -> Network:
        return self.create()

    def __exit__(self, *_: object) -> None:
        self.destroy()

    def run(self, role: str, args: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns(role), *args]

    def pids(self, role: str) -> list[int]:
        """The processes running inside ``role``'s namespace (``ip netns pids``)."""
        found = subprocess.run(["ip", "netns", "pids", self.ns(role)], capture_output=True, text=True, check=False)
        return [int(pid) for pid in found.stdout.split()]

    def launcher(self, role: str, executable: str, directory: Path) -> str:
        """A script that starts ``executable`` inside the namespace (Playwright talks over a pipe)."""
        script = directory / f"chromium-in-{role}-{self.tag}.sh"
        script.write_text(f'#!/bin/sh\nexec ip netns exec {self.ns(role)} {executable} "$@"\n')
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        return str(script)

    # --- outages -------------------------------------------------------------------------------

    def link_down(self, role: str) -> float:
        """Takes ``role``'s interface down (the kernel drops its routes); returns the time it did.

        The time is taken before the command: pages notice within milliseconds, before it returns.
        """
        at = time.time()
        _ip("-n", self.ns(role), "link", "set", self.device(role), "down")
        return at

    def link_up(self, role: str, timeout: float = 5.0) -> float:
        """Brings ``role``'s interface back with its routes; returns the time the path was usable again.

        Link and default route go in one ``ip -batch`` call, and the time is taken as it returns:
        checking afterwards costs more ``ip`` calls, which on a busy machine would make the
        return look later than the browser saw it.
        """
        commands = [f"link set dev {self.device(role)} up"]
        if self.routed:
            commands.append(f"route replace default via {self.server_address(role)} dev {self.device(role)}")
        done = subprocess.run(
            ["ip", "-n", self.ns(role), "-batch", "-"],
            input="\n".join(commands) + "\n",
            capture_output=True,
            text=True,
            check=False,
        )
        at = time.time() if done.returncode == 0 else None
        deadline = time.monotonic() + timeout
        while not self._link_ready(role):
            at = None  # the route had to be added again: usable only from then on
            if time.monotonic() > deadline:
                raise TimeoutError(f"{role}'s link did not come back within {timeout} s: {done.stderr}")
            time.sleep(0.02)
        return at if at is not None else time.time()

    def _link_ready(self, role: str) -> bool:
        """Carrier up and the routes back (the kernel forgets the default route on link down)."""
        state = _ip("-n", self.ns(role), "-o", "link", "show", self.device(role))
        if "LOWER_UP" not in state:
            return False
        routes = _ip("-n", self.ns(role), "-4", "route", "show", "dev", self.device(role))
        if "scope link" not in routes:
            return False  # the subnet's route returns with the carrier
        if self.routed and not routes.startswith("default") and "\ndefault" not in routes:
            self._default_route(role)
            return False
        return True

    def link_is_up(self, role: str) -> bool:
        return "LOWER_UP" in _ip("-n", self.ns(role), "-o", "link", "show", self.device(role))

    @contextmanager
    def outage(self, role: str, seconds: float | None = None) -> Iterator[Outage]:
        """``role``'s link down for the body (and at least ``seconds`` in all); up again even on error."""
        outage = Outage(role, down_at=self.link_down(role))
        began = time.monotonic()  # the length by the monotonic clock; down_at is for the pages' Date.now()
        try:
            yield outage
            if seconds is not None:
                time.sleep(max(0.0, began + seconds - time.monotonic()))
        finally:
            outage.up_at = self.link_up(role)
