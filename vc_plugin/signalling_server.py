"""``flask vc signalling-server``: the signalling sockets served by an asyncio process of their own.

The same endpoints as the app's (``<prefix>/ws/room/<id>``, ``/ws/practice``, ``/ws/probe/<room>``),
the same checks before the upgrade, the same protocol. Our pages bring a socket ticket, for which
the app ran its checks a moment before (:mod:`vc_plugin.domain.socket_ticket`): such a handshake is
decided on the loop, by the origin and the ticket alone. Any other handshake (a probe, a client
without a ticket) runs the app's own before-request functions (origin, join rate limit, session
cookie or participant pass, the host's own rules) in a request context built from its headers, in
a thread. Either way nothing is checked twice in two ways.

The reverse proxy sends ``<prefix>/ws/`` here and everything else (the tickets too) to the WSGI
server; it should keep an appointment's sockets on one process (docs/signaling.md, "Production").

It needs Redis (``VC_REDIS_URL``): the app's processes and this one share presence, the bus and
the revocations only there.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from flask import Flask, request
from websockets.frames import CloseCode
from websockets.http11 import Request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import EnvironBuilder

from .domain.socket_ticket import TicketRefused
from .web.asyncio_sockets import AsyncConnection, SignallingHub
from .web.blueprints.ws import (
    SessionFactory,
    allowed_origins,
    origin_allowed,
    session_factory,
    ticket_session_factory,
    ticket_socket,
)
from .web.state import VCState, vc_state
from .web.websocket_wire import CLOSE_TIMEOUT, Decision, Wire

log = logging.getLogger(__name__)
#: Connections the kernel queues before they are accepted: a whole waiting room reconnecting at once.
BACKLOG = 4096
#: Net new objects the garbage collector lets pile up before it looks (CPython's default: 700). Each
#: open socket keeps some fifty objects alive: at the default, a ramp to 10,000 sockets walked the
#: whole heap fourteen times, a fifth of a connect's CPU (docs/benchmarks.md, "Garbage collection").
YOUNG_OBJECTS = 10_000


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str


#: A handshake still being decided when the server stops: the page tries again at once, and the
#: proxy sends it to a process that serves (a socket opened now would only be closed with 1001).
SHUTTING_DOWN = Refusal(HTTPStatus.SERVICE_UNAVAILABLE, "The server is shutting down; please try again.")


class Handshakes:
    """Decides a handshake the way the app would: by its own before-request functions."""

    def __init__(self, app: Flask, state: VCState, *, proxy_hops: int = 0) -> None:
        self.app = app
        self.state = state
        self.proxy_hops = proxy_hops
        public_url = state.settings.public_url
        #: Where a ticket's handshake may come from; None: no public URL, the app's checks decide.
        self.ticket_origins = allowed_origins(state.settings, public_url) if public_url else None

    def environ(self, path: str, headers: list[tuple[str, str]], remote: str) -> dict[str, Any]:
        environ = EnvironBuilder(path=path, headers=headers, environ_base={"REMOTE_ADDR": remote}).get_environ()
        if not self.proxy_hops:
            return environ
        # The same reading of X-Forwarded-* as a host's ProxyFix: the rate limits count clients, not the proxy.
        seen: dict[str, Any] = {}
        hops = self.proxy_hops
        fixer = ProxyFix(lambda env, _start: seen.update(env) or [], x_for=hops, x_proto=hops, x_host=hops)
        fixer(environ, lambda *_: None)
        return seen

    def decide_ticket(self, target: str, host: str | None, origin: str | None) -> SessionFactory | Refusal | None:
        """A handshake with a socket ticket, on the loop: no thread, request context, database or
        Redis. None when the app's checks must decide instead (no ticket, or no public URL to
        check the origin against)."""
        path, _, query = target.partition("?")
        tokens = parse_qs(query).get("ticket") if query else None
        if not tokens or self.ticket_origins is None:
            return None
        if not origin_allowed(origin, self.ticket_origins):
            return Refusal(HTTPStatus.FORBIDDEN, "WebSocket from a foreign origin.")
        try:
            endpoint, values = self.app.url_map.bind(host or "localhost").match(path, method="GET", websocket=True)
        except HTTPException:
            return Refusal(HTTPStatus.NOT_FOUND, "no such socket")
        socket = ticket_socket(str(endpoint), values)
        if socket is None:
            return Refusal(HTTPStatus.UNAUTHORIZED, "This socket takes no ticket.")
        try:
            ticket = self.state.socket_tickets.take(tokens[-1], socket, self.state.clock.now().timestamp())
        except TicketRefused as refused:
            return Refusal(HTTPStatus.UNAUTHORIZED, str(refused))
        # Revocations close this server's sockets as events, and its sweep keeps presence.
        return ticket_session_factory(ticket, self.state.settings, swept=True)

    def decide(self, path: str, headers: list[tuple[str, str]], remote: str) -> SessionFactory | Refusal:
        """Blocking (database, Redis): runs in the hub's thread pool."""
        with self.app.request_context(self.environ(path, headers, remote)):
            try:
                if request.routing_exception is not None:
                    raise request.routing_exception
                early = self.app.preprocess_request()
                if early is not None:
                    response = self.app.make_response(early)
                    return Refusal(response.status_code, "refused")
                # Revocations close this server's sockets as events, and its sweep keeps presence.
                factory = session_factory(swept=True)
                return factory or Refusal(HTTPStatus.NOT_FOUND, "no such socket")
            except HTTPException as error:
                return Refusal(error.code or 400, error.description or "refused")


class SignallingServer:
    def __init__(self, app: Flask, *, proxy_hops: int = 0, threads: int = 8) -> None:
        self.app = app
        with app.app_context():
            self.state = vc_state()
        if self.state.redis is None:
            raise RuntimeError(
                "The signalling server shares rooms with the app over Redis: set VC_REDIS_URL "
                "(without Redis, the app serves its sockets itself)."
            )
        self.handshakes = Handshakes(app, self.state, proxy_hops=proxy_hops)
        self.threads = threads
        self.hub: SignallingHub | None = None
        self.stopping = False
        self.deciding = 0  # handshakes waiting for the app's checks in a thread

    def _decide(self, wire: Wire, handshake: Request) -> Decision | Awaitable[Decision]:
        """The ticket, at once; or the app's checks (as the app's own routes do them), in a thread."""
        host, origin = handshake.headers.get("Host"), handshake.headers.get("Origin")
        decided = self.handshakes.decide_ticket(handshake.path, host, origin)
        if decided is None:
            return self._decide_in_thread(wire, handshake)
        return self._answer(wire, handshake, decided)

    async def _decide_in_thread(self, wire: Wire, handshake: Request) -> Decision:
        assert self.hub is not None
        headers = [(name, value) for name, value in handshake.headers.raw_items()]
        remote = wire.peer()
        self.deciding += 1
        try:
            decided = await self.hub.blocking(lambda: self.handshakes.decide(handshake.path, headers, remote))
        finally:
            self.deciding -= 1
        return self._answer(wire, handshake, decided)

    def _answer(self, wire: Wire, handshake: Request, decided: SessionFactory | Refusal) -> Decision:
        """The upgrade itself, or the refusal."""
        if self.stopping:
            decided = SHUTTING_DOWN
        if isinstance(decided, Refusal):
            return wire.protocol.reject(decided.status, decided.reason + "\n"), None
        return wire.protocol.accept(handshake), lambda accepted: self._connection(accepted, decided)

    def _connection(self, wire: Wire, factory: SessionFactory) -> AsyncConnection:
        assert self.hub is not None
        connection_id = secrets.token_urlsafe(9)
        session = factory(connection_id, self.state.clock.now().timestamp(), self.hub.loop.time())
        return AsyncConnection(self.hub, wire, session, connection_id)

    async def run(self, host: str, port: int, *, ready: Callable[[int], None] | None = None) -> None:
        """Serves until SIGTERM or SIGINT; ``ready`` hears the port bound (``port`` 0: any free one)."""
        loop = asyncio.get_running_loop()
        hub = self.hub = SignallingHub(self.app, self.state, loop, threads=self.threads)
        max_size = self.state.settings.ws_max_message_bytes
        stop = loop.create_future()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))
        decide, spawn = self._decide, hub.spawn  # bound once: every socket's wire shares them
        server = await loop.create_server(lambda: Wire(decide, spawn, max_size=max_size), host, port, backlog=BACKLOG)
        bound = server.sockets[0].getsockname()[1] if server.sockets else port
        # What start-up built (the app, its models, the libraries) lives as long as the process: the
        # garbage collector need not walk it again and again while sockets come and go.
        gc.collect()
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(YOUNG_OBJECTS, *thresholds[1:])
        log.info("signalling server listening on port %s", bound)
        if ready is not None:
            ready(bound)
        sweep = asyncio.create_task(hub.sweep())
        await stop
        self.stopping = True
        sweep.cancel()
        server.close()
        await self._going_away(hub)
        hub.close()
        gc.set_threshold(*thresholds)  # as they were: the server may have run inside another program
        gc.unfreeze()
        log.info("signalling server stopped")

    async def _going_away(self, hub: SignallingHub) -> None:
        """Every socket is told (1001), and gets a moment to close; browsers then reconnect elsewhere.
        Handshakes still being decided are answered 503 (``SHUTTING_DOWN``) before the loop ends."""
        for connection in list(hub.connections):
            connection.wire.close(CloseCode.GOING_AWAY, "server shutting down")
        deadline = asyncio.get_running_loop().time() + CLOSE_TIMEOUT
        while (hub.connections or self.deciding) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(hub.connections):
            connection.wire.abort()


def run_signalling_server(
    app: Flask,
    host: str,
    port: int,
    *,
    proxy_hops: int = 0,
    threads: int = 8,
    ready: Callable[[int], None] | None = None,
) -> None:
    asyncio.run(SignallingServer(app, proxy_hops=proxy_hops, threads=threads).run(host, port, ready=ready))
