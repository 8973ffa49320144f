"""``python -m bench`` (what ``bench/run`` starts): run the benchmarks, print the table, keep the figures.

Each benchmark runs in turn against services started for it; one that fails is reported as
failed and the others still run. Figures go to bench/results/ (JSON, not versioned) and, for
a full run, into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shlex
import signal
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    callsetup,
    connections,
    invitations,
    outages,
    pages,
    procs,
    purge,
    relay,
    report,
    revocation,
    seed,
    sysinfo,
    waiting,
)
from bench.context import Context
from bench.profile import FULL, QUICK, Profile

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs" / "benchmarks.md"
#: The worker class the production configuration recommends; the benchmarks that are not
#: about the worker class run with it.
PRODUCTION_WORKER = "gevent"
#: Where the sockets of the waiting-room and call set-up benchmarks are served: by the app's gevent
#: worker itself, and by ``flask vc signalling-server`` beside it (the production configuration).
SHAPES = ("flask-sock", "asyncio")
BENCHMARKS = (
    "relay",
    "scale_out",
    "connections",
    "waiting_room",
    "call_setup",
    "page_weight",
    "invitations",
    "purge",
    "revocation",
    "outages",
)


async def _connections(ctx: Context) -> dict[str, Any]:
    profile = ctx.profile
    ramps = []
    shapes = (
        ("gevent", "gevent", "flask-sock", profile.stages),
        ("gthread", "gthread", "flask-sock", profile.thread_stages),
        ("asyncio", "gevent", "asyncio", profile.stages),
    )
    for name, worker_class, signalling, stages in shapes:
        threads = max(stages) + 300 if signalling == "flask-sock" else 8
        server = ctx.ours(worker_class, threads=threads, signalling=signalling)
        server.connections = max(stages) + 300
        seats = ctx.seats(max(stages), [ctx.practitioner()])
        desk = seed.TicketDesk(ctx.db.url, ctx.redis.url, server.url + "/")
        try:
            ramp = await connections.ours(
                server.ws_url,
                server.pgid,
                seats,
                stages=list(stages),
                hold=profile.hold,
                budget=profile.ramp_budget,
                desk=desk,
            )
            ramp.server = f"ours ({name})"
            ramps.append(connections.as_dict(ramp))
        finally:
            desk.close()
            ctx.stop(server)
    peerjs = ctx.peerjs()
    try:
        ramps.append(
            connections.as_dict(
                await connections.peerjs(
                    peerjs.ws_url,
                    peerjs.pgid,
                    stages=list(profile.stages),
                    hold=profile.hold,
                    budget=profile.ramp_budget,
                )
            )
        )
    finally:
        ctx.stop(peerjs)
    return {"ramps": ramps}


def _in_turn(benchmark: Callable[..., Any], ctx: Context) -> dict[str, Any]:
    """One benchmark on each of ``SHAPES``, one after the other."""
    return {"runs": [asyncio.run(benchmark(ctx, PRODUCTION_WORKER, shape)) for shape in SHAPES]}


def _steps(ctx: Context) -> dict[str, Callable[[], Any]]:
    purge_timeout = 150.0 if ctx.profile is FULL else 60.0
    return {
        "relay": lambda: asyncio.run(relay.relay(ctx)),
        "scale_out": lambda: asyncio.run(relay.scale_out(ctx, PRODUCTION_WORKER)),
        "connections": lambda: asyncio.run(_connections(ctx)),
        "waiting_room": lambda: _in_turn(waiting.waiting_room, ctx),
        "call_setup": lambda: _in_turn(callsetup.call_setup, ctx),
        "page_weight": lambda: pages.page_weight(ctx),
        "invitations": lambda: invitations.invitations(ctx),
        "purge": lambda: purge.purge(ctx, purge_timeout),
        "revocation": lambda: asyncio.run(revocation.revocation(ctx, PRODUCTION_WORKER)),
        "outages": lambda: outages.outages(ctx),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few minutes (figures not meaningful)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--docs", action=argparse.BooleanOptionalAction, default=None, help="write docs/benchmarks.md")
    args = parser.parse_args(argv)
    profile: Profile = QUICK if args.quick else FULL
    chosen = [b for b in args.only.split(",") if b] or list(BENCHMARKS)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    write_docs = args.docs if args.docs is not None else (profile is FULL and not args.only)

    logging.basicConfig(level=logging.WARNING)
    # Stopped from outside (timeout, Ctrl-C): still stop the servers and drop the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    procs.pin_self(procs.CLIENT_CPUS)
    started = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    work = RESULTS / f"work-{stamp}"
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "command": "bench/run" + "".join(f" {shlex.quote(a)}" for a in (argv if argv is not None else sys.argv[1:])),
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "profile": profile.name,
        "rates": list(profile.rates),
        "pinned": procs.pinning_possible(),
        "machine": sysinfo.collect(),
        "timings": {},
    }
    print(f"==> bench ({profile.name}): {', '.join(chosen)}; logs in {work.relative_to(ROOT)}", flush=True)
    ctx = Context(profile, work)
    try:
        steps = _steps(ctx)
        for name in chosen:
            began = time.monotonic()
            print(f"==> {name}", flush=True)
            try:
                results[name] = steps[name]()
            except Exception as error:
                traceback.print_exc()
                results[name] = {"error": f"{type(error).__name__}: {error}"}
            results["timings"][name] = time.monotonic() - began
            print(f"    {name}: {results['timings'][name]:.0f} s", flush=True)
    finally:
        ctx.close()
    results["seconds"] = time.monotonic() - started
    (RESULTS / f"{stamp}-{profile.name}.json").write_text(json.dumps(results, indent=1, default=str))
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=1, default=str))
    print()
    print(report.markdown(results))
    if write_docs:
        report.write_docs(DOCS, results)
        print(f"==> wrote {DOCS.relative_to(ROOT)}")
    print(f"==> {results['seconds'] / 60:.1f} minutes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
