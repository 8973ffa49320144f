"""Every setting of vc_plugin, its default, and the checks that run at start-up.

Host applications set ``VC_<NAME>`` keys in ``app.config``; each field below is one key
(``display_timezone`` is ``VC_DISPLAY_TIMEZONE``). A bad value stops ``init_app`` with a
:class:`ConfigurationError` that names the key and says how to fix it, because a video
service that starts with a wrong retention period or no encryption key is worse than one
that does not start.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .signals import EVENTS

PREFIX = "VC_"

#: Upper bounds the product promises (see the retention table in the docs). Longer values
#: need ``VC_RETENTION_ALLOW_LONGER = True`` and are reported by ``flask vc check``.
RETENTION_BOUNDS = {
    "retention_metadata_days": 90,
    "retention_audit_days": 90,
    "retention_failed_job_hours": 24,
    "retention_presence_grace_minutes": 60,
}


class ConfigurationError(RuntimeError):
    """Raised by ``init_app`` when a ``VC_`` setting is missing or wrong."""


class Processor(BaseModel):
    """A processor the operator declares for the privacy notice (hosting, TURN, email)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    purpose: str
    location: str


class Settings(BaseModel):
    """All ``VC_`` settings with their defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- mounting and URLs ---------------------------------------------------------------
    url_prefix: str = Field("/vc", description="Where the blueprints are mounted.")
    public_url: str | None = Field(
        None,
        description="External base URL used in invitation links, e.g. `https://praxis.example/`. "
        "Must be HTTPS unless the app runs in debug or testing mode.",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to open WebSockets, besides the origin of `VC_PUBLIC_URL`.",
    )
    frame_ancestors: str = Field(
        "'none'", description="CSP `frame-ancestors` value; set it when a host embeds our pages."
    )

    # --- the host's layout, language and login ---------------------------------------------
    base_template: str | None = Field(
        None,
        description="The host's base template (e.g. `layout.html`): our pages for practitioners render inside "
        "it. Unset: our own standalone pages.",
    )
    base_template_blocks: dict[str, str] = Field(
        default_factory=dict,
        description="Which blocks of `VC_BASE_TEMPLATE` take our `title` (optional), `head` (our stylesheet), "
        '`content` and `scripts`, e.g. `{"head": "head_css", …}`; checked against the template. Empty: '
        "found by their usual names (docs/integration.md).",
    )
    host_layout_for_patients: bool = Field(
        False, description="Show patients the host's layout too (default: our own calm page for them)."
    )
    login_url: str | None = Field(
        None,
        description="Where a host with its own login signs people in; `next` is added as a query parameter. "
        "Unset: `@vc.login_url`, else Flask-Login's `login_view` (Flask-AppBuilder sets it).",
    )

    # --- storage and services ------------------------------------------------------------
    encryption_keys: list[str] = Field(
        default_factory=list,
        description="Master keys (base64, 32 bytes each), newest first. The newest wraps new data "
        "keys; all of them unwrap. Generate one with `flask vc generate-key`.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis for jobs, presence and pub/sub. Unset: jobs run in a background thread "
        "and presence lives in the process (one process only).",
    )
    job_queue_name: str = Field("vc_plugin", description="RQ queue name.")
    display_timezone: str = Field("Europe/Berlin", description="Time zone for times shown to people.")
    languages: list[str] = Field(default_factory=lambda: ["de", "en"], description="Languages offered to people.")
    default_language: str = Field("de", description="Language when the browser asks for none we offer.")

    # --- email and SMS -------------------------------------------------------------------
    smtp_url: str | None = Field(
        None,
        description="`smtp://user:password@host:587?starttls=true` or `smtps://…`. Required in production "
        "unless `VC_MAILER` is `console`; unset in debug or testing mode, mails are printed to the console.",
    )
    mailer: Literal["smtp", "console"] | None = Field(
        None,
        description="How invitations travel: `smtp` (through `VC_SMTP_URL`) or `console` (printed to the log; "
        "outside debug mode with access codes and links hidden, so patients receive nothing). Unset: `smtp` when "
        "`VC_SMTP_URL` is set, else `console`, which production accepts only when chosen here.",
    )
    mail_sender: str = Field("Videosprechstunde <noreply@localhost>", description="From header.")
    sms_sender: str | None = Field(
        None, description="Dotted path of a callable `send(phone, text)` for codes sent by SMS."
    )
    invitation_retries: int = Field(4, ge=0, le=10, description="Retries of a failed invitation mail.")
    invitation_backoff_seconds: list[int] = Field(
        default_factory=lambda: [30, 120, 600, 1800],
        description="Waits before each retry of an invitation; the last one repeats.",
    )

    # --- webhooks for case tools ------------------------------------------------------------
    webhook_url: str | None = Field(
        None,
        description='Where every signal is also POSTed as signed JSON (docs/integration.md, "Events"); '
        "https:// outside debug and testing. Unset: no webhooks.",
    )
    webhook_secret: str | None = Field(
        None, description="HMAC-SHA256 key for the `X-VC-Signature` header; at least 32 characters."
    )
    webhook_events: list[str] = Field(
        default_factory=list, description='Which events to send, e.g. `["appointment-created"]`; empty: all.'
    )
    webhook_retries: int = Field(6, ge=0, le=20, description="Retries of a webhook the receiver did not accept.")
    webhook_backoff_seconds: list[int] = Field(
        default_factory=lambda: [10, 60, 300, 900, 3600],
        description="Waits before each retry of a webhook; the last one repeats.",
    )

    # --- sign-in -------------------------------------------------------------------------
    oidc_issuer: str | None = Field(None, description="OpenID Connect issuer URL (discovery).")
    oidc_metadata_url: str | None = Field(None, description="Discovery document URL when it is not below the issuer.")
    oidc_client_id: str | None = Field(None, description="Client ID registered at the provider.")
    oidc_client_secret: str | None = Field(None, description="Client secret (`client_secret_basic`).")
    oidc_private_key_file: str | None = Field(
        None, description="PEM private key for `private_key_jwt` client authentication instead of a secret."
    )
    oidc_scopes: str = Field("openid profile email", description="Scopes requested at sign-in.")
    oidc_roles_claim: str = Field("roles", description="Claim that carries the user's groups or roles.")
    oidc_role_map: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "practitioner": ["practitioner"],
            "staff": ["staff"],
            "admin": ["admin"],
        },
        description="Our role → values of the roles claim that grant it.",
    )
    oidc_organisation_claim: str | None = Field(
        None, description="Claim naming the user's organisation; unset: `VC_DEFAULT_ORGANISATION`."
    )
    default_organisation: str = Field("default", description="Organisation of every user when no claim names one.")
    dev_login: bool = Field(
        False, description="Development sign-in without a provider. Only honoured in debug mode on loopback."
    )
    session_idle_minutes: int = Field(30, ge=1, description="Sign-out after this much inactivity.")
    session_absolute_hours: int = Field(12, ge=1, description="Sign-out this long after sign-in, regardless.")

    # --- appointments and joining ---------------------------------------------------------
    max_participants: int = Field(
        6, ge=2, le=12, description="Participants of a group appointment, practitioner included."
    )
    join_grace_minutes: int = Field(30, ge=0, le=240, description="Links stay valid this long after the planned end.")
    waiting_room_opens_minutes: int = Field(30, ge=0, le=1440, description="Check-in opens this long before the start.")
    code_max_attempts: int = Field(
        10,
        ge=3,
        le=100,
        description="Tries at the code per client (address; IPv6: its /64) and invitation before that client must "
        "pause. Other clients, such as the patient's, are not affected.",
    )
    code_lock_minutes: int = Field(
        15,
        ge=1,
        le=1440,
        description="First pause of a client that used up its tries with a wrong code; each further wrong code "
        "doubles it (at most a day). The right code is refused too while it pauses.",
    )
    consent_version: str = Field("2026-11", description="Version of the consent text patients agree to.")
    ratelimit_code_entry: str = Field(
        "20/minute;100/hour", description="Code entries per client (syntax of the `limits` library)."
    )
    ratelimit_api: str = Field("600/minute", description="JSON API requests per token or session.")
    host_limits_apply: bool = Field(
        False,
        description="Let the host's Flask-Limiter default and application-wide limits count requests to our "
        "routes too (ours apply in any case). Off: a practice behind one address would share the host's budget.",
    )
    ratelimit_join: str = Field(
        "120/minute", description="WebSocket handshakes (joins, reconnects) per client, counted before any check."
    )

    # --- signalling and relay ------------------------------------------------------------
    stun_urls: list[str] = Field(
        default_factory=list, description="STUN servers given to browsers (your own; no third parties by default)."
    )
    turn_urls: list[str] = Field(default_factory=list, description="TURN URLs of your coturn.")
    turn_secret: str | None = Field(None, description="coturn `static-auth-secret` (use-auth-secret).")
    turn_credential_ttl_seconds: int = Field(
        3600, ge=60, description="Lifetime of TURN credentials (capped at the appointment's end)."
    )
    ws_max_message_bytes: int = Field(65536, ge=4096, le=1048576, description="Largest WebSocket message accepted.")
    ws_messages_per_second: float = Field(40.0, gt=0, description="Sustained messages per second per socket.")
    ws_burst: int = Field(200, ge=1, description="Messages a socket may send in a burst.")
    file_transfer_max_bytes: int = Field(
        100 * 1024 * 1024, ge=1024, description="Largest file sent over the data channel (checked in the browser)."
    )

    # --- privacy and retention -------------------------------------------------------------
    retention_metadata_days: int = Field(
        90, ge=1, description="Appointment metadata is deleted this long after the planned end."
    )
    retention_audit_days: int = Field(90, ge=1, description="Audit events are deleted after this many days.")
    retention_failed_job_hours: int = Field(
        24, ge=1, description="A failed invitation job is deleted after this many hours."
    )
    retention_presence_grace_minutes: int = Field(
        60, ge=5, description="Presence lives at most this long after the planned end."
    )
    retention_allow_longer: bool = Field(False, description="Allow retention beyond the documented bounds.")
    key_max_age_days: int = Field(
        365, ge=1, description="`flask vc check` fails when an organisation's newest data key is older than this."
    )
    purge_interval_minutes: int = Field(15, ge=1, description="How often the purge job runs.")
    log_ip_mode: Literal["drop", "truncate"] = Field(
        "drop", description="IP addresses in log records: removed, or cut to /16 (IPv4) and /32 (IPv6)."
    )
    processors: list[Processor] = Field(
        default_factory=list, description="Processors you declare for the privacy notice."
    )
    signaling_location: str | None = Field(
        None, description="Where signalling servers run, e.g. `DE` (privacy notice, check)."
    )
    turn_location: str | None = Field(None, description="Where TURN servers run, e.g. `DE`.")
    operator_name: str | None = Field(None, description="Controller named in the privacy notice.")
    terms_url: str | None = Field(None, description="Public terms/imprint page linked from every patient page.")
    operator_token_hash: str | None = Field(
        None, description="SHA-256 (hex) of the operator token that `flask vc probe` uses."
    )

    @field_validator("url_prefix")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if not value.startswith("/") or value.endswith("/") or len(value) < 2:
            raise ValueError("must start with '/' and not end with '/', e.g. '/vc'")
        return value

    @field_validator("base_template_blocks")
    @classmethod
    def _our_slots_in_host_blocks(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - {"title", "head", "content", "scripts"}
        if unknown:
            raise ValueError(f"unknown slots {sorted(unknown)}: expected title, head, content, scripts")
        if value and not {"head", "content", "scripts"} <= set(value):
            raise ValueError("head, content and scripts each need a block, or our styles or scripts are lost")
        wrong = [name for name in value.values() if not name.isidentifier()]
        if wrong:
            raise ValueError(f"not block names: {wrong}")
        return value

    @field_validator("frame_ancestors")
    @classmethod
    def _one_csp_source_list(cls, value: str) -> str:
        if not value.strip() or any(ch in value for ch in ";,\r\n"):
            raise ValueError("must be a CSP source list like \"'none'\" or \"'self' https://intranet.example\"")
        return value

    @field_validator("ratelimit_code_entry", "ratelimit_api", "ratelimit_join")
    @classmethod
    def _rate_limit_syntax(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError("expected a rate limit like '20/minute;100/hour'") from None
        return value

    @field_validator("display_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like 'Europe/Berlin'") from None
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _keys_are_32_bytes(cls, value: list[str]) -> list[str]:
        for index, key in enumerate(value):
            try:
                raw = base64.urlsafe_b64decode(key.encode() + b"=" * (-len(key) % 4))
            except (binascii.Error, ValueError):
                raise ValueError(f"key #{index + 1} is not base64") from None
            if len(raw) != 32:
                raise ValueError(f"key #{index + 1} has {len(raw)} bytes; 32 are needed")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_shape(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in {"redis", "rediss", "unix"} or not (parts.hostname or parts.path):
            raise ValueError("expected redis://host:port/db, rediss://… or unix:///path")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url_shape(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError("expected smtp://host:port or smtps://host:port")
        return value

    @field_validator("languages")
    @classmethod
    def _supported_languages(cls, value: list[str]) -> list[str]:
        unknown = set(value) - {"de", "en"}
        if unknown or not value:
            raise ValueError("only 'de' and 'en' are available")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url_shape(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("expected an absolute URL like https://praxis.example/")
        return value.rstrip("/") + "/"

    # --- derived values --------------------------------------------------------------------
    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.display_timezone)

    @property
    def public_is_https(self) -> bool:
        return bool(self.public_url and self.public_url.startswith("https://"))

    @property
    def mail_delivery(self) -> Literal["smtp", "console"]:
        """The mailer in force: the one ``VC_MAILER`` names, else SMTP whenever a server is set."""
        return self.mailer or ("smtp" if self.smtp_url else "console")

    def exceeded_retention_bounds(self) -> dict[str, tuple[int, int]]:
        """Settings longer than the documented bounds: ``{field: (value, bound)}``."""
        return {
            name: (getattr(self, name), bound)
            for name, bound in RETENTION_BOUNDS.items()
            if getattr(self, name) > bound
        }


def key_name(field: str) -> str:
    return PREFIX + field.upper()


def settings_from(values: Mapping[str, Any]) -> Settings:
    """Settings from field values; a wrong value is an error that names its ``VC_`` key."""
    try:
        return Settings(**values)
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise ConfigurationError(f"{key_name(field)}: {first['msg']}.") from None


def load_settings(config: Mapping[str, Any], *, debug: bool, testing: bool) -> Settings:
    """Read ``VC_`` keys from a Flask config and check them as a whole."""
    known = set(Settings.model_fields)
    values: dict[str, Any] = {}
    for key, value in config.items():
        if not key.startswith(PREFIX):
            continue
        field = key[len(PREFIX) :].lower()
        if field not in known:
            raise ConfigurationError(
                f"{key} is not a vc_plugin setting. Check the spelling against the README's configuration table."
            )
        values[field] = value
    settings = settings_from(values)
    _check_whole(settings, debug=debug, testing=testing, secret_key=config.get("SECRET_KEY"))
    return settings


def _check_whole(settings: Settings, *, debug: bool, testing: bool, secret_key: Any) -> None:
    relaxed = debug or testing
    if not settings.encryption_keys:
        raise ConfigurationError(
            "VC_ENCRYPTION_KEYS is missing. Generate a key with `flask vc generate-key` and set "
            "VC_ENCRYPTION_KEYS = ['<key>'] (keep it out of version control)."
        )
    if not secret_key:
        raise ConfigurationError("SECRET_KEY is missing: sessions and CSRF tokens need it. Set a long random value.")
    exceeded = settings.exceeded_retention_bounds()
    if exceeded and not settings.retention_allow_longer:
        field, (value, bound) = next(iter(exceeded.items()))
        raise ConfigurationError(
            f"{key_name(field)} = {value} is longer than the promised {bound}. Lower it, or set "
            "VC_RETENTION_ALLOW_LONGER = True and explain the longer period in your privacy notice."
        )
    if not relaxed and not settings.public_is_https:
        raise ConfigurationError(
            "VC_PUBLIC_URL must be an https:// URL in production (invitation links and secure cookies "
            "depend on it). Only debug or testing mode accepts http or no public URL."
        )
    _check_mail(settings, relaxed=relaxed)
    if settings.join_grace_minutes > min(settings.retention_presence_grace_minutes, 60):
        raise ConfigurationError(
            f"VC_JOIN_GRACE_MINUTES = {settings.join_grace_minutes} is longer than presence is kept "
            f"(VC_RETENTION_PRESENCE_GRACE_MINUTES = {settings.retention_presence_grace_minutes}, at most 60): "
            "a late check-in would find no waiting room. Shorten the first or lengthen the second."
        )
    _check_webhooks(settings, relaxed=relaxed)
    if settings.turn_urls and not settings.turn_secret:
        raise ConfigurationError("VC_TURN_URLS is set but VC_TURN_SECRET is not: set coturn's static-auth-secret.")
    if settings.oidc_issuer or settings.oidc_metadata_url:
        if not settings.oidc_client_id:
            raise ConfigurationError("VC_OIDC_CLIENT_ID is missing while an OIDC issuer is configured.")
        if not (settings.oidc_client_secret or settings.oidc_private_key_file):
            raise ConfigurationError("Set VC_OIDC_CLIENT_SECRET or VC_OIDC_PRIVATE_KEY_FILE for the OIDC client.")
    if settings.default_language not in settings.languages:
        raise ConfigurationError("VC_DEFAULT_LANGUAGE must be one of VC_LANGUAGES.")


def _check_webhooks(settings: Settings, *, relaxed: bool) -> None:
    if not settings.webhook_url:
        return
    if not settings.webhook_url.startswith("https://") and not (relaxed and settings.webhook_url.startswith("http://")):
        raise ConfigurationError("VC_WEBHOOK_URL must be an https:// URL (http:// only in debug or testing mode).")
    if not settings.webhook_secret or len(settings.webhook_secret) < 32:
        raise ConfigurationError(
            "VC_WEBHOOK_SECRET must be at least 32 characters: receivers check every webhook's signature with it."
        )
    unknown = sorted(set(settings.webhook_events) - set(EVENTS))
    if unknown:
        raise ConfigurationError(f"VC_WEBHOOK_EVENTS names unknown events {unknown}; known: {', '.join(EVENTS)}.")


def _check_mail(settings: Settings, *, relaxed: bool) -> None:
    """Production never falls back to printing invitations into a worker's log unless someone chose it."""
    if settings.mailer == "smtp" and not settings.smtp_url:
        raise ConfigurationError(
            "VC_MAILER = 'smtp' needs VC_SMTP_URL, e.g. 'smtp://user:password@host:587?starttls=true'."
        )
    if settings.mailer == "console" and settings.smtp_url:
        raise ConfigurationError(
            "VC_MAILER = 'console' and VC_SMTP_URL are both set: remove one, so it is clear how invitations travel."
        )
    if settings.mailer is None and not settings.smtp_url and not relaxed:
        raise ConfigurationError(
            "VC_SMTP_URL is missing: in production invitations go through your mail server, e.g. "
            "VC_SMTP_URL = 'smtp://user:password@host:587?starttls=true'. Only debug or testing mode prints them "
            "to the console by default. To run without mail on purpose (patients then receive nothing; the log "
            "shows each mail with codes and links hidden), set VC_MAILER = 'console'."
        )
