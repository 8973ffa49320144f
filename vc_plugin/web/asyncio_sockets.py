"""The asyncio transport: the signalling sockets of a process of their own.

Same endpoints, handshake checks and sessions as the flask-sock transport (:mod:`.sockets`); what
differs is the cost. One event loop holds every socket, each a :class:`.websocket_wire.Wire`
calling back its :class:`AsyncConnection` (no thread, greenlet or task each, no
permessage-deflate); a relay between two sockets of this process goes straight from one to the
other, and only messages for sockets elsewhere cross Redis. Nothing ticks per socket: one sweep
touches presence for all of them in one Redis round trip, and a pass is asked about again only
after the bus was away (revocations arrive as events; see docs/signaling.md).
``hello``'s arrival and the bus's channels use Redis on the loop, over connections of their own
(:mod:`..adapters.redis_link`, :mod:`..adapters.redis_channels`); any other work that needs the
database, presence or the bus runs in a small thread pool, inside the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..adapters.bus import Bus, RedisBus
from ..adapters.redis_channels import RedisChannels
from ..adapters.redis_link import RedisLink
from ..adapters.steps import ScriptMissing, Step, Steps
from ..domain.dashboard_session import DashboardSession
from ..domain.revocation import CHANNEL as REVOCATIONS
from ..domain.revocation import Revocation
from ..domain.room_session import RoomPhase, RoomSession
from ..domain.signaling import ProtocolError
from ..domain.socket_actions import Action, CheckPass, Close, Join, LoadQueue, Relay, Send, Subscribe
from ..domain.topics import member_topic
from .performer import Performer, Report, Session

if TYPE_CHECKING:
    from flask import Flask

    from .state import VCState
    from .websocket_wire import Wire

log = logging.getLogger(__name__)

_ELSEWHERE = object()
#: A client that leaves this much unread is cut off ("too slow"): a slow reader never holds the loop.
WRITE_LIMIT = 1024 * 1024
#: How often one sweep touches presence for every member of this process, and checks passes' own expiry.
SWEEP_SECONDS = 10.0
#: After the bus came back: how long rooms of all processes get to write themselves again before dashboards ask.
REANNOUNCE_PAUSE = 0.5
#: A socket silent this long is pinged; one that leaves the ping unanswered as long again is closed.
KEEPALIVE_SECONDS = 25.0


def in_app(app: Flask, state: VCState, work: Callable[[], Any]) -> Any:
    """How the hub's threads run work: in the app's context, the database session removed after
    (no thread holds a database connection between two pieces of work). Work that never opened one
    (``hello``, relays, commands on presence) skips that: removing costs as much as a Redis call."""
    with app.app_context():
        try:
            return work()
        finally:
            if state.db.session.registry.has():
                state.db.session.remove()


class SignallingHub:
    """The sockets of this process: their bus topics, direct relays, revocations, the sweep."""

    def __init__(self, app: Flask, state: VCState, loop: asyncio.AbstractEventLoop, *, threads: int = 8) -> None:
        self.app = app
        self.state = state
        self.loop = loop
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vc-signalling")
        self.performer = Performer(state, loop.time)
        #: ``hello``'s Redis work, on the loop (steps without commands still go to the threads).
        self.link = RedisLink(state.settings.redis_url, loop) if state.settings.redis_url else None
        self.connections: set[AsyncConnection] = set()
        self._local: dict[str, set[AsyncConnection]] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        bus, url = state.bus, state.settings.redis_url
        self._channels: RedisChannels | _ThroughTheBus = (
            RedisChannels(url, loop, prefix=bus.prefix, heard=self.heard, came_back=self._bus_came_back)
            if isinstance(bus, RedisBus) and url
            else _ThroughTheBus(self, bus)
        )
        self._channels.subscribe([REVOCATIONS])
        self._channels.start()

    # --- work that blocks ----------------------------------------------------------------------------
    async def blocking(self, work: Callable[[], Any]) -> Any:
        return await self.loop.run_in_executor(self.executor, in_app, self.app, self.state, work)

    async def drive(self, steps: Steps[Any]) -> Any:
        """Domain steps (:mod:`vc_plugin.adapters.steps`) on the loop: Redis commands over the link,
        anything else in the threads; the generator's result."""
        try:
            step = next(steps)
            while True:
                step = steps.send(await self._step(step))
        except StopIteration as done:
            return done.value

    async def _step(self, step: Step[Any]) -> Any:
        if step.commands and step.parse is not None and self.link is not None:
            try:
                return step.parse(await self.link.execute(step.commands))
            except ScriptMissing:  # Redis restarted: the blocking form loads its scripts again
                pass
            except (RedisConnectionError, RedisTimeoutError):  # the blocking form retries, as for any command
                pass
        return await self.blocking(step.run)

    # --- topics ---------------------------------------------------------------------------------------
    def subscribe(self, connection: AsyncConnection, topics: Iterable[str]) -> None:
        """Topics new to this process are subscribed on the bus together (one Redis command per turn of the loop)."""
        new: list[str] = []
        for topic in topics:
            listeners = self._local.get(topic)
            if listeners is None:
                listeners = self._local[topic] = set()
                new.append(topic)
            listeners.add(connection)
        if new:
            self._channels.subscribe(new)

    def unsubscribe(self, connection: AsyncConnection, topics: Iterable[str]) -> None:
        gone: list[str] = []
        for topic in topics:
            listeners = self._local.get(topic)
            if listeners is None:
                continue
            listeners.discard(connection)
            if not listeners:
                del self._local[topic]
                gone.append(topic)
        if gone:
            self._channels.unsubscribe(gone)

    def heard(self, topic: str, message: str) -> None:
        """On the loop: a bus message for this process."""
        if topic == REVOCATIONS:
            self._revocation(message)
        else:
            self.deliver(topic, message)

    def deliver(self, topic: str, message: str) -> None:
        """On the loop: a bus message for the sockets of this process that listen on ``topic``."""
        for connection in list(self._local.get(topic, ())):
            connection.feed(lambda s, m=message: s.event(m))

    def relay_here(self, appointment: str, relay: Relay) -> bool | None:
        """Straight to the receiver when it is connected to this process; None when it is not."""
        receivers = self._local.get(member_topic(appointment, relay.to))
        if not receivers:
            return None
        delivered = False
        for receiver in list(receivers):
            session = receiver.session
            admitted = isinstance(session, RoomSession) and session.phase is RoomPhase.ADMITTED
            if not session.closed and (admitted or not relay.verify):
                receiver.perform_soon(session.relayed_in(relay.text))  # type: ignore[union-attr]
                delivered = True
        return delivered

    # --- process-wide events --------------------------------------------------------------------------
    def _revocation(self, raw: str) -> None:
        revocation = Revocation.heard(raw)
        if revocation is None:
            return
        for connection in [c for c in self.connections if revocation.hits(c.session.claims)]:
            connection.feed(lambda s: s.revoke(revocation))

    def spawn(self, work: Any) -> None:
        """A task of the loop, kept until it is done."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _bus_came_back(self) -> None:
        """Redis restarted or was away: presence is written again, and every pass asked about once,
        since revocations published meanwhile may have reached no one."""
        self.spawn(self._reannounce())

    async def _reannounce(self) -> None:
        """Rooms first, then (as in the app's own transport) dashboards get their whole queue again."""
        connections = list(self.connections)
        rooms = [c for c in connections if isinstance(c.session, RoomSession)]
        await asyncio.gather(*(c.after_bus_outage() for c in rooms), return_exceptions=True)
        await asyncio.sleep(REANNOUNCE_PAUSE)  # let other processes' rooms come back too
        dashboards = [c for c in connections if isinstance(c.session, DashboardSession)]
        await asyncio.gather(*(c.after_bus_outage() for c in dashboards), return_exceptions=True)

    async def sweep(self) -> None:
        """Every ``SWEEP_SECONDS``: one presence write for all members here, and passes past their time closed."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            touched: list[tuple[str, str]] = []
            now, at = self.loop.time(), self.state.clock.now()
            for connection in list(self.connections):
                connection.keep_alive(now)
                session = connection.session
                if not isinstance(session, RoomSession):
                    continue
                present = session.present()
                if present is not None:
                    touched.append(present)
                connection.perform_soon(session.idle(now, at))
            if touched:
                await self._touch(touched, at.timestamp())
            if self.link is not None:
                self.spawn(self._check_link(self.link))

    @staticmethod
    async def _check_link(link: RedisLink) -> None:
        """A PING each sweep: a link dropped while it was quiet is found before a ``hello`` waits for it."""
        with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
            await link.execute([("PING",)])

    async def _touch(self, members: list[tuple[str, str]], stamp: float) -> None:
        presence = self.state.presence
        try:
            await self.blocking(lambda: presence.touch_many(members, stamp))
        except Exception as error:  # noqa: BLE001 - Redis away: the next sweep tries again
            log.warning("signalling: could not touch presence (%s)", type(error).__name__)

    def add(self, connection: AsyncConnection) -> None:
        self.connections.add(connection)

    def close(self) -> None:
        """When the server stops: work still queued for the threads is dropped, and the link closed."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self._channels.close()
        if self.link is not None:
            self.link.close()

    def discard(self, connection: AsyncConnection) -> None:
        self.connections.discard(connection)


class _ThroughTheBus:
    """The channels of a bus without Redis (an app in embedded mode, in tests): its own callbacks,
    called from whichever thread publishes, handed to the loop."""

    def __init__(self, hub: SignallingHub, bus: Bus) -> None:
        self.hub, self.bus = hub, bus
        self.listeners: dict[str, _TopicListener] = {}
        bus.on_reconnect(lambda: hub.loop.call_soon_threadsafe(hub._bus_came_back))

    def start(self) -> None:
        pass

    def subscribe(self, topics: Iterable[str]) -> None:
        new = [(topic, self.listeners.setdefault(topic, _TopicListener(self.hub, topic))) for topic in topics]
        self.bus.subscribe_all(new)

    def unsubscribe(self, topics: Iterable[str]) -> None:
        self.bus.unsubscribe_all([(topic, self.listeners.pop(topic)) for topic in topics if topic in self.listeners])

    def close(self) -> None:
        self.bus.unsubscribe_all(list(self.listeners.items()))
        self.listeners.clear()


class _TopicListener:
    """What the bus calls for one topic: a small object per topic instead of two closures."""

    __slots__ = ("hub", "topic")

    def __init__(self, hub: SignallingHub, topic: str) -> None:
        self.hub, self.topic = hub, topic

    def __call__(self, message: str) -> None:
        self.hub.loop.call_soon_threadsafe(self.hub.heard, self.topic, message)


class AsyncConnection:
    """One socket: hands its messages to its session and performs what it asks for.

    What the loop can do at once (write, close, listen, relay to a neighbour) is done while the
    message is read: no task per message. From the first action that needs a thread on, a task
    performs the rest, and the socket reads no further until it is done, so a client's messages
    are handled one after the other. Frames are written at once through the wire: no writer task
    and no queue per socket, and what was said last (an error, ``left``, ``revoked``) is on the
    wire before the close frame.
    """

    __slots__ = ("backlog", "busy", "closing", "ended", "heard", "hub", "id", "pinged", "session", "topics", "wire")

    def __init__(self, hub: SignallingHub, wire: Wire, session: Session, connection_id: str) -> None:
        self.hub = hub
        self.wire = wire
        self.session = session
        self.id = connection_id
        self.closing = False
        self.topics: list[str] = []  # two, for a room socket
        self.heard = hub.loop.time()
        self.pinged: float | None = None
        self.busy = False  # a message's actions are being performed in the hub's threads
        self.backlog: deque[str | bytes] | None = None  # what was read meanwhile
        self.ended = False
        hub.add(self)  # known to revocations before a single message is read

    # --- the wire's calls -----------------------------------------------------------------------------
    def received(self, raw: str | bytes) -> None:
        if self.busy:
            if self.backlog is None:
                self.backlog = deque()
            self.backlog.append(raw)
            self.wire.pause_reading()
            return
        self.heard = now = self.hub.loop.time()
        segments = self._here(self.session.receive(raw, now, self.hub.state.clock.now()), closed=False)
        if segments:
            self.busy = True
            self.spawn(self._finish(segments))

    def ponged(self) -> None:
        self.heard, self.pinged = self.hub.loop.time(), None

    def lost(self) -> None:
        self.ended = True
        if not self.busy:
            self.spawn(self._end())

    async def _finish(self, segments: list[tuple[list[Action], bool]]) -> None:
        """The rest of a message's actions, then what was read meanwhile, in order."""
        try:
            await self._perform_segments(segments)
        except Exception:
            log.exception("socket message handling failed")  # the socket reads on all the same
        self.busy = False
        while self.backlog and not self.busy:
            self.received(self.backlog.popleft())
        if self.busy:
            return
        if self.ended:
            await self._end()
        else:
            self.wire.resume_reading()

    async def _end(self) -> None:
        self.closing = True
        with contextlib.suppress(Exception):
            await self._perform_all(self.session.socket_closed(), closed=True)
        self.hub.unsubscribe(self, self.topics)
        self.hub.discard(self)

    # --- feeding the session --------------------------------------------------------------------------
    def feed(self, call: Callable[[Session], list[Action]]) -> None:
        """From the loop, outside the reader: events, revocations, relays from a neighbour."""
        actions = call(self.session)
        self.perform_soon(actions, closed=self.session.closed)

    def perform_soon(self, actions: list[Action], *, closed: bool = False) -> None:
        if actions:
            segments = self._here(actions, closed=closed)
            if segments:
                self.spawn(self._perform_segments(segments))

    def spawn(self, work: Any) -> None:
        self.hub.spawn(work)

    def _here(self, actions: list[Action], *, closed: bool) -> list[tuple[list[Action], bool]]:
        """Performs ``actions`` in the loop, up to the first that needs a thread; returns what is left
        (as ``_perform_all`` would do it: a close on the way drops the rest)."""
        closed = closed or self.session.closed
        for index, action in enumerate(actions):
            if self.session.closed and not closed:
                return []
            if type(action) is Send:  # most of what a socket does: no report, nothing to fail
                self._send(action.text)
                continue
            try:
                report = self._perform_here(action)
            except Exception as error:  # noqa: BLE001 - answered by _failed
                report = self._failed(error)
            if report is _ELSEWHERE:
                return [(actions[index:], closed)]
            if report is not None:
                later = self._here(report(self.session), closed=self.session.closed)
                if later:
                    return [*later, (actions[index + 1 :], closed)]
        return []

    async def _perform_segments(self, segments: list[tuple[list[Action], bool]]) -> None:
        """What ``_here`` left, one part after the other."""
        for actions, closed in segments:
            await self._perform_all(actions, closed=closed)

    def _failed(self, error: Exception) -> Report | None:
        """An action that failed: a protocol error goes to the session; anything else is logged
        (without the message's content) and answered "internal", and the next action follows."""
        if isinstance(error, ProtocolError):
            return lambda s: s.failed(error)
        log.exception("socket message handling failed")
        self._send(ProtocolError("internal", "the server could not handle this message").as_message())
        return None

    def _perform_now(self, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self._send(action.text)
            elif isinstance(action, Close):
                self._close(action.code, action.reason, flush=action.flush)

    async def _perform_all(self, actions: Iterable[Action], *, closed: bool = False) -> None:
        """As the flask-sock transport: a close that happens on the way drops the rest."""
        closed = closed or self.session.closed
        for action in actions:
            if self.session.closed and not closed:
                return
            try:
                report = self._perform_here(action)
                if report is _ELSEWHERE:
                    report = await self._perform_elsewhere(action)
            except Exception as error:  # noqa: BLE001 - answered by _failed
                report = self._failed(error)
            if report is not None:
                follow = report(self.session)
                await self._perform_all(follow, closed=self.session.closed)

    def _perform_here(self, action: Action) -> Report | object:
        """What the loop does at once: write, close, listen, relay to a neighbour; else ``_ELSEWHERE``."""
        if isinstance(action, Send | Close):
            self._perform_now((action,))
            return None
        if isinstance(action, Subscribe):
            new = [topic for topic in action.topics if topic not in self.topics]
            self.topics.extend(new)
            self.hub.subscribe(self, new)
            return None
        session = self.session
        if isinstance(action, Relay) and isinstance(session, RoomSession) and session.room is not None:
            delivered = self.hub.relay_here(session.room.appointment, action)
            if delivered is not None:
                now = self.hub.loop.time()
                return lambda s: s.relay_result(action, delivered, now)  # type: ignore[union-attr]
        return _ELSEWHERE

    async def _perform_elsewhere(self, action: Action) -> Report:
        """What needs the database, presence or the bus: in the hub's threads; ``hello``'s arrival
        on the loop, step by step (``SignallingHub.drive``)."""
        session, performer = self.session, self.hub.performer
        if type(action) is Join and isinstance(session, RoomSession):
            return await self.hub.drive(performer.joining(action, session, self.id))  # type: ignore[no-any-return]
        return await self.hub.blocking(lambda: performer.perform(action, session, self.id))

    async def after_bus_outage(self) -> None:
        session = self.session
        if isinstance(session, DashboardSession):
            if session.greeted and not session.closed:
                await self._perform_all([LoadQueue()])
            return
        if session.restorable() is None:
            return
        performer = self.hub.performer
        try:
            await self.hub.blocking(lambda: performer.write_again(session))
        except Exception:
            log.exception("socket housekeeping failed")
        if session.identity.participant_pass is not None:
            await self._perform_all([CheckPass()])

    # --- the socket -----------------------------------------------------------------------------------
    def keep_alive(self, now: float) -> None:
        """Called by the sweep: a silent socket is pinged, and closed if the ping goes unanswered."""
        if self.closing or now - self.heard < KEEPALIVE_SECONDS:
            return
        if self.pinged is None:
            self.pinged = now
            self.wire.ping()
        elif now - self.pinged > KEEPALIVE_SECONDS:
            self._close(1011, "keepalive ping timeout", flush=False)

    def _send(self, text: str) -> None:
        wire = self.wire
        if self.closing or not wire.open:
            return
        if wire.unsent_bytes() > WRITE_LIMIT:
            self._close(1008, "too slow", flush=False)
            return
        wire.send_text(text)

    def _close(self, code: int, reason: str, *, flush: bool = True) -> None:
        """Everything sent so far is already written (``flush``); without it, unsent data is dropped."""
        if self.closing:
            return
        self.closing = True
        if not flush:
            # Cut off at once (a client that stopped reading, or stopped answering pings): what is
            # still unsent is dropped, and no closing handshake is waited for.
            self.wire.abort()
            return
        self.wire.close(code, reason)
