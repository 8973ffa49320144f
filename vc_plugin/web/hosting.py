"""Living beside the host's own extensions: ours rule our routes, theirs the rest.

Hosts bring app-wide extensions that would reach into our routes: Flask-WTF's ``CSRFProtect``
refuses our Bearer-token API, Flask-Limiter's default limits count patients behind one practice
address against each other (keyed on raw addresses), Flask-Talisman overwrites our stricter
headers. Our routes have their own CSRF check, limits and headers, so the host's step aside there,
and only there. Hosts often create these extensions after ours (app factories), so the exemptions
are made again when a request first reaches our routes, before the host's checks run.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Flask, has_request_context, request

from ..core import log_privacy
from ..core.config import Settings

#: WSGI environ key: the headers our after_request set, re-applied after every host hook ran.
HEADERS_KEY = "vc_plugin.headers"
#: Headers that are ours to decide on our routes; the host's values for them are replaced there.
OWN_HEADERS = (
    "Content-Security-Policy",
    "Permissions-Policy",
    "Referrer-Policy",
    "X-Content-Type-Options",
    "Cross-Origin-Opener-Policy",
    "Cache-Control",
)


class HostExtensions:
    """Tells the host's CSRF protection and rate limiters to leave our routes alone."""

    def __init__(self, app: Flask, parent: Blueprint, settings: Settings) -> None:
        self.app = app
        self.parent = parent
        self.settings = settings
        self.seen: set[int] = set()
        self.lock = threading.Lock()

    def install(self) -> None:
        self.step_aside()
        # First in line, so that it runs before a CSRFProtect or Limiter created after us.
        self.app.before_request_funcs.setdefault(None, []).insert(0, self._on_our_routes)
        self.app.wsgi_app = OwnHeadersLast(self.app.wsgi_app)  # type: ignore[method-assign]

    def _on_our_routes(self) -> None:
        if self.parent.name in request.blueprints:
            self.step_aside()

    def step_aside(self) -> None:
        """Exempt our views from every host extension not yet handled (cheap once all are)."""
        extensions = [self.app.extensions.get("csrf"), *self.app.extensions.get("limiter", ())]
        if all(id(extension) in self.seen for extension in extensions if extension is not None):
            return
        with self.lock:
            csrf = self.app.extensions.get("csrf")
            if csrf is not None and id(csrf) not in self.seen and hasattr(csrf, "exempt"):
                exempt_views(csrf.exempt, self._our_views())
                self.seen.add(id(csrf))
            for limiter in self.app.extensions.get("limiter", ()):
                if id(limiter) not in self.seen:
                    if not self.settings.host_limits_apply:
                        exempt_from_limiter(limiter, self.parent)
                    self.seen.add(id(limiter))

    def _our_views(self) -> list[Callable[..., Any]]:
        prefix = f"{self.parent.name}."
        return [view for endpoint, view in self.app.view_functions.items() if endpoint.startswith(prefix)]


def exempt_views(exempt: Callable[[str], Any], views: Iterable[Callable[..., Any]]) -> None:
    """Flask-WTF matches exempt views by ``module.name``, which also works for nested blueprints."""
    for view in views:
        exempt(f"{view.__module__}.{view.__name__}")


def exempt_from_limiter(limiter: Any, parent: Blueprint) -> None:
    """The host's default, application and meta limits do not apply to our blueprint and its children."""
    from flask_limiter import ExemptionScope

    flags = ExemptionScope.DEFAULT | ExemptionScope.APPLICATION | ExemptionScope.META | ExemptionScope.DESCENDENTS
    limiter.exempt(parent, flags=flags)


class OwnHeadersLast:
    """WSGI middleware: on our routes, our security headers are the ones that leave the app.

    Flask runs the app's ``after_request`` hooks (Flask-Talisman's, a host's own) after our
    blueprint's, so they could replace our Content-Security-Policy or Permissions-Policy with the
    host's looser ones. What our hook decided is kept in the environ and put back here.
    """

    def __init__(self, wsgi_app: Callable[..., Any]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            ours: dict[str, str] | None = environ.get(HEADERS_KEY)
            if ours:
                names = {name.lower() for name in ours}
                headers = [(n, v) for n, v in headers if n.lower() not in names] + list(ours.items())
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def our_records(url_prefix: str) -> log_privacy.Scope:
    """The records that belong to vc_plugin in a host's process (see the module's docstring)."""
    request_line = re.compile(r'"[A-Z]+ [^" ]*?' + re.escape(url_prefix) + r'(?:[/?# ]|")')

    def scope(record: logging.LogRecord) -> bool:
        if record.name == "vc_plugin" or record.name.startswith("vc_plugin."):
            return True
        if has_request_context() and (request.path == url_prefix or request.path.startswith(f"{url_prefix}/")):
            return True
        if record.name == "werkzeug":
            try:
                return bool(request_line.search(record.getMessage()))
            except Exception:  # noqa: BLE001 - a bad format string: scrub rather than guess
                return True
        return False

    return scope
