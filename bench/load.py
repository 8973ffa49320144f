"""The open-loop load generator: signalling sessions at a fixed message rate over open pairs.

Open loop means each message has a scheduled send time, ``t0 + k / rate``, whatever happened to
earlier messages; latency is measured from that scheduled time to arrival at the other peer, so
a server (or a client) that falls behind shows up in the latency instead of silently lowering
the load (no coordinated omission). Sender and receivers share one clock: the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from bench import procs, wire
from bench.peers import Pairs
from bench.stats import summary_ms

DRAIN_SECONDS = 3.0
#: Sequence numbers are unique across points, so a late message of an earlier point is ignored.
_bases = itertools.count(0, 10**7)


@dataclass(frozen=True)
class Watched:
    """A process group whose CPU time is charged to the server side."""

    role: str  # "app" or "redis"
    pgid: int


@dataclass
class PointResult:
    rate: int
    sent: int
    measured: int  # messages after the warm-up
    delivered: int  # of the measured ones
    achieved: float  # delivered messages per second
    latency: dict[str, dict[str, float]]  # kind -> p50/p99/max in ms
    cpu_us: dict[str, float]  # role -> CPU microseconds per delivered message
    client_busy: float  # share of one core the load client used
    send_lag_ms: float  # p99 of (actual − scheduled) send time: the client falling behind
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def loss(self) -> float:
        return 1 - self.delivered / self.measured if self.measured else float("nan")


class _Receiver:
    def __init__(self, base: int, total: int) -> None:
        self.base = base
        self.arrived = [0.0] * total
        self.count = 0
        self.errors: dict[str, int] = {}

    async def read(self, socket: Any) -> None:
        clock, base, total = time.perf_counter, self.base, len(self.arrived)
        arrived = self.arrived
        try:
            async for raw in socket:
                now = clock()
                i = raw.find(wire.MARK)
                if i >= 0:
                    seq = int(raw[i + 6 : i + 16]) - base
                    if 0 <= seq < total:
                        arrived[seq] = now
                        self.count += 1
                elif '"error"' in raw or '"ERROR"' in raw or '"EXPIRE"' in raw:
                    self.errors[raw[:60]] = self.errors.get(raw[:60], 0) + 1
        except Exception as error:  # a socket closed by the server under overload counts as an error
            name = f"socket closed: {type(error).__name__}"
            self.errors[name] = self.errors.get(name, 0) + 1


def _plan(pairs: Pairs) -> list[list[tuple[Any, wire.Template]]]:
    """Per pair, the eight (socket, message) steps of one session."""
    plan = []
    for pair in pairs.items:
        steps = []
        for kind, from_a in wire.SESSION:
            socket, to = (pair.a, pair.b_id) if from_a else (pair.b, pair.a_id)
            steps.append((socket, wire.template(pairs.protocol, kind, to)))
        plan.append(steps)
    return plan


def _cpu(watched: list[Watched]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for item in watched:
        totals[item.role] = totals.get(item.role, 0.0) + procs.usage(item.pgid).cpu_seconds
    return totals


async def settle(watched: list[Watched], *, below: float = 0.05, limit: float = 5.0) -> None:
    """Wait until the server side is idle again (a backlog of an overloaded run is worked off)."""
    deadline = time.monotonic() + limit
    before = sum(_cpu(watched).values())
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        now = sum(_cpu(watched).values())
        if now - before < below * 0.25:
            return
        before = now


async def run(pairs: Pairs, rate: int, duration: float, warmup: float, watched: list[Watched]) -> PointResult:
    """Send sessions at ``rate`` messages/s for ``warmup + duration`` seconds; figures cover ``duration``.

    The garbage collector is off while it runs: a full collection over the orchestrator's heap
    (SQLAlchemy, Flask) would pause the client for tens of milliseconds and show up as latency.
    """
    gc.collect()
    gc.disable()
    try:
        return await _run(pairs, rate, duration, warmup, watched)
    finally:
        gc.enable()


async def _run(pairs: Pairs, rate: int, duration: float, warmup: float, watched: list[Watched]) -> PointResult:
    plan = _plan(pairs)
    npairs = len(plan)
    total = int(rate * (duration + warmup))
    skip = int(rate * warmup)
    base = next(_bases)
    receiver = _Receiver(base, total)
    readers = [asyncio.create_task(receiver.read(s)) for p in pairs.items for s in (p.a, p.b)]
    lag: list[float] = []
    await asyncio.sleep(0.05)
    cpu_before, client_before, wall_before = _cpu(watched), procs.self_cpu(), time.perf_counter()
    t0 = time.perf_counter() + 0.02
    k = 0
    clock = time.perf_counter
    while k < total:
        now = clock()
        due = min(total, int((now - t0) * rate) + 1)
        if due <= k:
            await asyncio.sleep(t0 + k / rate - now)
            continue
        while k < due:
            steps = plan[(k >> 3) % npairs]
            socket, message = steps[k & 7]
            with contextlib.suppress(Exception):  # a socket the server closed: the message is lost
                await socket.send(message.render(base + k))
            if k % 50 == 0:
                lag.append(clock() - (t0 + k / rate))
            k += 1
        await asyncio.sleep(0)
    end_send = clock()
    deadline = end_send + DRAIN_SECONDS
    while receiver.count < total and clock() < deadline:
        await asyncio.sleep(0.02)
    wall = time.perf_counter() - wall_before
    client = (procs.self_cpu() - client_before) / wall
    cpu_after = _cpu(watched)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)

    arrived = receiver.arrived
    by_kind: dict[str, list[float]] = {kind: [] for kind in wire.KINDS}
    delivered, last = 0, t0
    for seq in range(skip, total):
        at = arrived[seq]
        if at:
            delivered += 1
            last = max(last, at)
            by_kind[wire.SESSION[seq & 7][0]].append(at - (t0 + seq / rate))
    measured = total - skip
    window = last - (t0 + skip / rate)
    cpu_us = {role: (cpu_after[role] - cpu_before.get(role, 0.0)) / max(1, receiver.count) * 1e6 for role in cpu_after}
    lag.sort()
    return PointResult(
        rate=rate,
        sent=total,
        measured=measured,
        delivered=delivered,
        achieved=delivered / window if window > 0 else 0.0,
        latency={kind: summary_ms(values) for kind, values in by_kind.items()},
        cpu_us=cpu_us,
        client_busy=client,
        send_lag_ms=(lag[int(0.99 * (len(lag) - 1))] * 1000) if lag else 0.0,
        errors=dict(receiver.errors),
    )
