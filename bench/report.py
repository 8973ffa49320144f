"""The results as Markdown tables: printed after a run and written into docs/benchmarks.md.

Only the part between the markers in docs/benchmarks.md is generated; the prose around it
(what each figure means and what limits it, the production configuration) is written by hand.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"


def _n(value: Any, digits: int = 0, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}{unit}"


def _ms(s: dict[str, float]) -> str:
    return f"{_n(s['p50'], 1)} / {_n(s['p99'], 1)} / {_n(s['max'], 0)}"


def _kb(value: float) -> str:
    return _n(value / 1024, 0, " KB")


def _relay_rows(servers: dict[str, list[dict[str, Any]]], rates: list[int]) -> list[str]:
    rows = [
        "| server | offered msg/s | achieved msg/s | loss | offer p50 / p99 / max ms | answer p50 / p99 / max ms "
        "| candidate p50 / p99 / max ms | server CPU µs/msg | client busy |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for rate in rates:
        for name, points in servers.items():
            point = next((p for p in points if p["rate"] == rate), None)
            if point is None:
                top = max((p["rate"] for p in points), default=0)
                rows.append(f"| {name} | {rate:,} | not offered: saturated at {top:,} | | | | | | |")
                continue
            cpu = point["cpu_us"]
            cpu_text = _n(cpu.get("app"), 0) + (f" (+{_n(cpu['redis'], 0)} Redis)" if "redis" in cpu else "")
            lat = point["latency"]
            rows.append(
                f"| {name} | {rate:,} | {_n(point['achieved'])} | {_n(point['loss'] * 100, 1, ' %')} "
                f"| {_ms(lat['offer'])} | {_ms(lat['answer'])} | {_ms(lat['candidate'])} | {cpu_text} "
                f"| {_n(point['client_busy'] * 100, 0, ' %')} |"
            )
    return rows


def _capacity(servers: dict[str, list[dict[str, Any]]]) -> list[str]:
    from bench.relay import carried as carries

    rows = [
        "| server | highest rate carried (≥ 95 % delivered, ≤ 1 % lost, p99 ≤ 100 ms) | most delivered |",
        "|---|--:|--:|",
    ]
    for name, points in servers.items():
        carried = [
            p["rate"]
            for p in points
            if carries(p["rate"], p["achieved"], p["loss"], [v["p99"] for v in p["latency"].values()])
        ]
        rows.append(
            f"| {name} | {_n(max(carried)) if carried else '–'} msg/s "
            f"| {_n(max((p['achieved'] for p in points), default=math.nan))} msg/s |"
        )
    return rows


def tables(results: dict[str, Any]) -> str:
    out: list[str] = []
    relay = results.get("relay")
    if relay and "servers" in relay:
        rates = sorted({p["rate"] for points in relay["servers"].values() for p in points} | set(results["rates"]))
        out += ["### 1. Signalling relay, ours beside PeerJS (medians of the rounds)", ""]
        out += [*_relay_rows(relay["servers"], rates), ""]
        out += [*_capacity(relay["servers"]), ""]
    elif relay:
        out += ["### 1. Signalling relay", "", f"failed: {relay.get('error')}", ""]

    scale = results.get("scale_out")
    if scale and "servers" in scale:
        rates = sorted({p["rate"] for points in scale["servers"].values() for p in points})
        out += [f"### 3. Scale-out: one app process against two on one Redis ({scale['worker']})", ""]
        out += [*_relay_rows(scale["servers"], rates), ""]
    elif scale:
        out += ["### 3. Scale-out", "", f"failed: {scale.get('error')}", ""]

    ramps = results.get("connections")
    if ramps and "ramps" in ramps:
        out += ["### 2. Concurrent sockets with keep-alive", ""]
        out += [
            "| server | open sockets | connects/s | server CPU per connect | resident memory | per socket | threads "
            "| file descriptors | CPU while holding | failed / dropped |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for ramp in ramps["ramps"]:
            for stage in ramp["stages"]:
                out.append(
                    f"| {ramp['server']} | {stage['sockets']:,} | {_n(stage['connect_rate'])} "
                    f"| {_n(stage['connect_cpu_ms'], 1, ' ms')} "
                    f"| {_n(stage['rss_bytes'] / 2**20, 0, ' MiB')} | {_kb(stage['rss_per_socket'])} "
                    f"| {stage['threads']:,} | {stage['fds']:,} | {_n(stage['hold_cpu_share'] * 100, 1, ' %')} "
                    f"| {stage['failed_connects']} / {stage['dropped']} |"
                )
            if ramp.get("error"):
                out.append(f"| {ramp['server']} | stopped: {ramp['error']} | | | | | | | | |")
        out.append("")
    elif ramps:
        out += ["### 2. Concurrent sockets", "", f"failed: {ramps.get('error')}", ""]

    out += _waiting_room(results.get("waiting_room"))
    out += _call_setup(results.get("call_setup"))

    pages = results.get("page_weight")
    if pages and "check_in" in pages:
        out += ["### 6. Page weight for a patient (cold cache)", ""]
        out += ["| page | files | as served | gzip -6 |", "|---|--:|--:|--:|"]
        for label, key in (("check-in", "check_in"), ("call", "call"), ("both (shared files once)", "journey")):
            p = pages[key]
            out.append(f"| {label} | {p['files']} | {_kb(p['served'])} | {_kb(p['gzip'])} |")
        out += ["", f"Our app compresses responses itself: {'yes' if pages['app_compresses'] else 'no'}.", ""]
    elif pages:
        out += ["### 6. Page weight", "", f"failed: {pages.get('error')}", ""]

    mails = results.get("invitations")
    if mails and "per_second" in mails:
        out += ["### 7. Invitations through one RQ worker into local SMTP", ""]
        out += ["| mails | mails/s | worker CPU per mail | worker start-up | planning per invitation |"]
        out += ["|--:|--:|--:|--:|--:|"]
        out.append(
            f"| {mails['mails']} of {mails['expected']} | {_n(mails['per_second'], 1)} "
            f"| {_n(mails['worker_cpu_ms_per_mail'], 1, ' ms')} | {_n(mails['worker_start_seconds'], 1, ' s')} "
            f"| {_n(mails['planning_per_invitation_ms'], 0, ' ms')} |"
        )
        out.append("")
    elif mails:
        out += ["### 7. Invitations", "", f"failed: {mails.get('error')}", ""]

    purge = results.get("purge")
    if purge and "rows" in purge:
        out += ["### 8. Retention purge on PostgreSQL", ""]
        out += ["| expired appointments | time | appointments/s | peak memory (purge process) | result |"]
        out += ["|--:|--:|--:|--:|---|"]
        if purge.get("finished"):
            grew = (purge["peak_rss"] - purge["rss_before"]) / 2**20
            out.append(
                f"| {purge['rows']:,} | {_n(purge['seconds'], 1, ' s')} | {_n(purge['rows'] / purge['seconds'])} "
                f"| {_n(purge['peak_rss'] / 2**20, 0, ' MiB')} (+{_n(grew, 1)} MiB during the purge) "
                f"| all deleted: {purge['left'] == 0}, others kept: {purge['others_kept']} |"
            )
        else:
            done = purge["rows"] - purge["left"]
            stopped = purge["stopped_after"]
            projected = purge.get("projected_seconds")
            projection = (
                f"projected ≥ {_n(projected / 3600, 1, ' h')}"
                if projected is not None and math.isfinite(projected)
                else "not one batch of 1,000 committed"
            )
            out.append(
                f"| {purge['rows']:,} | stopped after {_n(stopped, 0, ' s')}; {projection} "
                f"| {_n(done / stopped if stopped else math.nan)} | – | {done:,} deleted, {purge['left']:,} left |"
            )
        out += ["", f"Writing the rows took {_n(purge['insert_seconds'], 1)} s.", ""]
    elif purge:
        out += ["### 8. Retention purge", "", f"pending: {purge.get('error')}", ""]

    out += _revocation(results.get("revocation"))
    out += _outages(results.get("outages"))
    return "\n".join(out)


#: Rows of table 9: (kind, measure, label).
_REVOCATION_ROWS = (
    ("delete", "request", "`DELETE /vc/api/v1/appointments/{id}` to A → its answer (204)"),
    ("delete", "patient_revoked", "… → patient's socket on B hears `revoked` (`deleted`)"),
    ("delete", "patient_closed", "… → patient's socket on B gets the close frame (4001)"),
    ("delete", "practitioner_revoked", "… → practitioner's room socket on B hears `revoked`"),
    ("delete", "practitioner_closed", "… → practitioner's room socket on B gets the close frame (4001)"),
    ("new_code", "request", "`POST /vc/api/v1/invitations/{id}/send` (new code) to A → its answer (200)"),
    ("new_code", "patient_revoked", "… → patient's socket on B hears `revoked` (`new_code`)"),
    ("new_code", "patient_closed", "… → patient's socket on B gets the close frame (4001)"),
    ("new_code", "practitioner_peer_left", "… → practitioner's room socket on B hears `peer-left` (stays open)"),
)


def _revocation(rev: dict[str, Any] | None) -> list[str]:
    if not rev:
        return []
    if "kinds" not in rev:
        return ["### 9. Revocation", "", f"failed: {rev.get('error')}", ""]
    out = [
        f"### 9. Revocation: request to process A → sockets closed on process B "
        f"(API on {rev['api']}, sockets on {rev['sockets']})",
        "",
        "| from → to | p50 ms | p95 ms | p99 ms | max ms | measured | missed (> 5 s) | over 1 s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for kind, measure, label in _REVOCATION_ROWS:
        s = rev["kinds"][kind][measure]
        over = "–" if measure == "request" else str(s["over_limit"])
        out.append(
            f"| {label} | {_n(s['p50'], 1)} | {_n(s['p95'], 1)} | {_n(s['p99'], 1)} | {_n(s['max'], 1)} "
            f"| {s['n']} | {s['missed']} | {over} |"
        )
    delete, new_code = rev["kinds"]["delete"], rev["kinds"]["new_code"]
    out += [
        "",
        f"{rev['trials']} trials of each kind, one at a time, after one warm-up trial each. "
        f"As documented (final message with the reason, close code 4001 on every revoked socket): "
        f"{delete['as_documented']} of {delete['trials']} deletions, {new_code['as_documented']} of "
        f"{new_code['trials']} new codes; on a new code the practitioner's socket stayed open "
        f"{new_code['practitioner_kept']} of {new_code['trials']} times. Requests refused: "
        f"{delete['refused'] + new_code['refused']}.",
        "",
    ]
    return out


def _seconds(value: float, bound: float) -> str:
    """Seconds with two digits; a run that never came back reads "> bound"."""
    if isinstance(value, float) and math.isinf(value):
        return f"> {bound:.0f}"
    return _n(value, 2)


def _pct(share: float | None) -> str:
    return _n(math.nan if share is None else share * 100, 0, " %")


def _outages(data: dict[str, Any] | None) -> list[str]:
    if not data:
        return []
    if "cases" not in data:
        return ["### 10. Network outages", "", f"failed: {data.get('error')}", ""]
    bound, within = data["bound_seconds"], data["within_seconds"]
    width, height, fps = data["video"]
    out = [
        f"### 10. Network outages: network back → call back (two Chromiums, direct path, "
        f"{data['lanes']} calls at a time)",
        "",
        f"| side offline | outage | runs | back ≤ {within:.0f} s | back ≤ {bound:.0f} s | p50 s | p95 s | worst s "
        "| video / audio / chat p50 s | relay dialog during / left open | CPU busy p50 / max "
        "| waiting for CPU p50 / max |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    errors = 0
    for case in data["cases"].values():
        errors += case["errors"]
        stall = f"{_pct(case.get('stall_p50'))} / {_pct(case.get('stall_max'))}"
        parts = " / ".join(_seconds(case[f"{k}_p50"], bound) for k in ("video", "audio", "chat"))
        out.append(
            f"| {case['side']} | {case['seconds']} s | {case['measured']} | {case['within']} | {case['recovered']} "
            f"| {_seconds(case['p50'], bound)} | {_seconds(case['p95'], bound)} | {_seconds(case['worst'], bound)} "
            f"| {parts} | {case['dialog_during']} / {case['dialog_after']} "
            f"| {_pct(case['busy_p50'])} / {_pct(case['busy_max'])} "
            f"| {stall} |"
        )
    out += [
        "",
        f"{data['runs_per_case']} runs per case, each a call of its own; times from the link's return (with its "
        f"routes) until remote pictures move and sound arrives on both sides and a chat line sent after the "
        f"return has arrived each way (the slowest of the three). CPU busy: share of both cores in use while "
        f"a run waited for recovery; waiting for CPU: share of that time in which some task was runnable but "
        f"found no free core (/proc/pressure/cpu), the sign of a starved run. "
        f"Fake camera {width}×{height} at {fps} fps. "
        f"Runs that could not be measured (set-up failed): {errors}."
        + (f" App served from `{data['app_root']}`." if data.get("app_root") else ""),
        "",
    ]
    return out


def header(results: dict[str, Any]) -> str:
    m = results["machine"]
    versions = (
        f"Python {m['python']}, gunicorn {m['gunicorn']}, gevent {m['gevent']}, flask-sock {m['flask_sock']}, "
        f"simple-websocket {m['simple_websocket']}, Redis {m['redis']}, PostgreSQL {m['postgresql']}, "
        f"Node.js {m['node']}, peer {m['peer']} (ws {m['ws']}), websockets {m['websockets_client']} (the signalling "
        f"server and the load client), msgspec {m.get('msgspec', '?')}, redis-py {m.get('redis_py', '?')} "
        f"(hiredis {m.get('hiredis', '?')}), aiortc {m['aiortc']}, RQ {m['rq']}"
    )
    return "\n".join(
        [
            f"Run `{results['command']}` on {results['started']} ({results['profile']} profile), "
            f"{_n(results['seconds'] / 60, 1)} minutes.",
            "",
            f"Machine: {m['cpus']} cores ({m['cpu_model']}), {m['memory_gib']} GiB, Linux {m['kernel']}, "
            f"open files limit {m['open_files_limit']}. Server side pinned to core 0, load client to core 1: "
            f"{'yes' if results['pinned'] else 'no (fewer than two cores)'}.",
            "",
            f"Versions: {versions}.",
            "",
        ]
    )


def markdown(results: dict[str, Any]) -> str:
    return header(results) + "\n" + tables(results)


def _runs(result: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A benchmark measured on one server, or on several in turn (``runs``)."""
    if not result:
        return []
    return list(result["runs"]) if "runs" in result else [result]


def _each_run(
    result: dict[str, Any] | None, measured: str, title: str, table: Callable[[dict[str, Any]], list[str]]
) -> list[str]:
    """One table per run; a run without its ``measured`` figures says why, under ``title``."""
    out: list[str] = []
    for run in _runs(result):
        out += table(run) if measured in run else [title, "", f"failed: {run.get('error')}", ""]
    return out


def _waiting_room(result: dict[str, Any] | None) -> list[str]:
    return _each_run(result, "arrival_to_notification", "### 4. Waiting room", _waiting_room_table)


def _waiting_room_table(wait: dict[str, Any]) -> list[str]:
    a, b = wait["arrival_to_notification"], wait["admit_to_admitted"]
    return [
        f"### 4. Waiting room with {wait['waiting']:,} patients waiting ({wait['worker']})",
        "",
        "| from → to | p50 ms | p99 ms | max ms | measured | missed |",
        "|---|--:|--:|--:|--:|--:|",
        f"| patient's hello → practitioner's dashboard notified | {_n(a['p50'], 1)} | {_n(a['p99'], 1)} "
        f"| {_n(a['max'], 1)} | {a['n']} | {wait['arrivals_missed']} |",
        f"| admit sent → patient hears admitted | {_n(b['p50'], 1)} | {_n(b['p99'], 1)} | {_n(b['max'], 1)} "
        f"| {b['n']} | {wait['admits_missed']} |",
        "",
        f"Filling the rooms took {_n(wait['fill_seconds'], 1)} s.",
        "",
    ]


def _call_setup(result: dict[str, Any] | None) -> list[str]:
    return _each_run(result, "signalled", "### 5. Call set-up", _call_setup_table)


def _call_setup_table(calls: dict[str, Any]) -> list[str]:
    out = [
        f"### 5. Call set-up, admit → data channel open on both sides ({calls['worker']})",
        "",
        "| path | p50 ms | max ms | calls |",
        "|---|--:|--:|--:|",
    ]
    for label, key in (("through our signalling", "signalled"), ("direct in one process (floor)", "direct")):
        summary = calls[key]
        out.append(f"| {label} | {_n(summary['p50'], 0)} | {_n(summary['max'], 0)} | {summary['n']} |")
    return [*out, ""]


def write_docs(path: Path, results: dict[str, Any]) -> None:
    body = f"{START}\n{markdown(results)}\n{END}"
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text:
        text += f"\n{START}\n{END}\n"
    path.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: body, text, flags=re.DOTALL))
