"""A real SMTP server (aiosmtpd) on a free loopback port that keeps what it receives."""

from __future__ import annotations

import email
import email.policy
import threading
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.support.processes import free_port


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if self._server.delay_rcpt:
            self._server.rcpt_started.set()
            await _sleep(self._server.delay_rcpt)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self._server.delay_data:
            self._server.data_started.set()
            await _sleep(self._server.delay_data)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._server.lock:
            self._server.messages.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.lock = threading.Lock()
        self.delay_data = 0.0
        self.data_started = threading.Event()
        self.delay_rcpt = 0.0
        self.rcpt_started = threading.Event()
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def received(self) -> list[tuple[list[str], EmailMessage]]:
        with self.lock:
            return list(self.messages)
