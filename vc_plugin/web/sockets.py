"""The flask-sock transport: drives the signalling sessions (:mod:`vc_plugin.domain.room_session`,
:mod:`vc_plugin.domain.dashboard_session`) over one WebSocket each, in threads or greenlets.

A connection has a reader thread (feeds client frames to its session and performs the actions
that come back) and writes from the thread flask-sock gave it, draining an outbox that bus
callbacks fill. So a slow client never blocks the process-wide bus listener; a client that stops
reading long enough to fill its outbox is disconnected. Sessions are called under a per-connection
lock and never do I/O, so the bus thread waits on no network call of the reader's.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from simple_websocket import ConnectionClosed

from ..domain.dashboard_session import DashboardSession
from ..domain.revocation import CHANNEL as REVOCATIONS
from ..domain.revocation import Revocation
from ..domain.room_session import RoomSession
from ..domain.signaling import ProtocolError
from ..domain.socket_actions import Action, Close, LoadQueue, Send, Subscribe
from .performer import Performer, Session
from .performer import SocketServices as PerformerServices

if TYPE_CHECKING:
    from flask import Flask

    from ..adapters.bus import Bus

log = logging.getLogger(__name__)

CLOSE = object()
OUTBOX_LIMIT = 512
#: A client that leaves this much unread (beyond what the network holds) is cut off, as by the
#: signalling server: one slow reader never holds much memory, nor anyone else up.
WRITE_LIMIT = 1024 * 1024
#: How long a socket waits for a frame before its session hears ``idle``.
IDLE_SECONDS = 10.0


class SocketServices(PerformerServices, Protocol):
    """What a socket needs of the app's services (the app's ``VCState`` provides them)."""

    connections: LiveConnections


class LiveConnections:
    """The sockets of this process: revocations close them; after a Redis restart they re-announce."""

    def __init__(self) -> None:
        self._items: set[Connection] = set()
        self._lock = threading.Lock()
        self._bus: Bus | None = None
        self._listening = False

    def add(self, connection: Connection) -> None:
        with self._lock:
            self._items.add(connection)
            listen = not self._listening and self._bus is not None
            self._listening = self._listening or listen
        if listen:
            assert self._bus is not None
            self._bus.subscribe(REVOCATIONS, self.apply)

    def discard(self, connection: Connection) -> None:
        with self._lock:
            self._items.discard(connection)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def listen_for_revocations(self, bus: Bus) -> None:
        """Subscribe with the first socket: workers and CLI commands hold no listener."""
        self._bus = bus

    def apply(self, raw: str) -> None:
        """A revocation from any process: close every socket here that it hits."""
        revocation = Revocation.heard(raw)
        if revocation is None:
            return
        with self._lock:
            hit = [c for c in self._items if revocation.hits(c.session.claims)]
        for connection in hit:
            connection.feed(lambda s, r=revocation: s.revoke(r))

    def reannounce(self) -> None:
        """Called by the bus after a reconnect: rooms first, then dashboards get fresh queues."""
        with self._lock:
            items = list(self._items)
        for connection in items:
            if isinstance(connection.session, RoomSession):
                connection.reannounce()
        time.sleep(0.5)  # let other processes' rooms come back too
        for connection in items:
            if isinstance(connection.session, DashboardSession):
                connection.reannounce()


class Connection:
    """One socket and its session; performs what the session asks for."""

    def __init__(self, ws: Any, app: Flask, state: SocketServices, session: Session, connection_id: str) -> None:
        self.ws = ws
        self.app = app
        self.state = state
        self.session = session
        self.id = connection_id
        self.outbox: queue.Queue[Any] = queue.Queue(maxsize=OUTBOX_LIMIT)
        self.backlog = 0  # characters queued and not yet written
        self._backlog_lock = threading.Lock()
        self.closing = threading.Event()
        self.topics: list[str] = []
        self._session_lock = threading.Lock()
        self.performer = Performer(state, time.monotonic)

    # --- lifecycle ------------------------------------------------------------------------------------
    def run(self) -> None:
        # Known to revocations before a single message is read: none can slip between.
        self.state.connections.add(self)
        reader = threading.Thread(target=self._read_loop, name=f"vc-socket-{self.id}", daemon=True)
        reader.start()
        try:
            while True:
                item = self.outbox.get()
                if isinstance(item, tuple) and item and item[0] is CLOSE:
                    self._close_socket(item[1], item[2])
                    break
                self.ws.send(item)
                with self._backlog_lock:
                    self.backlog -= len(item)
        except (ConnectionClosed, OSError):
            pass  # closed by the client, or by the reader while this was being written
        finally:
            self.closing.set()
            self.state.connections.discard(self)
            self._unsubscribe_all()
            reader.join(timeout=5)

    def _read_loop(self) -> None:
        with self.app.app_context():
            try:
                while not self.closing.is_set():
                    raw = self.ws.receive(timeout=IDLE_SECONDS)
                    if raw is None:
                        self._in_turn(self._idle)
                    else:
                        self._in_turn(lambda s, r=raw: s.receive(r, time.monotonic(), self.state.clock.now()))
            except ConnectionClosed:
                pass
            finally:
                self._in_turn(lambda s: s.socket_closed())
                self.close(flush=False)

    def _idle(self, session: Session) -> list[Action]:
        if isinstance(session, RoomSession):
            return session.idle(time.monotonic(), self.state.clock.now())
        return []

    def _in_turn(self, call: Callable[[Session], list[Action]]) -> None:
        """Feed the session, then give the database connection back: a socket holds none while it waits."""
        try:
            self.feed(call)
        except Exception:
            log.exception("socket message handling failed")  # no message content is logged
            self.send(ProtocolError("internal", "the server could not handle this message").as_message())
        finally:
            self.state.db.session.remove()

    def feed(self, call: Callable[[Session], list[Action]]) -> None:
        """Call the session (briefly, under the lock), then perform what it asked for."""
        with self._session_lock:
            actions = call(self.session)
            closed = self.session.closed
        self._perform_all(actions, closed=closed)

    def _perform_all(self, actions: Iterable[Action], *, closed: bool = False) -> None:
        """``closed``: the session was closed when it asked (its final words); otherwise a close
        that happens while performing (a revocation found on the way) drops the rest."""
        for action in actions:
            if self.session.closed and not closed:
                return
            try:
                self._perform(action)
            except ProtocolError as error:
                self.feed(lambda s, e=error: s.failed(e))

    # --- actions --------------------------------------------------------------------------------------
    def _perform(self, action: Action) -> None:
        if isinstance(action, Send):
            self.send(action.text)
        elif isinstance(action, Close):
            self.close(action.code, action.reason, flush=action.flush)
        elif isinstance(action, Subscribe):
            for topic in action.topics:
                self.subscribe(topic)
        else:
            report = self.performer.perform(action, self.session, self.id)
            if report is not None:
                self.feed(report)

    # --- the socket -----------------------------------------------------------------------------------
    def send(self, text: str) -> None:
        if self.closing.is_set():
            return
        with self._backlog_lock:
            behind = self.backlog > 0 and self.backlog + len(text) > WRITE_LIMIT
            if not behind:
                self.backlog += len(text)
        if behind:
            self.close(1008, "too slow", flush=False)
            return
        try:
            self.outbox.put_nowait(text)
        except queue.Full:
            self.close(1008, "too slow", flush=False)

    def close(self, code: int = 1000, reason: str = "", *, flush: bool = True) -> None:
        """Close after what is queued has been sent; ``flush=False`` (or a full outbox) cuts it off at once.

        Never blocks: it is called from the bus thread too, which must not wait on any one client."""
        if self.closing.is_set():
            return
        self.closing.set()
        if flush:
            try:
                self.outbox.put_nowait((CLOSE, code, reason))
                return
            except queue.Full:
                pass  # a client this far behind gets no goodbye
        self._cut_off()
        with contextlib.suppress(queue.Full):
            self.outbox.put_nowait((CLOSE, code, reason))

    def _cut_off(self) -> None:
        """End the TCP connection without a closing handshake; a writer blocked on it fails at once."""
        log.info("socket cut off (%d characters unwritten)", self.backlog)
        with contextlib.suppress(OSError, AttributeError):
            self.ws.sock.shutdown(socket.SHUT_RDWR)

    def _close_socket(self, code: int, reason: str) -> None:
        try:
            self.ws.close(reason=code, message=reason)
        except Exception:  # noqa: BLE001 - the socket may already be gone
            log.debug("closing an already closed socket")

    def subscribe(self, topic: str) -> None:
        self.state.bus.subscribe(topic, self._from_bus)
        self.topics.append(topic)

    def _unsubscribe_all(self) -> None:
        for topic in self.topics:
            self.state.bus.unsubscribe(topic, self._from_bus)
        self.topics.clear()

    def _from_bus(self, message: str) -> None:
        self.feed(lambda s: s.event(message))

    # --- after a Redis restart ------------------------------------------------------------------------
    def reannounce(self) -> None:
        """Presence was lost: write this connection's part of it again (a dashboard: its whole queue)."""
        if self.closing.is_set():
            return
        with self.app.app_context():
            try:
                self._write_again()
            except Exception:
                log.exception("socket housekeeping failed")
            finally:
                self.state.db.session.remove()

    def _write_again(self) -> None:
        if isinstance(self.session, DashboardSession):
            if self.session.greeted:
                self._perform_all([LoadQueue()])
        else:
            self.performer.write_again(self.session)
