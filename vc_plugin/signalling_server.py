"""``flask vc signalling-server``: the signalling sockets served by an asyncio process of their own.

The same endpoints as the app's (``<prefix>/ws/room/<id>``, ``/ws/practice``, ``/ws/probe/<room>``),
the same checks before the upgrade, the same protocol: the handshake runs the app's own
before-request functions (origin, join rate limit, session cookie or participant pass, the host's
own rules) in a request context built from the handshake's headers, so nothing is checked twice
in two ways. The reverse proxy sends ``<prefix>/ws/`` here and everything else to the WSGI server;
it should keep an appointment's sockets on one process (docs/signaling.md, "Production").

It needs Redis (``VC_REDIS_URL``): the app's processes and this one share presence, the bus and
the revocations only there.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from flask import Flask, request
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import EnvironBuilder

from .web.asyncio_sockets import AsyncConnection, SignallingHub
from .web.blueprints.ws import SessionFactory, session_factory
from .web.state import VCState, vc_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str


class Handshakes:
    """Decides a handshake the way the app would: by its own before-request functions."""

    def __init__(self, app: Flask, state: VCState, *, proxy_hops: int = 0) -> None:
        self.app = app
        self.state = state
        self.proxy_hops = proxy_hops

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

    async def _process_request(self, connection: ServerConnection, handshake: Request) -> Response | None:
        assert self.hub is not None
        headers = [(name, value) for name, value in handshake.headers.raw_items()]
        remote = connection.remote_address[0] if connection.remote_address else "unknown"
        decided = await self.hub.blocking(lambda: self.handshakes.decide(handshake.path, headers, remote))
        if isinstance(decided, Refusal):
            return connection.respond(decided.status, decided.reason + "\n")
        connection.vc_session_factory = decided  # type: ignore[attr-defined]
        return None

    async def _handler(self, connection: ServerConnection) -> None:
        assert self.hub is not None
        factory: SessionFactory = connection.vc_session_factory  # type: ignore[attr-defined]
        # Not held for the socket's lifetime: the factory and the handshake's response. (The request
        # stays: websockets' frame parser keeps the one it parsed.)
        del connection.vc_session_factory  # type: ignore[attr-defined]
        connection.response = None
        connection_id = secrets.token_urlsafe(9)
        session = factory(connection_id, self.state.clock.now().timestamp(), self.hub.loop.time())
        await AsyncConnection(self.hub, connection, session, connection_id).serve()

    async def run(self, host: str, port: int, *, ready: Callable[[int], None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.hub = SignallingHub(self.app, self.state, loop, threads=self.threads)
        settings = self.state.settings
        stop = loop.create_future()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))
        async with serve(
            self._handler,
            host,
            port,
            process_request=self._process_request,
            compression=None,  # signalling is small JSON: deflate costs ~100 KB per socket for little
            max_size=settings.ws_max_message_bytes,
            ping_interval=None,  # the hub's sweep pings silent sockets; no task per socket
            server_header=None,
        ) as server:
            bound = server.sockets[0].getsockname()[1] if server.sockets else port
            log.info("signalling server listening on %s:%s", host, bound)
            if ready is not None:
                ready(bound)
            sweep = asyncio.create_task(self.hub.sweep())
            await stop
            sweep.cancel()
        self.hub.executor.shutdown(wait=False, cancel_futures=True)
        log.info("signalling server stopped")


def run_signalling_server(app: Flask, host: str, port: int, *, proxy_hops: int = 0, threads: int = 8) -> None:
    asyncio.run(SignallingServer(app, proxy_hops=proxy_hops, threads=threads).run(host, port))
