"""How much each benchmark does: the full run (18 minutes on 2 cores, 60 with the outages) and a quick smoke run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    runs: int  # repetitions per relay point (figures are medians)
    rates: tuple[int, ...]  # offered messages/s; a server stops at the first rate it cannot carry
    duration: float  # measured seconds per relay point
    warmup: float  # seconds sent before the measured part
    pairs: int  # peer pairs sharing the load
    scaleout_rates: tuple[int, ...]
    stages: tuple[int, ...]  # concurrent sockets in the connection ramp
    thread_stages: tuple[int, ...]  # the same for the thread worker (it needs 3 threads and 2 fds per socket)
    hold: float  # seconds the sockets are held at each stage (CPU while holding is read over them)
    ramp_budget: float  # seconds one server's ramp may take
    waiting: int  # patients in waiting rooms
    admits: int  # of them admitted one by one
    calls: int  # aiortc calls set up
    invitations: int
    purge_rows: int
    revocations: int  # trials per kind of revocation (delete, new code)
    outage_runs: int  # runs per case (side × outage length) of the network outage benchmark


FULL = Profile(
    name="full",
    runs=3,
    rates=(1000, 2000, 5000, 10000, 20000, 30000),
    duration=2.5,
    warmup=0.5,
    pairs=50,
    scaleout_rates=(1000, 3000),
    stages=(1000, 5000, 10000),
    thread_stages=(1000,),
    # Two of the signalling server's sweeps (every 10 s) and four keep-alives per socket: a shorter
    # hold contains a sweep or not by chance, and its CPU reading varied 2-3 x between runs.
    hold=20.0,
    ramp_budget=110.0,
    waiting=1000,
    admits=200,
    calls=8,
    invitations=100,
    purge_rows=1_000_000,
    revocations=100,
    outage_runs=20,
)

QUICK = Profile(
    name="quick",
    runs=1,
    rates=(1000, 5000, 20000),
    duration=1.5,
    warmup=0.3,
    pairs=20,
    scaleout_rates=(1000,),
    stages=(200, 500),
    thread_stages=(200, 500),
    hold=1.0,
    ramp_budget=30.0,
    waiting=100,
    admits=30,
    calls=2,
    invitations=20,
    purge_rows=20_000,
    revocations=20,
    outage_runs=2,
)
