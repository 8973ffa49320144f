"""``flask vc check``: the product's privacy promises, checked against the running configuration.

Each finding names the requirement, passes or fails, and says why, in the language in force
(``core.catalogue.language``). A warning does not fail the check; it points at something the
configuration alone cannot prove. The compliance pack states a requirement as met only when its
finding passed; ``key`` is how the pack finds it.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import requests
from flask import Flask
from jinja2 import TemplateNotFound
from sqlalchemy import func, select

from ..adapters.mail import ConsoleMailer, SmtpMailer
from ..core.catalogue import gettext as _
from ..core.catalogue import ngettext
from ..core.config import RETENTION_BOUNDS, ConfigurationError, Settings, key_name
from ..core.models import OrganisationKey
from ..domain.retention import PurgeSchedule
from ..domain.turn import ice_host, stun_servers
from ..web.cookie import OwnCookieInterface
from ..web.host_login import login_url_known
from ..web.layout import hosted_frame
from ..web.state import VCState
from .data_classes import minutes
from .probes import TlsRefused, Unreachable, tls_offer, unauthenticated_allocate
from .purge_history import purge_history

PACKAGE = Path(__file__).resolve().parent.parent
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
#: A certificate that expires sooner than this is a failure waiting to happen.
CERTIFICATE_MARGIN_DAYS = 14


class Status(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - a status, not a password
    FAIL = "fail"
    WARN = "warn"


@dataclass(frozen=True)
class Finding:
    key: str
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
        public_url_tls(settings, state.clock.now()),
        secure_cookies(app, settings),
        rate_limits(state),
        host_sign_in(app, state),
        host_layout(app, settings),
        production_mode(app),
        invitation_mail(state),
        data_key_age(state),
        eu_locations(settings),
        terms_page(app, settings),
        purge_scheduled(state),
    ]


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].lower()


def peer_to_peer(settings: Settings) -> Finding:
    key, item = "peer_to_peer", _("peer-to-peer media")
    offered = [url for server in stun_servers(settings) for url in server.urls]
    wrong = [url for url in offered if _scheme(url) not in {"stun", "stuns"}]
    if wrong:
        return Finding(
            key,
            item,
            Status.FAIL,
            _(
                "VC_STUN_URLS holds %(urls)s: only stun: URLs belong there (a relay needs consent)",
                urls=", ".join(wrong),
            ),
        )
    return Finding(
        key,
        item,
        Status.PASS,
        _("browsers connect directly; the first ICE servers they get are STUN only, no relay"),
    )


def relay_only_with_consent(settings: Settings) -> Finding:
    """The relay's credentials come only after consent; the relay itself must refuse anyone without them."""
    key, item = "relay_consent", _("relay only with consent")
    if not settings.turn_urls:
        return Finding(key, item, Status.PASS, _("no TURN relay is configured"))
    wrong = [url for url in settings.turn_urls if _scheme(url) not in {"turn", "turns"}]
    if wrong:
        reason = _("VC_TURN_URLS holds %(urls)s: expected turn: or turns: URLs", urls=", ".join(wrong))
        return Finding(key, item, Status.FAIL, reason)
    if settings.turn_credential_ttl_seconds > 86400:
        reason = _("VC_TURN_CREDENTIAL_TTL_SECONDS exceeds a day; credentials should be short-lived")
        return Finding(key, item, Status.FAIL, reason)
    if not settings.turn_secret:
        reason = _("VC_TURN_URLS without VC_TURN_SECRET: no credentials can be issued, the relay cannot be used")
        return Finding(key, item, Status.FAIL, reason)
    return _relay_refuses_strangers(settings, key, item)


def _relay_refuses_strangers(settings: Settings, key: str, item: str) -> Finding:
    """Asks each TURN server for a relay without credentials: only a refusal (401) passes."""
    unanswered = []
    for url in settings.turn_urls:
        try:
            answer = unauthenticated_allocate(url)
        except Unreachable:
            unanswered.append(url)
            continue
        if answer.allocated:
            reason = _(
                "%(url)s gave a relay to a request without credentials: run coturn with use-auth-secret", url=url
            )
            return Finding(key, item, Status.FAIL, reason)
        if answer.error_code != 401:
            reason = _(
                "%(url)s answered a request without credentials with %(answer)s instead of 401",
                url=url,
                answer=str(answer.error_code),
            )
            return Finding(key, item, Status.FAIL, reason)
    if unanswered:
        reason = _(
            "credentials only after consent; %(urls)s did not answer from here, so whether the relay refuses "
            "requests without credentials was not checked",
            urls=", ".join(unanswered),
        )
        return Finding(key, item, Status.WARN, reason)
    reason = _(
        "TURN credentials are issued only after the participant agreed and expire with the appointment; "
        "the relay refused a request without credentials (401)"
    )
    return Finding(key, item, Status.PASS, reason)


def metadata_retention(settings: Settings) -> Finding:
    key, item = "metadata_retention", _("appointment metadata at most 3 months")
    days = settings.retention_metadata_days
    if days > METADATA_PROMISE_DAYS:
        reason = _(
            "%(key)s = %(days)d days exceeds %(bound)d",
            key=key_name("retention_metadata_days"),
            days=days,
            bound=METADATA_PROMISE_DAYS,
        )
        return Finding(key, item, Status.FAIL, reason)
    return Finding(key, item, Status.PASS, _("deleted %(days)d days after the planned end", days=days))


def retention_bounds(settings: Settings) -> Finding:
    key, item = "retention_bounds", _("retention within the documented bounds")
    exceeded = settings.exceeded_retention_bounds()
    if exceeded:
        listed = ", ".join(f"{key_name(name)} = {value} ({bound})" for name, (value, bound) in exceeded.items())
        return Finding(
            key, item, Status.FAIL, _("%(listed)s; allowed only by VC_RETENTION_ALLOW_LONGER", listed=listed)
        )
    return Finding(
        key, item, Status.PASS, ", ".join(f"{key_name(name)} = {getattr(settings, name)}" for name in RETENTION_BOUNDS)
    )


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
    key, item = "no_third_party", _("no third-party requests")
    offending = sorted(
        str(path.relative_to(PACKAGE))
        for folder in ("templates", "static")
        for path in (PACKAGE / folder).rglob("*")
        if path.suffix in {".html", ".js", ".css", ".txt", ".svg"}
        and _EXTERNAL_REFERENCE.search(path.read_text(encoding="utf-8", errors="replace"))
    )
    if offending:
        reason = _("pages load from other hosts: %(files)s", files=", ".join(offending))
        return Finding(key, item, Status.FAIL, reason)
    foreign = _third_party_hosts(settings)
    if foreign:
        reason = _("browsers would contact %(hosts)s: run STUN/TURN under your own domain", hosts=", ".join(foreign))
        return Finding(key, item, Status.FAIL, reason)
    return Finding(
        key, item, Status.PASS, _("pages, scripts and styles are served by this app; STUN/TURN are your own")
    )


def https_public_url(settings: Settings) -> Finding:
    key, item = "https", _("HTTPS public URL")
    if not settings.public_is_https:
        reason = _("VC_PUBLIC_URL is %(url)s; links and cookies need https://", url=settings.public_url or _("not set"))
        return Finding(key, item, Status.FAIL, reason)
    return Finding(key, item, Status.PASS, settings.public_url or "")


def public_url_tls(settings: Settings, now: datetime) -> Finding:
    """Measured, not configured: what the public URL's TLS really offers, as a browser meets it."""
    key, item = "tls", _("TLS of the public URL")
    if not settings.public_is_https:
        return Finding(key, item, Status.FAIL, _("the public URL is not https://: no TLS to check"))
    parts = urlsplit(settings.public_url or "")
    host, port = parts.hostname or "", parts.port or 443
    try:
        offer = tls_offer(host, port, now)
    except Unreachable:
        reason = _("%(host)s:%(port)d cannot be reached from here: nothing was checked", host=host, port=port)
        return Finding(key, item, Status.WARN, reason)
    except TlsRefused as error:
        return Finding(key, item, Status.FAIL, _("%(host)s:%(port)d: %(why)s", host=host, port=port, why=str(error)))
    described = _(
        "%(protocol)s with %(cipher)s, certificate valid for %(days)d more days",
        protocol=offer.protocol,
        cipher=offer.cipher,
        days=offer.certificate_days_left,
    )
    if not offer.strong:
        reason = _(
            "%(offer)s: BSI TR-02102-2 recommends TLS 1.3, or TLS 1.2 with forward secrecy (ECDHE) and AEAD",
            offer=described,
        )
        return Finding(key, item, Status.FAIL, reason)
    if offer.certificate_days_left < CERTIFICATE_MARGIN_DAYS:
        reason = _("%(offer)s: renew the certificate", offer=described)
        return Finding(key, item, Status.FAIL, reason)
    return Finding(key, item, Status.PASS, described)


def secure_cookies(app: Flask, settings: Settings) -> Finding:
    """Our own cookie (the host's session cookie is the host's to configure and to check)."""
    key, item = "cookies", _("secure cookies")
    interface = OwnCookieInterface(settings)
    name = interface.get_cookie_name(app)
    if not interface.get_cookie_secure(app):
        reason = _("%(name)s is sent over plain http: VC_PUBLIC_URL is not https://", name=name)
        return Finding(key, item, Status.FAIL, reason)
    flags = f"Secure, HttpOnly, SameSite={interface.get_cookie_samesite(app)}, Path={interface.get_cookie_path(app)}"
    return Finding(key, item, Status.PASS, f"{name}: {flags}")


def rate_limits(state: VCState) -> Finding:
    """Ours, whatever the host's RATELIMIT_* settings say; and only as good as their storage."""
    key, item = "rate_limits", _("rate limits on code entry")
    limits = state.rate_limits
    if limits is None:
        return Finding(key, item, Status.FAIL, _("no rate limits are installed"))
    try:
        reachable = bool(limits.storage.check())
    except Exception:  # noqa: BLE001 - any storage failure means: not counted
        reachable = False
    if not reachable:
        reason = _("their storage does not answer: tries are not counted (check VC_REDIS_URL)")
        return Finding(key, item, Status.FAIL, reason)
    where = (
        _("in Redis, shared by all processes") if limits.shared else _("in this process's memory (one process only)")
    )
    reason = _("%(limit)s per client, %(where)s", limit=state.settings.ratelimit_code_entry, where=where)
    return Finding(key, item, Status.PASS, reason)


def host_sign_in(app: Flask, state: VCState) -> Finding:
    key, item = "sign_in", _("sign-in")
    if state.practitioner_loader is None:
        if state.sign_in_provider is None:
            reason = _("no sign-in is configured: set VC_OIDC_ISSUER, or let the host sign people in")
            return Finding(key, item, Status.WARN, reason)
        return Finding(key, item, Status.PASS, _("vc_plugin's own (%(how)s)", how=_("OpenID Connect")))
    with app.test_request_context(state.settings.url_prefix + "/"):
        known = login_url_known()
    if not known:
        reason = _("the host signs people in, but its login page is unknown: set VC_LOGIN_URL")
        return Finding(key, item, Status.FAIL, reason)
    reason = _("the host's login (practitioner_loader), with its login page for people not signed in")
    return Finding(key, item, Status.PASS, reason)


def host_layout(app: Flask, settings: Settings) -> Finding:
    key, item = "layout", _("host layout")
    if not settings.base_template:
        return Finding(key, item, Status.PASS, _("our own standalone pages"))
    try:
        hosted_frame(app.jinja_env, settings)
    except (ConfigurationError, TemplateNotFound) as error:
        return Finding(key, item, Status.FAIL, f"VC_BASE_TEMPLATE = {settings.base_template}: {error}")
    reason = _("our pages for practitioners render inside %(template)s", template=settings.base_template)
    return Finding(key, item, Status.PASS, reason)


def production_mode(app: Flask) -> Finding:
    key, item = "production", _("production mode")
    if app.debug or app.testing:
        reason = _("the app runs in debug or testing mode (the development sign-in may be on)")
        return Finding(key, item, Status.FAIL, reason)
    return Finding(key, item, Status.PASS, _("debug and testing are off"))


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def invitation_mail(state: VCState) -> Finding:
    """Asks the mailer in force, not the settings: what the worker really does with a mail."""
    key, item = "mail", _("invitation mail")
    mailer = state.mailer
    if isinstance(mailer, SmtpMailer):
        where = f"{mailer.host}:{mailer.port}"
        if mailer.implicit_tls or mailer.starttls:
            tls = _("implicit TLS") if mailer.implicit_tls else "STARTTLS"
            reason = _("sent through the SMTP server %(server)s (%(tls)s)", server=where, tls=tls)
            return Finding(key, item, Status.PASS, reason)
        if _loopback(mailer.host):
            reason = _(
                "handed to a mail server on this machine (%(server)s) without TLS; whether it passes mails on "
                "encrypted is its own configuration",
                server=where,
            )
            return Finding(key, item, Status.WARN, reason)
        reason = _(
            "links travel unencrypted to %(server)s: use smtps:// or ?starttls=true in VC_SMTP_URL", server=where
        )
        return Finding(key, item, Status.FAIL, reason)
    if isinstance(mailer, ConsoleMailer) and mailer.reveals_secrets:
        reason = _("printed to the console in full, access codes and links included (demo); set VC_SMTP_URL")
        return Finding(key, item, Status.FAIL, reason)
    reason = _(
        "VC_MAILER = 'console': patients receive no mail; the log shows each one with codes and links hidden. "
        "Set VC_SMTP_URL"
    )
    return Finding(key, item, Status.FAIL, reason)


def data_key_age(state: VCState) -> Finding:
    """Each organisation's newest data key, against VC_KEY_MAX_AGE_DAYS (``flask vc rotate-keys --data-keys``)."""
    key, item = "key_age", _("data keys rotated")
    newest = (
        select(OrganisationKey.organisation_id, func.max(OrganisationKey.created_at).label("created_at"))
        .group_by(OrganisationKey.organisation_id)
        .subquery()
    )
    oldest = state.db.session.scalar(select(func.min(newest.c.created_at)))
    limit = state.settings.key_max_age_days
    if oldest is None:
        return Finding(key, item, Status.PASS, _("no organisation has a data key yet"))
    now = state.clock.now()
    age = (now - oldest).days
    stale = state.db.session.scalar(
        select(func.count()).select_from(newest).where(newest.c.created_at < now - timedelta(days=limit))
    )
    if stale:
        reason = _(
            "the data keys of %(count)d organisation(s) are older than VC_KEY_MAX_AGE_DAYS = %(limit)d (oldest: "
            "%(age)d days): run flask vc rotate-keys --data-keys",
            count=stale,
            limit=limit,
            age=age,
        )
        return Finding(key, item, Status.FAIL, reason)
    reason = _(
        "every organisation's data key is at most %(age)d days old (VC_KEY_MAX_AGE_DAYS = %(limit)d)",
        age=age,
        limit=limit,
    )
    return Finding(key, item, Status.PASS, reason)


def eu_locations(settings: Settings) -> Finding:
    key, item = "eu_locations", _("servers in the EU/EEA")
    declared = {"VC_SIGNALING_LOCATION": settings.signaling_location}
    if settings.turn_urls:
        declared["VC_TURN_LOCATION"] = settings.turn_location
    missing = [name for name, value in declared.items() if not value]
    if missing:
        reason = _("declare where they run: %(keys)s (e.g. 'DE')", keys=", ".join(missing))
        return Finding(key, item, Status.FAIL, reason)
    outside = [f"{name} = {value}" for name, value in declared.items() if (value or "").upper() not in EU_EEA]
    if outside:
        return Finding(key, item, Status.FAIL, _("outside the EU/EEA: %(where)s", where=", ".join(outside)))
    return Finding(key, item, Status.PASS, ", ".join(f"{name} = {value}" for name, value in declared.items()))


def terms_page(app: Flask, settings: Settings) -> Finding:
    key, item = "terms", _("public terms page")
    url = settings.terms_url
    if not url:
        reason = _("VC_TERMS_URL is not set: patients must reach the imprint and terms without signing in")
        return Finding(key, item, Status.FAIL, reason)
    try:
        if url.startswith("/"):
            status = app.test_client().get(url).status_code
        else:
            status = requests.get(url, timeout=5, allow_redirects=True).status_code
    except (requests.RequestException, OSError) as error:
        reason = _("%(url)s does not answer (%(error)s)", url=url, error=type(error).__name__)
        return Finding(key, item, Status.FAIL, reason)
    if status != 200:
        reason = _("%(url)s answers %(status)d without a session", url=url, status=status)
        return Finding(key, item, Status.FAIL, reason)
    return Finding(key, item, Status.PASS, _("%(url)s answers without a session", url=url))


def purge_scheduled(state: VCState) -> Finding:
    """From the purge's own records in the audit period: a run recently, and none late."""
    key, item = "purge", _("retention purge runs")
    now = state.clock.now()
    history = purge_history(
        state.db.session,
        now,
        timedelta(seconds=PurgeSchedule.of(state.settings).interval_seconds),
        now - timedelta(days=state.settings.retention_audit_days),
    )
    limit = minutes(int(history.limit.total_seconds() // 60))
    if not history.runs:
        how = _("start `rq cron vc_plugin.cron`") if state.redis is not None else _("keep the app process running")
        reason = _("no purge run is recorded in the audit period; %(how)s", how=how)
        return Finding(key, item, Status.WARN, reason)
    last = history.runs[0].at.isoformat(timespec="seconds")
    if history.overdue:
        reason = _("the last purge ran at %(at)s, more than %(limit)s ago", at=last, limit=limit)
        return Finding(key, item, Status.FAIL, reason)
    if history.late:
        reason = ngettext(
            "last purge at %(at)s; %(num)d run came more than %(limit)s after the one before",
            "last purge at %(at)s; %(num)d runs came more than %(limit)s after the one before",
            len(history.late),
            at=last,
            limit=limit,
        )
        return Finding(key, item, Status.WARN, reason)
    reason = ngettext(
        "last purge at %(at)s; %(num)d run in the audit period, each within %(limit)s of the one before",
        "last purge at %(at)s; %(num)d runs in the audit period, each within %(limit)s of the one before",
        len(history.runs),
        at=last,
        limit=limit,
    )
    return Finding(key, item, Status.PASS, reason)
