"""Real network outages during a WebRTC call between two Chromiums, measured from the outside.

A routed network of namespaces (tests/support/netns.py, ``routed=True``) gives the patient's and
the practitioner's browsers a direct path to each other; the app server (and coturn, so that a
relay is on offer as in a real practice) runs in the server namespace. ``OutageCall`` sets up a
call the way people do (plan, check in, admit) and then takes one side's interface really down,
as a lost Wi-Fi does, and measures what a person notices once the network is back: pictures
moving again on both sides, sound arriving on both sides, and chat getting through both ways.

Pages are instrumented before any of their scripts run (``add_init_script``): every
RTCPeerConnection, data channel and WebSocket the client makes is kept and its state changes
are logged with ``Date.now()`` (the same clock as ``time.time()`` here), together with
``online``/``offline`` events, the relay dialog and relay notices, and chat lines as they appear.
So the harness does not depend on how the client is written, only on what it shows.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from tests.browser.conftest import (
    DESKTOP,
    admit,
    check_in,
    chromium_path,
    enter_waiting_room,
    in_call,
    launch,
    open_call,
)
from tests.support.coturn import SECRET, Coturn
from tests.support.hosts import HostApp, make_host_app
from tests.support.live import LiveServer
from tests.support.netns import Network
from tests.support.people import People, make_people
from tests.support.signal_client import practitioner_cookie
from vc_plugin.core.models import Base
from vc_plugin.domain.access import Principal
from vc_plugin.domain.inputs import AppointmentIn

#: Names a caller may use for the two sides, and the namespace role each one is.
SIDES = {"patient": "patient", "practitioner": "doctor", "doctor": "doctor"}
ROLES = ("patient", "doctor")
#: Frames decoded (video) and packets received (audio, 50 a second) beyond the count at link-up that
#: mean "moving again": more than what a jitter buffer could still hold from before the outage.
VIDEO_STEP = 3
AUDIO_STEP = 10
#: How often the pages are sampled while waiting for recovery (the resolution of the figures).
POLL_SECONDS = 0.1
#: A chat line that did not arrive is sent again (a new line) this often, as a person would retype it.
CHAT_RETRY_SECONDS = 1.0
#: Notices that tell a person the direct connection failed or the relay is involved.
RELAY_NOTICES = "[data-relay-declined], [data-no-direct], [data-relay-unavailable]"

#: The page instrumentation (see the comment at its top).
INIT_SCRIPT = (Path(__file__).with_name("outage_probe.js")).read_text().replace("__NOTICES__", RELAY_NOTICES)


def fake_video(directory: Path, width: int, height: int, fps: int) -> Path:
    """A looping Y4M clip for Chromium's fake camera: a bar moving over a gradient, so the encoder has work.

    Smaller than the 1280×720 the client asks of the default fake camera, so that several calls at
    once on a small machine measure the network, not a starved CPU.
    """
    path = directory / f"fake-{width}x{height}-{fps}.y4m"
    if path.exists():
        return path
    frames = fps * 2
    chroma = bytes([128]) * (width // 2 * height // 2)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            bar = (i * width // frames, (i * width // frames) + width // 8)
            row = bytes(235 if bar[0] <= x < bar[1] else (x * 200 // width) + 16 for x in range(width))
            out.write(b"FRAME\n" + row * height + chroma + chroma)
    return path


@dataclass
class Sample:
    """One look at a page: its clock, peer connections with their counters, and what it shows."""

    now: float  # seconds, time.time() scale
    online: bool
    pcs: list[dict[str, Any]]
    channels: list[str]
    dialog: bool
    notices: list[str]

    def advanced(self, baseline: Sample, kind: str, step: int) -> bool:
        """True when any peer connection received ``step`` more of ``kind`` than at ``baseline``."""
        before = {pc["pc"]: pc[kind] for pc in baseline.pcs}
        return any(pc[kind] >= before.get(pc["pc"], 0) + step for pc in self.pcs)

    def states(self) -> list[dict[str, Any]]:
        return [{k: pc[k] for k in ("pc", "state", "ice", "signaling", "path")} for pc in self.pcs]


@dataclass
class Recovery:
    """What one outage did. Times are seconds from the link's return; None: not within ``bound``."""

    side: str
    seconds: float  # how long the link was really down
    bound: float
    video: float | None  # remote pictures moving again on both sides
    audio: float | None  # remote sound arriving on both sides
    chat: float | None  # a chat line sent after the return arrived, both ways
    per_side: dict[str, dict[str, float | None]] = field(default_factory=dict)
    relay_dialog_during: bool = False  # the relay consent dialog opened during the outage (or at its end)
    relay_dialog_after: bool = False  # … and was open once the call was back (or at the bound)
    relay_notices: list[str] = field(default_factory=list)  # "side: what at +s" for dialog/notice changes
    notices_after: dict[str, list[str]] = field(default_factory=dict)  # relay notices still shown at the end
    states_at_return: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    states_after: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    online_during: dict[str, bool] = field(default_factory=dict)  # navigator.onLine just before the return
    events: dict[str, list[str]] = field(default_factory=dict)  # each side's timeline, from link-down
    machine_busy: float | None = None  # share of all cores busy while waiting for recovery
    cpu_pressure: float | None = None  # share of that time in which some task waited for a CPU (starvation)

    @property
    def time(self) -> float | None:
        """Back for the person: the last of pictures, sound and chat (None: not all came back)."""
        parts = (self.video, self.audio, self.chat)
        return None if any(p is None for p in parts) else max(p for p in parts if p is not None)

    def recovered_within(self, limit: float) -> bool:
        return self.time is not None and self.time <= limit

    def describe(self) -> str:
        """A readable account for assertion messages and reports."""

        def fmt(value: float | None) -> str:
            return "not back" if value is None else f"{value:.2f} s"

        lines = [
            f"{self.side} offline {self.seconds:.1f} s: video {fmt(self.video)}, audio {fmt(self.audio)}, "
            f"chat {fmt(self.chat)} (bound {self.bound:.0f} s)",
            f"  per side: {self.per_side}",
            f"  relay dialog during outage: {self.relay_dialog_during}, open afterwards: {self.relay_dialog_after}",
            f"  relay notices: {self.relay_notices or 'none'}; still shown at the end: {self.notices_after or 'none'}",
            f"  navigator.onLine just before the return: {self.online_during}; machine busy while recovering: "
            f"{'?' if self.machine_busy is None else f'{self.machine_busy:.0%}'}, tasks waiting for a CPU: "
            f"{'?' if self.cpu_pressure is None else f'{self.cpu_pressure:.0%}'} of that time",
            f"  peer connections at the return: {self.states_at_return}",
            f"  peer connections at the end: {self.states_after}",
        ]
        for role, events in self.events.items():
            lines.append(f"  {role} timeline (s from link-down):")
            lines += [f"    {event}" for event in events]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "seconds": self.seconds,
            "bound": self.bound,
            "video": self.video,
            "audio": self.audio,
            "chat": self.chat,
            "time": self.time,
            "per_side": self.per_side,
            "relay_dialog_during": self.relay_dialog_during,
            "relay_dialog_after": self.relay_dialog_after,
            "relay_notices": self.relay_notices,
            "notices_after": self.notices_after,
            "states_at_return": self.states_at_return,
            "states_after": self.states_after,
            "online_during": self.online_during,
            "events": self.events,
            "machine_busy": self.machine_busy,
            "cpu_pressure": self.cpu_pressure,
        }


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


def cpu_stall() -> float | None:
    """Seconds in which some runnable task waited for a CPU (/proc/pressure/cpu; None without PSI)."""
    try:
        line = Path("/proc/pressure/cpu").read_text().split("\n", 1)[0]
    except OSError:
        return None
    return int(line.rsplit("total=", 1)[1]) / 1e6


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """The share of all cores that was busy between two ``cpu_times()`` (to tell a starved run)."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else None


def _sample(page: Any, since: int = 0) -> tuple[Sample, list[dict[str, Any]]]:
    raw = page.evaluate("(since) => window.__vcSample(since)", since)
    sample = Sample(raw["now"] / 1000, raw["online"], raw["pcs"], raw["channels"], raw["dialog"], list(raw["notices"]))
    return sample, raw["log"]


def _event_text(entry: dict[str, Any], down_at: float, up_at: float | None) -> str:
    rest = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in ("t", "what"))
    at = entry["t"] / 1000 - down_at
    mark = "" if up_at is None else f" (link-up +{entry['t'] / 1000 - up_at:.2f})" if entry["t"] / 1000 >= up_at else ""
    return f"+{at:6.2f}{mark} {entry['what']} {rest}".rstrip()


class OutageWorld:
    """A routed network, the app server (and coturn) in its server namespace, one Chromium per side.

    Lives for many calls: each ``call()`` makes a new appointment and new browser contexts.
    """

    def __init__(
        self,
        playwright: Any,
        directory: Path,
        *,
        relay: bool = True,
        video: tuple[int, int, int] | None = None,
        app_root: Path | None = None,
        locale: str = "en-GB",
    ) -> None:
        self.playwright = playwright
        self.directory = directory
        self.relay = relay
        self.video = video
        self.app_root = app_root
        self.locale = locale
        self.network = Network(routed=True)
        self.browsers: dict[str, Any] = {}
        self.origins: dict[str, str] = {}
        self.host: HostApp | None = None
        self.people: People | None = None
        self.calls = 0
        self._stack = ExitStack()

    def start(self) -> OutageWorld:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        stack = self._stack
        self.network.create()
        stack.callback(self.network.destroy)
        test_side = self.network.server_address("root")
        database = f"sqlite:///{self.directory / 'vc.sqlite'}"
        engine = create_engine(database)
        Base.metadata.create_all(engine)
        engine.dispose()
        wrap = self.network.run("server", [])
        server = LiveServer(
            database,
            {},
            self.directory,
            host=test_side,
            bind="0.0.0.0",
            wrap=wrap,
            gunicorn_args=["--chdir", str(self.app_root)] if self.app_root else None,
        )
        self.origins = {role: f"http://{self.network.server_address(role)}:{server.port}" for role in ROLES}
        server.config.update(VC_PUBLIC_URL=self.origins["patient"] + "/", VC_ALLOWED_ORIGINS=[self.origins["doctor"]])
        if self.relay:
            coturn = Coturn(
                self.directory,
                listen=(*(self.network.server_address(r) for r in ROLES), test_side),
                relay=self.network.server_address("patient"),
                wrap=wrap,
                probe_host=test_side,
            )
            stack.callback(coturn.stop)
            coturn.start()
            server.config.update(
                VC_TURN_URLS=[f"turn:{self.network.server_address(r)}:{coturn.port}" for r in ROLES],
                VC_TURN_SECRET=SECRET,
            )
        stack.callback(server.stop)
        server.start()
        extra = []
        if self.video is not None:
            extra.append(f"--use-file-for-fake-video-capture={fake_video(self.directory, *self.video)}")
        for role in ROLES:
            browser = launch(
                self.playwright,
                f"--unsafely-treat-insecure-origin-as-secure={self.origins[role]}",
                *extra,
                executable=self.network.launcher(role, chromium_path(), self.directory),
            )
            stack.callback(browser.close)
            self.browsers[role] = browser
        self.host = make_host_app(database, VC_PUBLIC_URL=self.origins["patient"] + "/")
        stack.callback(self.host.close)
        stack.enter_context(self.host.app.app_context())
        self.people = make_people(self.host.state)

    def close(self) -> None:
        self._stack.close()

    def call(self, *, timeout: float = 45.0, established: bool = True) -> OutageCall:
        """A new consultation; ``established=False`` stops once the patient is admitted (the
        media may never flow, as behind a firewall)."""
        self.calls += 1
        return OutageCall(self, self.calls).establish(timeout, established=established)


@contextlib.contextmanager
def outage_world(playwright: Any, directory: Path, **options: Any) -> Iterator[OutageWorld]:
    """An ``OutageWorld`` that is taken down again, whatever happens inside."""
    world = OutageWorld(playwright, directory, **options).start()
    try:
        yield world
    finally:
        world.close()


class OutageCall:
    """One consultation between the two browsers of a world, and outages of it."""

    def __init__(self, world: OutageWorld, number: int) -> None:
        self.world = world
        self.number = number
        self.pages: dict[str, Any] = {}
        self._contexts: list[Any] = []
        self._seen: dict[str, int] = dict.fromkeys(ROLES, 0)
        self.outages = 0

    def establish(self, timeout: float, *, established: bool = True) -> OutageCall:
        """Plan, check in, admit, and wait until pictures, sound and chat go both ways."""
        world = self.world
        assert world.host is not None and world.people is not None
        try:
            start = world.host.state.clock.now() + timedelta(minutes=2)
            planned = world.host.state.appointments.plan(
                Principal.of(world.people.doc), AppointmentIn(starts_at=start, ends_at=start + timedelta(minutes=30))
            )
            patient_context = world.browsers["patient"].new_context(locale=world.locale, viewport=DESKTOP)
            self._contexts.append(patient_context)
            doctor_context = world.browsers["doctor"].new_context(locale=world.locale, viewport=DESKTOP)
            self._contexts.append(doctor_context)
            name, value = practitioner_cookie(world.people.doc).split("=", 1)
            doctor_context.add_cookies([{"name": name, "value": value, "url": world.origins["doctor"]}])
            for context in self._contexts:
                context.add_init_script(INIT_SCRIPT)
                context.set_default_timeout(timeout * 1000)
            patient, doctor = patient_context.new_page(), doctor_context.new_page()
            self.pages = {"patient": patient, "doctor": doctor}
            check_in(patient, planned.invitations[0].link, "Robin")
            enter_waiting_room(patient)
            open_call(doctor, world.origins["doctor"], planned.appointment.public_id)
            admit(doctor, "Robin")
            patient.wait_for_selector("[data-view=call]:not([hidden])")
            if not established:
                return self
            in_call(patient, doctor)
            self.wait_flowing(timeout)
            self.chat_round(timeout, "ready")
        except BaseException:
            self.close()
            raise
        return self

    def sample(self, role: str) -> Sample:
        sample, log = _sample(self.pages[role], self._seen[role])
        self._seen[role] += len(log)
        return sample

    def _log(self, role: str) -> list[dict[str, Any]]:
        return self.pages[role].evaluate("() => window.__vcLog")

    def wait_flowing(self, timeout: float) -> None:
        """Pictures and sound advance on both sides (a bounded wait)."""
        baseline = {role: self.sample(role) for role in ROLES}
        deadline = time.monotonic() + timeout
        while True:
            now = {role: self.sample(role) for role in ROLES}
            if all(
                now[r].advanced(baseline[r], "video", VIDEO_STEP) and now[r].advanced(baseline[r], "audio", AUDIO_STEP)
                for r in ROLES
            ):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"media did not flow both ways within {timeout} s: {now}")
            time.sleep(POLL_SECONDS)

    def chat_round(self, timeout: float, label: str) -> None:
        """A line each way arrives (a bounded wait): the data channel is open on both sides.

        A line is sent again every second until one arrives: the page refuses to send while its
        channel is not open yet, as it tells the person ("nobody to send to").
        """
        deadline = time.monotonic() + timeout
        pending = {ROLES, ROLES[::-1]}
        sent = dict.fromkeys(pending, 0)
        next_send = dict.fromkeys(pending, 0.0)
        while True:
            for pair in pending:
                if time.monotonic() >= next_send[pair]:
                    sent[pair] += 1
                    text = f"call{self.number}-{label}-{pair[0]}-{sent[pair]}"
                    self.pages[pair[0]].evaluate("(text) => window.__vcChat(text)", text)
                    next_send[pair] = time.monotonic() + CHAT_RETRY_SECONDS
            for pair in list(pending):
                marker = f"call{self.number}-{label}-{pair[0]}-"
                if any(e["what"] == "chat" and not e["mine"] and marker in e["text"] for e in self._log(pair[1])):
                    pending.discard(pair)
            if not pending:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"chat did not get through within {timeout} s: {pending}")
            time.sleep(POLL_SECONDS)

    def measure_recovery(self, side: str, seconds: float, *, bound: float = 60.0, settle: float = 2.0) -> Recovery:
        """``side``'s link down for ``seconds``, then up: how long until the call is back for both people.

        Times run from the moment the link (with its routes) is back. Chat lines are sent from
        then on, a new one every second until one arrives, each way. ``settle`` seconds after
        recovery (or at ``bound``) the pages are looked at once more for a relay dialog still open.
        """
        role = SIDES[side]
        self.outages += 1
        tag = f"call{self.number}-outage{self.outages}"
        network = self.world.network
        first = {r: self._seen[r] for r in ROLES}
        self.wait_flowing(15.0)
        with network.outage(role, seconds) as outage:
            time.sleep(max(0.0, seconds - 0.5))
            baseline = {r: self.sample(r) for r in ROLES}  # counters stand still by now
        assert outage.up_at is not None
        up = outage.up_at
        found: dict[str, dict[str, float]] = {"video": {}, "audio": {}, "chat": {}}
        directions = {f"{a}->{b}": (a, b) for a, b in (ROLES, ROLES[::-1])}
        next_chat = dict.fromkeys(directions, 0.0)
        sent = dict.fromkeys(directions, 0)
        logs: dict[str, list[dict[str, Any]]] = {r: [] for r in ROLES}
        latest = dict(baseline)
        deadline = time.monotonic() + bound  # the wall clock only to compare with the pages' Date.now()
        cpu_at_return, stall_at_return, clock_at_return = cpu_times(), cpu_stall(), time.monotonic()
        while True:
            for name, (sender, _) in directions.items():
                if name not in found["chat"] and time.monotonic() >= next_chat[name]:
                    sent[name] += 1
                    self.pages[sender].evaluate("(text) => window.__vcChat(text)", f"{tag}-{name}-{sent[name]}")
                    next_chat[name] = time.monotonic() + CHAT_RETRY_SECONDS
            for r in ROLES:
                sample, log = _sample(self.pages[r], self._seen[r])
                self._seen[r] += len(log)
                logs[r] += log
                latest[r] = sample
                if r not in found["video"] and sample.advanced(baseline[r], "video", VIDEO_STEP):
                    found["video"][r] = sample.now
                if r not in found["audio"] and sample.advanced(baseline[r], "audio", AUDIO_STEP):
                    found["audio"][r] = sample.now
            for name, (_, receiver) in directions.items():
                if name in found["chat"]:
                    continue
                arrived = [
                    e["t"] / 1000
                    for e in logs[receiver]
                    if e["what"] == "chat" and not e["mine"] and f"{tag}-{name}-" in e["text"]
                ]
                if arrived:
                    found["chat"][name] = min(arrived)
            done = all(len(found[k]) == 2 for k in found)
            if done or time.monotonic() > deadline:
                break
            time.sleep(POLL_SECONDS)
        machine_busy = busy_share(cpu_at_return, cpu_times())
        stall = cpu_stall()
        waited = time.monotonic() - clock_at_return
        cpu_pressure = (
            None if stall is None or stall_at_return is None or waited <= 0 else (stall - stall_at_return) / waited
        )
        if done:
            time.sleep(settle)
        end = {r: self.sample(r) for r in ROLES}
        full = {r: self._log(r)[first[r] :] for r in ROLES}

        def since_up(values: dict[str, float]) -> float | None:
            return max(values.values()) - up if len(values) == 2 else None

        def one(values: dict[str, float], key: str) -> float | None:
            return round(values[key] - up, 3) if key in values else None

        notices = [
            f"{r}: {e['what']} {'open' if e.get('open') or e.get('shown') else 'closed'}"
            f"{' ' + e['which'] if e.get('which') else ''} at +{e['t'] / 1000 - outage.down_at:.1f} s"
            for r in ROLES
            for e in full[r]
            if e["what"] in ("relay-dialog", "relay-notice")
        ]
        return Recovery(
            side=side,
            seconds=up - outage.down_at,
            bound=bound,
            video=since_up(found["video"]),
            audio=since_up(found["audio"]),
            chat=since_up(found["chat"]),
            per_side={
                r: {
                    "video": one(found["video"], r),
                    "audio": one(found["audio"], r),
                    "chat_in": one(found["chat"], f"{ROLES[1 - ROLES.index(r)]}->{r}"),
                }
                for r in ROLES
            },
            relay_dialog_during=any(
                e["what"] == "relay-dialog" and e["open"] and e["t"] / 1000 <= up for r in ROLES for e in full[r]
            )
            or any(baseline[r].dialog for r in ROLES),
            relay_dialog_after=any(end[r].dialog for r in ROLES),
            notices_after={r: end[r].notices for r in ROLES if end[r].notices},
            relay_notices=notices,
            states_at_return={r: baseline[r].states() for r in ROLES},
            states_after={r: end[r].states() for r in ROLES},
            online_during={r: baseline[r].online for r in ROLES},
            machine_busy=machine_busy,
            cpu_pressure=cpu_pressure,
            events={
                r: [
                    _event_text(e, outage.down_at, up)
                    for e in sorted(full[r], key=lambda e: e["t"])
                    if e["what"] != "chat" and e["t"] / 1000 >= outage.down_at - 0.5
                ]
                for r in ROLES
            },
        )

    def close(self) -> None:
        for context in self._contexts:
            with contextlib.suppress(Exception):
                context.close()
        self._contexts.clear()
