"""Our own catalogue of German and English (a Flask-Babel ``Domain``), and words for enum values.

vc_plugin brings its catalogue so it neither needs nor disturbs the host's translations. Which
language a page is shown in is the web layer's decision (``web/language.py``); code outside a
request names the language explicitly with :func:`language`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask_babel import Domain, force_locale

TRANSLATIONS = Path(__file__).parent.parent / "translations"

domain = Domain(translation_directories=[str(TRANSLATIONS)], domain="messages")
gettext = domain.gettext
ngettext = domain.ngettext
lazy_gettext = domain.lazy_gettext
_ = gettext


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


def ours(key: object) -> bool:
    """Whether ``key`` is one of our catalogue's entries (else it is one of the host's words)."""
    return key in getattr(domain.get_translations(), "_catalog", {})
