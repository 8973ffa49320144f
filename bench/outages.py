"""Benchmark 10: real network outages, from the network's return to the call being back.

Two Chromiums (patient and practitioner) in a call over a direct path through a routed network
namespace (tests/support/netns.py, tests/support/outage_call.py). One side's interface is taken
really down for 5 s, 40 s or 120 s (``ip link set … down``, as a lost Wi-Fi), then brought up;
each run times, from the moment the link and its routes are back, until remote pictures move
again on both sides, sound arrives on both sides, and a chat line sent after the return arrives
each way. The slowest of the three is the run's recovery time; a run not back within 60 s
counts as not recovered. Each run has a call of its own (new appointment, new pages), and notes
whether the relay consent dialog (or a relay notice) opened during the outage or was still open
once the call was back.

Runs execute in several lanes at once, each a process with its own network, app server, coturn
and pair of browsers, pulling the next run from a shared list (longest outages first, so the
lanes finish together). Two lanes (the published figures) keep two cores busy with the fake
camera's small clip (320×240 at 10 fps); three still fit (12 five-second outages gave p50 2.6 /
2.8 s, p95 3.3 / 4.0 s with three lanes and with one) but leave less room for anything else, and
at 640×360 and 15 fps three lanes stretched the tail (p95 5.6 s against 4.2 s with one lane; audio
and chat p50 doubled). Each run records how
busy the machine was while it waited for recovery, and for how much of that time some task
waited for a CPU (/proc/pressure/cpu), so a starved run can be told apart.
``VC_BENCH_OUTAGE_LANES`` and ``VC_BENCH_OUTAGE_VIDEO`` (e.g. ``640x360x15``) change both.

``python -m bench.outages --lane DIR`` is one lane: it reads runs as JSON lines on stdin and
answers each with a JSON line on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.stats import percentile

ROOT = Path(__file__).resolve().parents[1]
SIDES = ("patient", "practitioner")
DURATIONS = (5, 40, 120)
#: The promise, measured here with repetitions (tests/browser/test_outages.py holds one run to 15 s).
WITHIN = 5.0
#: A run not back this long after the network counts as not recovered.
BOUND = 60.0
#: Calls at once; each a network, an app server, coturn and two Chromiums.
LANES = int(os.environ.get("VC_BENCH_OUTAGE_LANES", "2"))


def _video(spec: str) -> tuple[int, int, int]:
    width, height, fps = (int(v) for v in spec.split("x"))
    return width, height, fps


#: The fake camera's clip: width, height, frames per second (the default fake camera is 1280×720).
VIDEO = _video(os.environ.get("VC_BENCH_OUTAGE_VIDEO", "320x240x10"))
#: A lane that has not answered this long after a run's outage ended is stuck: it is replaced.
STUCK_AFTER = BOUND + 120.0


def _runs(count: int) -> list[dict[str, Any]]:
    """Every case ``count`` times, longest outages first and the sides interleaved."""
    jobs = [
        {"side": side, "seconds": seconds, "run": run}
        for seconds in sorted(DURATIONS, reverse=True)
        for run in range(count)
        for side in SIDES
    ]
    for number, job in enumerate(jobs):
        job["id"] = number
    return jobs


class Lane:
    """One lane process and the thread that feeds it runs."""

    def __init__(self, number: int, work: Path, app_root: str | None) -> None:
        self.number = number
        self.work = work / f"outage-lane-{number}"
        self.work.mkdir(parents=True, exist_ok=True)
        self.app_root = app_root
        self.process: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str | None] = queue.Queue()

    def start(self) -> None:
        args = [sys.executable, "-m", "bench.outages", "--lane", str(self.work)]
        if self.app_root:
            args += ["--app-root", self.app_root]
        with (self.work / "lane.log").open("a") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                args,
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
            )
        self.lines = queue.Queue()
        stdout = self.process.stdout
        assert stdout is not None
        threading.Thread(target=self._read, args=(stdout, self.lines), daemon=True).start()

    @staticmethod
    def _read(stream: Any, lines: queue.Queue[str | None]) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    def answer(self, timeout: float) -> dict[str, Any]:
        line = self.lines.get(timeout=timeout)
        if line is None:
            raise RuntimeError(f"lane {self.number} exited (see {self.work / 'lane.log'})")
        return json.loads(line)

    def ask(self, job: dict[str, Any]) -> dict[str, Any]:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        return self.answer(job["seconds"] + STUCK_AFTER)

    def stop(self) -> None:
        """Closes its input (the lane then takes its world down); SIGTERM and SIGKILL if it lingers."""
        process = self.process
        if process is None:
            return
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()
        for sig, wait in ((None, 30), (signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            if sig is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.process = None


def _drive(lane: Lane, jobs: queue.Queue[dict[str, Any]], results: list[dict[str, Any]], total: int) -> None:
    """Feeds runs to one lane until none are left; a lane that fails to start or hangs is replaced."""
    started = False
    failed_starts = 0
    while True:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            break
        if not started:
            try:
                lane.start()
                ready = lane.answer(180.0)
                if "error" in ready:
                    raise RuntimeError(ready["error"])
                started = True
            except Exception as error:
                print(f"    lane {lane.number} did not start: {error}", flush=True)
                lane.stop()
                jobs.put(job)  # another lane (or this one, once more) takes it
                failed_starts += 1
                if failed_starts >= 2:
                    break
                continue
        try:
            result = lane.ask(job)
        except Exception as error:
            result = {**job, "error": f"lane {lane.number}: {type(error).__name__}: {error}"}
            lane.stop()
            started = False
        result["lane"] = lane.number
        results.append(result)
        took = result.get("time")
        shown = "error" if "error" in result else ("not back" if took is None else f"{took:.2f} s")
        print(
            f"    [{len(results)}/{total}] lane {lane.number}: {job['side']} {job['seconds']} s → {shown}",
            flush=True,
        )
    lane.stop()


def _case(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Percentiles over a case's runs; a run not back counts as infinitely slow."""
    measured = [r for r in runs if "error" not in r]
    times = [math.inf if r["time"] is None else r["time"] for r in measured]

    def part(key: str) -> float:
        return percentile([math.inf if r[key] is None else r[key] for r in measured], 50)

    busy = [r["machine_busy"] for r in measured if r.get("machine_busy") is not None]
    stalled = [r["cpu_pressure"] for r in measured if r.get("cpu_pressure") is not None]
    return {
        "runs": len(runs),
        "measured": len(measured),
        "errors": len(runs) - len(measured),
        "p50": percentile(times, 50),
        "p95": percentile(times, 95),
        "worst": max(times, default=math.nan),
        "within": sum(t <= WITHIN for t in times),
        "recovered": sum(math.isfinite(t) for t in times),
        "video_p50": part("video"),
        "audio_p50": part("audio"),
        "chat_p50": part("chat"),
        "dialog_during": sum(bool(r["relay_dialog_during"]) for r in measured),
        "dialog_after": sum(bool(r["relay_dialog_after"] or r["notices_after"]) for r in measured),
        "busy_p50": percentile(busy, 50),
        "busy_max": max(busy, default=math.nan),
        "stall_p50": percentile(stalled, 50),
        "stall_max": max(stalled, default=math.nan),
    }


def outages(ctx: Context, lanes: int = LANES) -> dict[str, Any]:
    count = ctx.profile.outage_runs
    plan = _runs(count)
    jobs: queue.Queue[dict[str, Any]] = queue.Queue()
    for job in plan:
        jobs.put(job)
    results: list[dict[str, Any]] = []
    app_root = os.environ.get("VC_BENCH_APP_ROOT") or None
    print(f"    {len(plan)} runs in {lanes} lanes (logs in {ctx.work.relative_to(ROOT)}/outage-lane-*)", flush=True)
    drivers = [Lane(n, ctx.work, app_root) for n in range(lanes)]
    threads = [threading.Thread(target=_drive, args=(d, jobs, results, len(plan)), daemon=True) for d in drivers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for lane in drivers:
            lane.stop()
    while not jobs.empty():  # every lane gave up
        results.append({**jobs.get_nowait(), "error": "not run: no lane could start"})
    cases = {
        f"{side}-{seconds}": {
            "side": side,
            "seconds": seconds,
            **_case([r for r in results if r["side"] == side and r["seconds"] == seconds]),
        }
        for side in SIDES
        for seconds in DURATIONS
    }
    return {
        "lanes": lanes,
        "runs_per_case": count,
        "within_seconds": WITHIN,
        "bound_seconds": BOUND,
        "video": list(VIDEO),
        "app_root": app_root,
        "cases": cases,
        "raw": sorted(results, key=lambda r: r["id"]),
    }


# --- one lane ------------------------------------------------------------------------------------


def _lane(work: Path, app_root: Path | None) -> int:
    """Runs jobs from stdin in one world, one call each; a failed run gets a fresh world."""
    from playwright.sync_api import sync_playwright

    from tests.support.outage_call import OutageWorld

    # The bench pins itself to the client core; calls need both cores like a real machine's.
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but answers on the pipe

    def say(message: dict[str, Any]) -> None:
        out.write(json.dumps(message, default=str) + "\n")
        out.flush()

    with sync_playwright() as playwright:
        world: OutageWorld | None = None
        worlds = 0

        def fresh() -> OutageWorld:
            nonlocal worlds
            worlds += 1
            directory = work / f"world-{worlds}"
            directory.mkdir(parents=True, exist_ok=True)
            return OutageWorld(playwright, directory, video=VIDEO, app_root=app_root).start()

        try:
            try:
                world = fresh()
            except Exception as error:
                traceback.print_exc()
                say({"error": f"{type(error).__name__}: {error}"})
                return 1
            say({"ready": True, "network": world.network.index})
            for line in sys.stdin:
                job = json.loads(line)
                began = time.monotonic()
                try:
                    if world is None:
                        world = fresh()
                    call = world.call()
                    try:
                        recovery = call.measure_recovery(job["side"], job["seconds"], bound=BOUND)
                    finally:
                        call.close()
                    measured = recovery.as_dict()
                    measured["down_seconds"] = measured.pop("seconds")
                    say({**measured, **job, "took": time.monotonic() - began})
                except Exception as error:
                    traceback.print_exc()
                    say({**job, "error": f"{type(error).__name__}: {error}", "took": time.monotonic() - began})
                    if world is not None:
                        world.close()
                    world = None
        finally:
            if world is not None:
                world.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.outages", description=__doc__)
    parser.add_argument("--lane", type=Path, required=True, help="work directory of this lane")
    parser.add_argument("--app-root", type=Path, default=None, help="serve the app from another checkout")
    args = parser.parse_args(argv)
    return _lane(args.lane, args.app_root)


if __name__ == "__main__":
    sys.exit(main())
