"""Benchmark 9: revocation, from the revoking request on one app process to the sockets closed on another.

docs/signaling.md ("Revocation") promises that every revoked socket, on whichever process it
runs, hears ``{"type": "revoked", …}`` and is closed with 4001 within one second. Measured in
the production configuration of docs/benchmarks.md: process A serves pages, check-in and the
JSON API (gunicorn thread worker), process B the sockets (gunicorn gevent worker), one Redis
and PostgreSQL between them; no request of a trial reaches B except the socket handshakes.

Each trial plans an appointment through the API (A), checks the patient in over HTTP (A),
opens the patient's and the practitioner's room sockets on B, admits the patient, and then
sends the revoking request to A: ``DELETE`` of the appointment (both sockets must close) or a
new code (``POST …/invitations/<id>/send``: only the patient's socket closes; the practitioner
hears ``peer-left`` and stays). The client stamps the ``revoked`` frame and the close frame as
they come off the wire, before any task reads them, from the moment the request was written.
Trials run one at a time on otherwise idle servers: latencies of the path, not under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Close, Frame, Opcode

from bench import seed
from bench.context import Context
from bench.peers import connect_options, discard
from bench.services import OurServer
from bench.stats import percentile
from tests.support.signal_client import SignalClient

#: The promise of docs/signaling.md ("Revocation").
WITHIN = 1.0
#: A socket that has not closed this long after the request was sent counts as missed.
PATIENCE = 5.0
#: On a new code, how long the practitioner's socket must stay open after the patient's closed.
KEPT_FOR = 0.3
#: A pause between trials, so that one trial's aftermath (went-offline, presence) is not the next one's load.
SETTLE = 0.1
#: The pages and API pool of the production configuration (``--threads 16``).
API_THREADS = 16
KINDS = ("delete", "new_code")
REASONS = {"delete": "deleted", "new_code": "new_code"}


class Stamped(ClientConnection):
    """A client socket that notes when each kind of message, and the close frame, came off the wire.

    Stamped in the protocol callback, not by a reader task, so the figures do not include the
    client's own scheduling.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stamps: dict[str, float] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.frame_code: int | None = None

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and self.response is not None:
            now = time.perf_counter()
            if event.opcode is Opcode.TEXT:
                with contextlib.suppress(ValueError):
                    body = json.loads(event.data)
                    kind = str(body.get("type"))
                    self.stamps.setdefault(kind, now)
                    self.messages.setdefault(kind, body)
            elif event.opcode is Opcode.CLOSE:
                self.stamps.setdefault("close", now)
                with contextlib.suppress(Exception):
                    self.frame_code = Close.parse(event.data).code
        super().process_event(event)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    sent_at: float  # perf_counter when the request was written
    done_at: float  # … and when the whole answer had arrived

    def json(self) -> Any:
        return json.loads(self.body)

    def cookies(self) -> dict[str, str]:
        jar: dict[str, str] = {}
        for name, value in self.headers:
            if name == "set-cookie":
                key, _, rest = value.split(";", 1)[0].partition("=")
                jar[key.strip()] = rest
        return jar


async def http(
    base: str,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    source: str | None = None,
) -> Answer:
    """One HTTP/1.1 request on a connection of its own; the clock starts once it is open.

    On asyncio streams rather than a blocking client, so that the sockets of the trial keep
    being read (and stamped) while the request is under way.
    """
    parts = urlsplit(base)
    reader, writer = await asyncio.open_connection(
        parts.hostname, parts.port, local_addr=(source, 0) if source else None
    )
    try:
        head = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
        head += [f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
        sent_at = time.perf_counter()
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").rstrip("\r\n").split("\r\n")
        pairs = [(name.strip().lower(), value.strip()) for name, _, value in (line.partition(":") for line in lines)]
        found = dict(pairs)
        if "chunked" in found.get("transfer-encoding", ""):
            raise RuntimeError(f"{method} {path}: a chunked answer (not expected from our app)")
        length = found.get("content-length")
        data = await reader.readexactly(int(length)) if length is not None else await reader.read()
        return Answer(int(status_line.split()[1]), pairs, data, sent_at, time.perf_counter())
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _source() -> str:
    """A client address of its own (see connect_options): check-ins are limited per address."""
    return str(connect_options()["local_addr"][0])


def _cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in jar.items())


async def _check_in(base: str, invitation: str, code: str) -> str:
    """The patient's HTTP part as docs/signaling.md describes it (JSON answer); returns the Cookie header."""
    source = _source()
    page = await http(base, "GET", f"/vc/join/{invitation}", source=source)
    found = re.search(rb'name="csrf_token" value="([^"]+)"', page.body)
    if page.status != 200 or found is None:
        raise RuntimeError(f"check-in page: {page.status} {page.body[:200]!r}")
    jar = page.cookies()
    form = urlencode({"csrf_token": found.group(1).decode(), "code": code, "name": "Bench Patient", "consent": "yes"})
    answer = await http(
        base,
        "POST",
        f"/vc/join/{invitation}",
        headers={
            "Cookie": _cookie_header(jar),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
        body=form.encode(),
        source=source,
    )
    if answer.status != 200:
        raise RuntimeError(f"check-in: {answer.status} {answer.body[:200]!r}")
    jar.update(answer.cookies())
    return _cookie_header(jar)


async def _open(ws_base: str, path: str, cookie: str) -> tuple[SignalClient, Stamped]:
    socket = await connect(
        ws_base + path,
        additional_headers={"Cookie": cookie},
        origin=ws_base.replace("ws://", "http://"),  # type: ignore[arg-type]
        create_connection=Stamped,
        **connect_options(),
    )
    return SignalClient(socket), cast(Stamped, socket)


async def _until(condition: Callable[[], bool], deadline: float) -> None:
    """Polls; the stamps are taken on arrival, so the polling interval does not enter the figures."""
    while not condition() and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)


def _after(socket: Stamped, kind: str, since: float) -> float | None:
    at = socket.stamps.get(kind)
    return None if at is None else at - since


async def _trial(
    kind: str, *, api: OurServer, sockets: OurServer, token: str, doctor: Any, doctor_cookie: str
) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    start = datetime.now(UTC) + timedelta(minutes=5)
    plan = {
        "practitioner": doctor.public_id,
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(minutes=60)).isoformat(),
        "participants": [{"kind": "patient", "language": "de"}],
    }
    planned = await http(api.url, "POST", "/vc/api/v1/appointments", headers=auth, body=json.dumps(plan).encode())
    if planned.status != 201:
        raise RuntimeError(f"planning: {planned.status} {planned.body[:300]!r}")
    appointment = planned.json()["id"]
    invitation = planned.json()["invitations"][0]
    cookie = await _check_in(api.url, invitation["id"], invitation["code"])
    path = f"/vc/ws/room/{appointment}"
    patient, patient_socket = await _open(sockets.ws_url, path, cookie)
    practitioner, practitioner_socket = await _open(sockets.ws_url, path, doctor_cookie)
    drains: list[asyncio.Task[None]] = []
    try:
        welcome = await patient.hello()
        if welcome.get("type") != "welcome" or welcome.get("state") != "waiting":
            raise RuntimeError(f"patient's hello: {welcome}")
        participant = welcome["you"]["id"]
        await practitioner.hello()
        await practitioner.send({"type": "admit", "appointment": appointment, "participant": participant})
        await patient.receive("admitted", timeout=10)
        await practitioner.receive("peer-joined", timeout=10)
        # From here on nobody reads for the trial: drain, so that the client never stops reading.
        drains = [asyncio.create_task(discard(s)) for s in (patient_socket, practitioner_socket)]

        if kind == "delete":
            answer = await http(api.url, "DELETE", f"/vc/api/v1/appointments/{appointment}", headers=auth)
            expected = 204
        else:
            body = json.dumps({"email": "patient@example.org"}).encode()
            answer = await http(
                api.url, "POST", f"/vc/api/v1/invitations/{invitation['id']}/send", headers=auth, body=body
            )
            expected = 200
        sent = answer.sent_at
        # Deleting closes both sockets; a new code only the patient's, and the practitioner hears peer-left.
        awaited = "close" if kind == "delete" else "peer-left"
        await _until(
            lambda: "close" in patient_socket.stamps and awaited in practitioner_socket.stamps, sent + PATIENCE
        )
        if kind == "new_code":
            await asyncio.sleep(KEPT_FOR)
        revoked = patient_socket.messages.get("revoked") or {}
        return {
            "kind": kind,
            "status": answer.status,
            "refused": answer.status != expected,
            "request": answer.done_at - sent,
            "patient_revoked": _after(patient_socket, "revoked", sent),
            "patient_closed": _after(patient_socket, "close", sent),
            "patient_close_code": patient_socket.frame_code,
            "patient_reason": revoked.get("reason"),
            "practitioner_revoked": _after(practitioner_socket, "revoked", sent),
            "practitioner_closed": _after(practitioner_socket, "close", sent),
            "practitioner_close_code": practitioner_socket.frame_code,
            "practitioner_peer_left": _after(practitioner_socket, "peer-left", sent),
        }
    finally:
        for task in drains:
            task.cancel()
        for socket in (patient_socket, practitioner_socket):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(socket.close(), 2)


def summary(seconds: list[float | None]) -> dict[str, float | int]:
    """p50, p95, p99 and max in milliseconds of the events that came; ``missed`` those that did not."""
    got = sorted(s for s in seconds if s is not None)
    return {
        "p50": percentile(got, 50) * 1000,
        "p95": percentile(got, 95) * 1000,
        "p99": percentile(got, 99) * 1000,
        "max": (got[-1] if got else float("nan")) * 1000,
        "n": len(got),
        "missed": len(seconds) - len(got),
        "over_limit": sum(1 for s in got if s > WITHIN),
    }


def _figures(kind: str, trials: list[dict[str, Any]]) -> dict[str, Any]:
    reason = REASONS[kind]
    measures = ["request", "patient_revoked", "patient_closed"]
    if kind == "delete":
        measures += ["practitioner_revoked", "practitioner_closed"]
        right = [
            t
            for t in trials
            if t["patient_reason"] == reason
            and t["patient_close_code"] == 4001
            and t["practitioner_close_code"] == 4001
            and t["practitioner_revoked"] is not None
        ]
        kept = None
    else:
        measures += ["practitioner_peer_left"]
        right = [t for t in trials if t["patient_reason"] == reason and t["patient_close_code"] == 4001]
        kept = sum(1 for t in trials if t["practitioner_closed"] is None and t["practitioner_revoked"] is None)
    promised = [m for m in measures if m.endswith(("_revoked", "_closed"))]
    slow = [t for t in trials if any(t[m] is not None and t[m] > WITHIN for m in promised)]
    return {
        "trials": len(trials),
        "refused": sum(1 for t in trials if t["refused"]),
        "as_documented": len(right),
        "practitioner_kept": kept,
        **{m: summary([t[m] for t in trials]) for m in measures},
        "over_limit_trials": slow,
    }


async def revocation(ctx: Context, socket_worker: str) -> dict[str, Any]:
    doctor = ctx.practitioner()
    slug = doctor.organisation.slug
    doctor_cookie = seed.practitioner_cookie(doctor)
    api = ctx.ours("gthread", threads=API_THREADS)
    sockets = ctx.ours(socket_worker)
    raw: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    try:
        for round_ in range(ctx.profile.revocations + 1):  # round 0 warms both processes up; not counted
            for kind in KINDS:
                # A token per trial: the API's budget per token (600 a minute) must not pace the run.
                _, token = ctx.state.api_tokens.create(slug, f"bench revocation {kind} {round_}")
                trial = await _trial(
                    kind, api=api, sockets=sockets, token=token, doctor=doctor, doctor_cookie=doctor_cookie
                )
                if round_:
                    raw[kind].append(trial)
                await asyncio.sleep(SETTLE)
    finally:
        ctx.stop(api)
        ctx.stop(sockets)
    return {
        "api": api.label,
        "sockets": sockets.label,
        "trials": ctx.profile.revocations,
        "within_seconds": WITHIN,
        "kinds": {kind: _figures(kind, raw[kind]) for kind in KINDS},
        "raw": raw,
    }
