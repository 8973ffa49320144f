"""Sending email: SMTP in production, the console in the demo.

Messages are built by :mod:`vc_plugin.invites`; a mailer only delivers a finished
:class:`email.message.EmailMessage`. Neither implementation logs the recipient.
"""

from __future__ import annotations

import smtplib
import ssl
import sys
from email.message import EmailMessage
from typing import Protocol, TextIO
from urllib.parse import parse_qs, unquote, urlsplit


class MailDeliveryError(RuntimeError):
    """The mail server refused or could not be reached; the job will be retried."""


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class SmtpMailer:
    """Delivers over SMTP. URL: ``smtp://user:pass@host:587?starttls=true`` or ``smtps://host:465``."""

    def __init__(self, url: str, *, timeout: float = 20.0) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "localhost"
        self.implicit_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        options = parse_qs(parts.query)
        self.starttls = options.get("starttls", ["false"])[0].lower() in {"1", "true", "yes"}
        self.timeout = timeout

    def send(self, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        try:
            if self.implicit_tls:
                client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.starttls:
                    client.starttls(context=context)
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            raise MailDeliveryError(f"mail server {self.host}:{self.port} failed: {type(error).__name__}") from None


def mask_address(address: str) -> str:
    """``jane.doe@example.org`` → ``j…@example.org``: enough to tell mails apart, not to read one."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}…@{domain}" if domain else "…"


class ConsoleMailer:
    """Prints mails for the demo, with the recipient masked, so the link and code can be tried."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def send(self, message: EmailMessage) -> None:
        stream = self._stream or sys.stdout
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        attachments = [part.get_filename() for part in message.iter_attachments()]
        stream.write(
            "\n----- vc_plugin: email (console mailer, demo only) -----\n"
            f"To: {mask_address(str(message['To']))}\n"
            f"Subject: {message['Subject']}\n"
            f"Attachments: {', '.join(a for a in attachments if a) or '-'}\n\n"
            f"{text}\n"
            "-----------------------------------------------------------\n"
        )
        stream.flush()
