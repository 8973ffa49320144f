"""Sending access codes by SMS: an interface, no provider bundled.

Set ``VC_SMS_SENDER`` to the dotted path of a class or function. A class is instantiated
once with the app's settings (``Sender(settings)``); a function is called directly. Either
way the result must offer ``send(phone: str, text: str) -> None`` and raise on failure
(the invitation job is then retried). ``phone`` is in E.164 form (``+4930…``).

    class MySms:
        def __init__(self, settings): self.api = ProviderClient(os.environ["SMS_TOKEN"])
        def send(self, phone, text): self.api.messages.create(to=phone, body=text)
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol

from ..core.config import Settings
from .jobs import resolve


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> None: ...


class SmsUnavailable(RuntimeError):
    """A code should go by SMS but no sender is configured."""


class _FunctionSender:
    def __init__(self, function: Any) -> None:
        self._function = function

    def send(self, phone: str, text: str) -> None:
        self._function(phone, text)


def load_sms_sender(settings: Settings) -> SmsSender | None:
    if not settings.sms_sender:
        return None
    target = resolve(settings.sms_sender)
    if inspect.isclass(target):
        return target(settings)
    return _FunctionSender(target)
