"""German and English for everything a person reads.

vc_plugin brings its own catalogue (a Flask-Babel ``Domain``) so it neither needs nor
disturbs the host's translations. On our pages the language is: the one the person chose
(kept in the session), else the best match of the browser's ``Accept-Language``, else
``VC_DEFAULT_LANGUAGE``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_datetime, format_time
from flask import Flask, g, has_request_context, request, session
from flask_babel import Babel, Domain, force_locale

from .state import vc_state

TRANSLATIONS = Path(__file__).with_name("translations")
SESSION_KEY = "vc_lang"

domain = Domain(translation_directories=[str(TRANSLATIONS)], domain="messages")
gettext = domain.gettext
ngettext = domain.ngettext
lazy_gettext = domain.lazy_gettext
_ = gettext


def preferred_language() -> str:
    """The language for the current request; hosts with their own Babel selector may call it."""
    settings = vc_state().settings
    if has_request_context():
        chosen = session.get(SESSION_KEY)
        if chosen in settings.languages:
            return chosen
        match = request.accept_languages.best_match(settings.languages)
        if match:
            return match
    return settings.default_language


def install(app: Flask, default_language: str) -> None:
    """Give the app a Babel instance if the host has none; ours then selects the language."""
    if "babel" not in app.extensions:
        Babel(app, default_locale=default_language, locale_selector=preferred_language)


def enter_request_language() -> None:
    """``before_request`` of our blueprints: render this request in the preferred language."""
    manager = force_locale(preferred_language())
    manager.__enter__()
    g.vc_language_manager = manager


def leave_request_language(_error: BaseException | None = None) -> None:
    manager = g.pop("vc_language_manager", None)
    if manager is not None:
        manager.__exit__(None, None, None)


@contextmanager
def language(code: str) -> Iterator[None]:
    """Render in ``code`` outside a request (emails sent by a worker)."""
    with force_locale(code):
        yield


ROLE_LABELS = {
    "practitioner": lazy_gettext("Practitioner"),
    "staff": lazy_gettext("Staff"),
    "admin": lazy_gettext("Administrator"),
}


def role_label(role: Any) -> str:
    return str(ROLE_LABELS.get(getattr(role, "value", role), role))


def local_time(moment: datetime | None, format: str = "medium") -> str:
    """A UTC moment shown in the display time zone and the reader's language."""
    if moment is None:
        return ""
    zone = vc_state().settings.zone
    lang = preferred_language()
    if format in {"time", "short_time"}:
        return format_time(moment, format="short", tzinfo=zone, locale=lang)
    if format in {"date", "full_date"}:
        return format_date(moment.astimezone(zone), format="full" if format == "full_date" else "medium", locale=lang)
    return format_datetime(moment, format=format, tzinfo=zone, locale=lang)


STATE_LABELS = {
    "planned": lazy_gettext("planned"),
    "cancelled": lazy_gettext("cancelled"),
    "ended": lazy_gettext("ended"),
    "not_sent": lazy_gettext("not sent"),
    "queued": lazy_gettext("being sent"),
    "sent": lazy_gettext("sent"),
    "failed": lazy_gettext("failed"),
    "patient": lazy_gettext("patient"),
    "interpreter": lazy_gettext("interpreter"),
    "relative": lazy_gettext("relative"),
    "other": lazy_gettext("other participant"),
    "single": lazy_gettext("single"),
    "group": lazy_gettext("group"),
    "participation": lazy_gettext("participation in the video consultation"),
    "relay": lazy_gettext("use of the relay server"),
}


def label(value: Any) -> str:
    """A translated word for an enum value shown on a page (state, delivery, kind)."""
    key = getattr(value, "value", value)
    return str(STATE_LABELS.get(key, key))


def template_helpers() -> dict[str, Any]:
    return {
        "_": gettext,
        "ngettext": ngettext,
        "vc_language": preferred_language,
        "role_label": role_label,
        "local_time": local_time,
        "label": label,
        "client_strings": _client_strings,
    }


def _client_strings() -> dict[str, str]:
    from .client_strings import client_strings

    return client_strings()
