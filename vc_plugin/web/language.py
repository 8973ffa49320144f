"""The language of each of our pages.

On our pages the language is: the one the person chose on them (kept in our cookie); else, for
practitioners, the host's choice for its signed-in user (``@vc.locale_loader``, else the host's own
Flask-Babel selector); else the best match of the browser's ``Accept-Language``; else
``VC_DEFAULT_LANGUAGE``. Patients have no account with the host, so its choice does not apply to
them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import flask_babel
from babel.dates import format_date, format_datetime
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, force_locale

from ..core.catalogue import gettext, label, ngettext, ours, role_label
from ..core.time_words import time_of_day, time_span
from .cookie import cookie
from .state import vc_state

SESSION_KEY = "vc_lang"

#: The pages of the host's own users, where its language choice counts. Not patients' pages (they
#: have no account with the host), nor the token API and sockets (no page; and a host's selector
#: may write its session cookie, which a Bearer-token call must not receive).
HOST_LANGUAGE_BLUEPRINTS = frozenset({"vc.practice", "vc.admin", "vc.auth"})
#: Socket handshakes: nothing rendered, so no language chosen (a measurable part of a connect's CPU).
#: Their refusals are plain protocol text; an error page, if one is rendered, chooses for itself.
SILENT_BLUEPRINTS = frozenset({"vc.ws"})
log = logging.getLogger(__name__)


def preferred_language() -> str:
    """The language for the current request; hosts with their own Babel selector may call it."""
    settings = vc_state().settings
    if not has_request_context():
        return settings.default_language
    cached = g.get("vc_language")
    if cached:
        return str(cached)
    chosen = cookie.get(SESSION_KEY)
    if chosen in settings.languages:
        return str(chosen)
    if request.blueprint in HOST_LANGUAGE_BLUEPRINTS:
        hosts = host_language(settings.languages)
        if hosts:
            return hosts
    return request.accept_languages.best_match(settings.languages) or settings.default_language


def host_language(languages: list[str]) -> str | None:
    """What the host chose for this person, if it is one of ours (``en_GB`` counts as ``en``)."""
    state = vc_state()
    selector = state.locale_loader
    if selector is None:
        babel = current_app.extensions.get("babel")
        selector = getattr(babel, "locale_selector", None)
        if selector is preferred_language:
            return None  # the Babel we installed ourselves: the host has no say
    if selector is None:
        return None
    try:
        chosen = selector()
    except Exception:
        log.exception("the host's language selector failed; using the browser's language")
        return None
    if chosen is None:
        return None
    code = str(chosen).replace("-", "_").split("_")[0].lower()
    return code if code in languages else None


def install(app: Flask, default_language: str) -> None:
    """Give the app a Babel instance if the host has none; ours then selects the language."""
    if "babel" not in app.extensions:
        Babel(app, default_locale=default_language, locale_selector=preferred_language)


def enter_request_language() -> None:
    """``before_request`` of our blueprints: render this request in the preferred language."""
    if request.blueprint in SILENT_BLUEPRINTS:
        return
    chosen = preferred_language()
    g.vc_language = chosen
    manager = force_locale(chosen)
    manager.__enter__()
    g.vc_language_manager = manager


def leave_request_language(_error: BaseException | None = None) -> None:
    g.pop("vc_language", None)
    manager = g.pop("vc_language_manager", None)
    if manager is not None:
        manager.__exit__(None, None, None)


def local_time(moment: datetime | None, format: str = "medium") -> str:
    """A UTC moment shown in the display time zone and the reader's language."""
    if moment is None:
        return ""
    zone = vc_state().settings.zone
    lang = preferred_language()
    if format in {"time", "short_time"}:
        return time_of_day(moment, zone, lang)
    if format in {"date", "full_date"}:
        return format_date(moment.astimezone(zone), format="full" if format == "full_date" else "medium", locale=lang)
    return format_datetime(moment, format=format, tzinfo=zone, locale=lang)


def local_span(start: datetime, end: datetime) -> str:
    """From–to as people say it: "10:05–10:35 Uhr", "10:05 AM–10:35 AM"."""
    return time_span(start, end, vc_state().settings.zone, preferred_language())


def page_gettext(string: str, **variables: Any) -> str:
    """``_`` on our pages: our catalogue for our words, the host's for the words of its layout."""
    if ours(string):
        return gettext(string, **variables)
    return flask_babel.gettext(string, **variables)


def page_ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    if ours((singular, 0)):
        return ngettext(singular, plural, num, **variables)
    return flask_babel.ngettext(singular, plural, num, **variables)


def template_helpers() -> dict[str, Any]:
    return {
        "_": page_gettext,
        "ngettext": page_ngettext,
        "vc_language": preferred_language,
        "role_label": role_label,
        "local_time": local_time,
        "local_span": local_span,
        "label": label,
    }
