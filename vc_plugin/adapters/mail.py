"""Sending email: SMTP in production, the console in the demo.

Messages are built by :mod:`vc_plugin.domain.invitations`; a mailer only delivers a finished
:class:`email.message.EmailMessage`. Neither implementation logs the recipient, and the
console prints access codes and links only in debug or testing mode (the demo needs them).
"""

from __future__ import annotations

import re
import smtplib
import ssl
import sys
from email.message import EmailMessage
from typing import Protocol, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

from ..core.crypto import CODE_ALPHABET, CODE_GROUP, CODE_LENGTH

HIDDEN = "(hidden outside debug mode)"
#: An access code as :func:`vc_plugin.core.crypto.generate_access_code` writes it (``K7QM4-X9TPR``).
_ACCESS_CODE = re.compile(
    rf"(?<![0-9A-Z])[{CODE_ALPHABET}]{{{CODE_GROUP}}}-[{CODE_ALPHABET}]{{{CODE_LENGTH - CODE_GROUP}}}(?![0-9A-Z])"
)
#: The secret part of a join link: the invitation id after ``/join/`` and the ``#code=`` fragment.
_JOIN_LINK_TAIL = re.compile(r"(/join/)\S+")
_CODE_FRAGMENT = re.compile(r"#code=\S*")


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
    """Prints mails with the recipient masked. Only with ``reveal`` (debug or testing mode, so the
    demo can be tried) does it print access codes and join links; otherwise they are hidden,
    because a worker's log is kept and read far more widely than a patient's inbox."""

    def __init__(self, stream: TextIO | None = None, *, reveal: bool = False) -> None:
        self._stream = stream
        self._reveal = reveal

    @property
    def reveals_secrets(self) -> bool:
        """Whether access codes and links are printed (asked by ``flask vc check``)."""
        return self._reveal

    def send(self, message: EmailMessage) -> None:
        stream = self._stream or sys.stdout
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        attachments = [part.get_filename() for part in message.iter_attachments()]
        note = "demo only" if self._reveal else "access codes and links hidden outside debug mode"
        stream.write(
            f"\n----- vc_plugin: email (console mailer, {note}) -----\n"
            f"To: {mask_address(str(message['To']))}\n"
            f"Subject: {self._shown(str(message['Subject']))}\n"
            f"Attachments: {', '.join(a for a in attachments if a) or '-'}\n\n"
            f"{self._shown(text)}\n"
            "-----------------------------------------------------------\n"
        )
        stream.flush()

    def _shown(self, text: str) -> str:
        return text if self._reveal else hide_secrets(text)


def hide_secrets(text: str) -> str:
    """Access codes, ``#code=`` fragments and invitation ids in join links replaced by a notice."""
    text = _JOIN_LINK_TAIL.sub(lambda match: match.group(1) + HIDDEN, text)
    text = _CODE_FRAGMENT.sub("#" + HIDDEN, text)
    return _ACCESS_CODE.sub(HIDDEN, text)
