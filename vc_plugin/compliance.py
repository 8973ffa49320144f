"""``flask vc check``: the product's privacy promises, checked against the running configuration.

Each finding names the requirement, passes or fails, and says why. A warning does not fail
the check; it points at something the configuration alone cannot prove.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import requests
from flask import Flask
from jinja2 import TemplateNotFound
from sqlalchemy import select

from .adapters.mail import ConsoleMailer, SmtpMailer
from .core.config import RETENTION_BOUNDS, ConfigurationError, Settings, key_name
from .core.models import AuditEvent
from .domain.retention import PurgeSchedule
from .domain.turn import ice_host, stun_servers
from .web.cookie import OwnCookieInterface
from .web.host_login import login_url_known
from .web.layout import hosted_frame
from .web.state import VCState

PACKAGE = Path(__file__).resolve().parent
#: EU member states and the other EEA states (ISO 3166-1 alpha-2), plus "EU" itself.
EU_EEA = frozenset(
    {"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT"}
    | {"LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "IS", "LI", "NO", "EU"}
)
#: A URL to another host in a page or script: src, href, url(), fetch or import of http(s)://… or //host.
_EXTERNAL_REFERENCE = re.compile(
    r"""(?:src|href|action)\s*=\s*["'](?:https?:)?//"""
    r"""|url\(\s*["']?(?:https?:)?//"""
    r"""|(?:fetch|import)\s*\(\s*["'](?:https?:)?//"""
)
METADATA_PROMISE_DAYS = 90


class Status(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - a status, not a password
    FAIL = "fail"
    WARN = "warn"


@dataclass(frozen=True)
class Finding:
    item: str
    status: Status
    reason: str

    def line(self) -> str:
        return f"[{self.status.value.upper():4}] {self.item}: {self.reason}"


def run_checks(app: Flask, state: VCState) -> list[Finding]:
    settings = state.settings
    return [
        peer_to_peer(settings),
        relay_only_with_consent(settings),
        metadata_retention(settings),
        retention_bounds(settings),
        no_third_party_requests(settings),
        https_public_url(settings),
        secure_cookies(app, settings),
        rate_limits(state),
        host_sign_in(app, state),
        host_layout(app, settings),
        production_mode(app),
        invitation_mail(state),
        eu_locations(settings),
        terms_page(app, settings),
        purge_scheduled(state),
    ]


def _ok(item: str, reason: str) -> Finding:
    return Finding(item, Status.PASS, reason)


def _fail(item: str, reason: str) -> Finding:
    return Finding(item, Status.FAIL, reason)


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].lower()


def peer_to_peer(settings: Settings) -> Finding:
    item = "peer-to-peer media"
    offered = [url for server in stun_servers(settings) for url in server.urls]
    wrong = [url for url in offered if _scheme(url) not in {"stun", "stuns"}]
    if wrong:
        return _fail(
            item, f"VC_STUN_URLS holds {', '.join(wrong)}: only stun: URLs belong there (a relay needs consent)"
        )
    return _ok(item, "browsers connect directly; the first ICE servers they get are STUN only, no relay")


def relay_only_with_consent(settings: Settings) -> Finding:
    item = "relay only with consent"
    if not settings.turn_urls:
        return _ok(item, "no TURN relay is configured")
    wrong = [url for url in settings.turn_urls if _scheme(url) not in {"turn", "turns"}]
    if wrong:
        return _fail(item, f"VC_TURN_URLS holds {', '.join(wrong)}: expected turn: or turns: URLs")
    if settings.turn_credential_ttl_seconds > 86400:
        return _fail(item, "VC_TURN_CREDENTIAL_TTL_SECONDS exceeds a day; credentials should be short-lived")
    return _ok(item, "TURN credentials are issued only after the participant agreed, and expire with the appointment")


def metadata_retention(settings: Settings) -> Finding:
    item = "appointment metadata at most 3 months"
    days = settings.retention_metadata_days
    if days > METADATA_PROMISE_DAYS:
        return _fail(item, f"{key_name('retention_metadata_days')} = {days} days exceeds {METADATA_PROMISE_DAYS}")
    return _ok(item, f"deleted {days} days after the planned end")


def retention_bounds(settings: Settings) -> Finding:
    item = "retention within the documented bounds"
    exceeded = settings.exceeded_retention_bounds()
    if exceeded:
        listed = ", ".join(f"{key_name(name)} = {value} (bound {bound})" for name, (value, bound) in exceeded.items())
        return _fail(item, f"{listed}; allowed only by VC_RETENTION_ALLOW_LONGER")
    return _ok(item, ", ".join(f"{key_name(name)} = {getattr(settings, name)}" for name in RETENTION_BOUNDS))


def _third_party_hosts(settings: Settings) -> list[str]:
    """STUN/TURN hosts outside the operator's domain (the public URL's host or its parent domain)."""
    public = (urlsplit(settings.public_url or "").hostname or "").lower()
    parts = public.split(".")
    own = ".".join(parts[-2:]) if len(parts) >= 2 else public
    foreign = []
    for url in [*settings.stun_urls, *settings.turn_urls]:
        host = ice_host(url)
        if host and host != public and not host.endswith("." + own) and host != own and host not in foreign:
            foreign.append(host)
    return foreign


def no_third_party_requests(settings: Settings) -> Finding:
    item = "no third-party requests"
    offending = sorted(
        str(path.relative_to(PACKAGE))
        for folder in ("templates", "static")
        for path in (PACKAGE / folder).rglob("*")
        if path.suffix in {".html", ".js", ".css", ".txt", ".svg"}
        and _EXTERNAL_REFERENCE.search(path.read_text(encoding="utf-8", errors="replace"))
    )
    if offending:
        return _fail(item, f"pages load from other hosts: {', '.join(offending)}")
    foreign = _third_party_hosts(settings)
    if foreign:
        return _fail(item, f"browsers would contact {', '.join(foreign)}: run STUN/TURN under your own domain")
    return _ok(item, "pages, scripts and styles are served by this app; STUN/TURN are your own")


def https_public_url(settings: Settings) -> Finding:
    item = "HTTPS public URL"
    if not settings.public_is_https:
        return _fail(item, f"VC_PUBLIC_URL is {settings.public_url or 'unset'}; links and cookies need https://")
    return _ok(item, settings.public_url or "")


def secure_cookies(app: Flask, settings: Settings) -> Finding:
    """Our own cookie (the host's session cookie is the host's to configure and to check)."""
    item = "secure cookies"
    interface = OwnCookieInterface(settings)
    name = interface.get_cookie_name(app)
    if not interface.get_cookie_secure(app):
        return _fail(item, f"{name} is sent over plain http: VC_PUBLIC_URL is not https://")
    flags = f"Secure, HttpOnly, SameSite={interface.get_cookie_samesite(app)}, Path={interface.get_cookie_path(app)}"
    return _ok(item, f"{name}: {flags}")


def rate_limits(state: VCState) -> Finding:
    """Ours, whatever the host's RATELIMIT_* settings say; and only as good as their storage."""
    item = "rate limits on code entry"
    limits = state.rate_limits
    if limits is None:
        return _fail(item, "no rate limits are installed")
    try:
        reachable = bool(limits.storage.check())
    except Exception:  # noqa: BLE001 - any storage failure means: not counted
        reachable = False
    if not reachable:
        return _fail(item, "their storage does not answer: tries are not counted (check VC_REDIS_URL)")
    where = "in Redis, shared by all processes" if limits.shared else "in this process's memory (one process only)"
    return _ok(item, f"{state.settings.ratelimit_code_entry} per client, {where}")


def host_sign_in(app: Flask, state: VCState) -> Finding:
    item = "sign-in"
    if state.practitioner_loader is None:
        how = "OpenID Connect" if state.sign_in_provider is not None else "no sign-in configured"
        return _ok(item, f"vc_plugin's own ({how})")
    with app.test_request_context(state.settings.url_prefix + "/"):
        known = login_url_known()
    if not known:
        return _fail(item, "the host signs people in, but its login page is unknown: set VC_LOGIN_URL")
    return _ok(item, "the host's login (practitioner_loader), with its login page for people not signed in")


def host_layout(app: Flask, settings: Settings) -> Finding:
    item = "host layout"
    if not settings.base_template:
        return _ok(item, "our own standalone pages")
    try:
        hosted_frame(app.jinja_env, settings)
    except (ConfigurationError, TemplateNotFound) as error:
        return _fail(item, f"VC_BASE_TEMPLATE = {settings.base_template}: {error}")
    return _ok(item, f"our pages for practitioners render inside {settings.base_template}")


def production_mode(app: Flask) -> Finding:
    item = "production mode"
    if app.debug or app.testing:
        return _fail(item, "the app runs in debug or testing mode (the development sign-in may be on)")
    return _ok(item, "debug and testing are off")


def invitation_mail(state: VCState) -> Finding:
    """Asks the mailer in force, not the settings: what the worker really does with a mail."""
    item = "invitation mail"
    mailer = state.mailer
    if isinstance(mailer, SmtpMailer):
        tls = "implicit TLS" if mailer.implicit_tls else "STARTTLS" if mailer.starttls else "no TLS"
        return _ok(item, f"sent through the SMTP server {mailer.host}:{mailer.port} ({tls})")
    if isinstance(mailer, ConsoleMailer) and mailer.reveals_secrets:
        return _fail(item, "printed to the console in full, access codes and links included (demo); set VC_SMTP_URL")
    return _fail(
        item,
        "VC_MAILER = 'console': patients receive no mail; the log shows each one with codes and links hidden. "
        "Set VC_SMTP_URL",
    )


def eu_locations(settings: Settings) -> Finding:
    item = "servers in the EU/EEA"
    declared = {"VC_SIGNALING_LOCATION": settings.signaling_location}
    if settings.turn_urls:
        declared["VC_TURN_LOCATION"] = settings.turn_location
    missing = [key for key, value in declared.items() if not value]
    if missing:
        return _fail(item, f"declare where they run: {', '.join(missing)} (e.g. 'DE')")
    outside = [f"{key} = {value}" for key, value in declared.items() if (value or "").upper() not in EU_EEA]
    if outside:
        return _fail(item, f"outside the EU/EEA: {', '.join(outside)}")
    return _ok(item, ", ".join(f"{key} = {value}" for key, value in declared.items()))


def terms_page(app: Flask, settings: Settings) -> Finding:
    item = "public terms page"
    url = settings.terms_url
    if not url:
        return _fail(item, "VC_TERMS_URL is not set: patients must reach the imprint and terms without signing in")
    try:
        if url.startswith("/"):
            status = app.test_client().get(url).status_code
        else:
            status = requests.get(url, timeout=5, allow_redirects=True).status_code
    except (requests.RequestException, OSError) as error:
        return _fail(item, f"{url} does not answer ({type(error).__name__})")
    if status != 200:
        return _fail(item, f"{url} answers {status} without a session")
    return _ok(item, f"{url} answers without a session")


def purge_scheduled(state: VCState) -> Finding:
    item = "retention purge runs"
    interval = timedelta(seconds=PurgeSchedule.of(state.settings).interval_seconds)
    since = state.clock.now() - 2 * interval - timedelta(minutes=1)
    last = state.db.session.scalar(
        select(AuditEvent.at).where(AuditEvent.action == "retention.purged").order_by(AuditEvent.at.desc()).limit(1)
    )
    if last is None or last < since:
        how = "start `rq cron vc_plugin.cron`" if state.redis is not None else "keep the app process running"
        return Finding(item, Status.WARN, f"no purge in the last {2 * interval}; {how}")
    return _ok(item, f"last purge at {last.isoformat(timespec='seconds')}")
