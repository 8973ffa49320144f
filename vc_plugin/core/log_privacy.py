"""Log records without IP addresses or email addresses.

``install`` replaces the logging module's record factory, so a record is scrubbed when it is
created, before any handler or formatter sees it; tracebacks are scrubbed too. IP addresses are
removed (``drop``) or cut to their network (``truncate``: IPv4 to /16, IPv6 to /32); email
addresses are always replaced.

Which records: in processes of our own (the RQ worker, gunicorn with our logger class) every
record. In the host's web process, ours alone (``our_records`` in ``web/hosting.py``): our
loggers, every record written while a request to our routes is served (Werkzeug's, libraries', the host's hooks), and
Werkzeug's request lines for our paths. The host's own lines, such as its server's start line
"Running on http://127.0.0.1:5000", stay as the host wrote them. Gunicorn's access log has its
own logger class in :mod:`vc_plugin.gunicorn_logging`.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from collections.abc import Callable
from typing import Any, Literal

Mode = Literal["drop", "truncate"]
Scope = Callable[[logging.LogRecord], bool]

#: Candidates only; each is confirmed by the ``ipaddress`` module before it is replaced.
_IPV4 = r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)"
_IPV6 = r"(?<![\w:.])(?=[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:)[0-9A-Fa-f:.]{2,45}(?:%[\w.-]+)?(?![\w:])"
_ADDRESS = re.compile(f"{_IPV4}|{_IPV6}")
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+")
IP_PLACEHOLDER = "[ip]"
EMAIL_PLACEHOLDER = "[email]"


def _replace_address(match: re.Match[str], mode: Mode) -> str:
    text = match.group(0)
    bare = text.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return text  # a version number, a time of day: not an address
    if mode == "truncate":
        prefix = 16 if address.version == 4 else 32
        return str(ipaddress.ip_network(f"{bare}/{prefix}", strict=False))
    return IP_PLACEHOLDER


def scrub(text: str, mode: Mode = "drop") -> str:
    """``text`` without full IP addresses and without email addresses."""
    if not text:
        return text
    text = _EMAIL.sub(EMAIL_PLACEHOLDER, text)
    return _ADDRESS.sub(lambda match: _replace_address(match, mode), text)


class _ScrubbingFactory:
    """Wraps the previous record factory; the message is formatted once, then scrubbed."""

    def __init__(self, previous: Callable[..., logging.LogRecord], mode: Mode, scope: Scope | None) -> None:
        self.previous = previous
        self.mode = mode
        self.scope = scope

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.previous(*args, **kwargs)
        if self.scope is not None and not self.scope(record):
            return record
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string stays the logging module's problem
            return record
        record.msg, record.args = scrub(message, self.mode), None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info), self.mode)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, self.mode)
        return record


_lock = threading.Lock()


def install(mode: Mode, scope: Scope | None = None) -> None:
    """Scrub the log records in ``scope`` (None: every record of this process) from now on.

    Idempotent; the last mode wins, and a process that was told to scrub everything keeps doing so.
    """
    with _lock:
        current = logging.getLogRecordFactory()
        if isinstance(current, _ScrubbingFactory):
            current.mode = mode
            if current.scope is not None:
                current.scope = scope
            return
        logging.setLogRecordFactory(_ScrubbingFactory(current, mode, scope))


def installed_mode() -> Mode | None:
    factory = logging.getLogRecordFactory()
    return factory.mode if isinstance(factory, _ScrubbingFactory) else None
